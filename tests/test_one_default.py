"""One default everywhere (issue 32): the store the API uses without set-up, and the
statistics' conventions a user gets from the public functions' defaults."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from village_credit.validation import ValidationConfig, validation_report
from village_credit.validation.calibration import (
    brier,
    calibration_in_the_large,
    expected_calibration_error,
    grade_calibration,
    hosmer_lemeshow,
    jeffreys_p_value,
    spiegelhalter,
)
from village_credit.validation.discrimination import auc_delong, ks_statistic

SRC = Path(__file__).resolve().parents[1] / "src"


# ----------------------------------------------------------------------------- the store


def _fresh_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def _project(tmp_path: Path) -> Path:
    """A fresh project folder: the marker the store resolver looks for, nothing else."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'analyst'\n", encoding="utf-8")
    return root


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=_fresh_env(),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_api_finds_the_project_store_with_no_set_up_line(tmp_path: Path, scoring_env) -> None:
    """README's usage in a fresh interpreter, no MLFLOW_TRACKING_URI: load_model and
    score_file read <project>/mlruns/mlflow.db (the CLI's store) and make no stray db."""
    root = _project(tmp_path)
    (root / "mlruns").mkdir()
    # the registered champion, in the project's default store (artifact paths stay absolute)
    shutil.copy(Path(scoring_env.tracking_uri.removeprefix("sqlite:///")), root / "mlruns" / "mlflow.db")
    sub = root / "notebooks"  # an analyst's notebook in a sub-folder of the project
    sub.mkdir()
    out = _run(f"""
        import village_credit as vc, mlflow
        model = vc.load_model("models:/village-credit@champion")
        print("version", model.identity.version)
        summary = vc.score_file("models:/village-credit@champion", {str(scoring_env.parquet)!r}, "scores", progress=False)
        print("scored", summary.scored)
        print("store", mlflow.get_tracking_uri())
        """, cwd=sub)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"version {scoring_env.version}" in out.stdout
    assert f"store sqlite:///{(root / 'mlruns' / 'mlflow.db').resolve().as_posix()}" in out.stdout
    assert int(out.stdout.split("scored ")[1].split()[0]) > 0
    strays = [p for p in root.rglob("mlflow.db") if p != root / "mlruns" / "mlflow.db"]
    assert strays == []


def test_reading_a_missing_store_names_it_and_creates_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path)
    out = _run("""
        import village_credit as vc
        from village_credit.errors import VillageCreditError
        try:
            vc.load_model("models:/village-credit@champion")
        except VillageCreditError as exc:
            print("error:", exc)
        """, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "error: no MLflow store at" in out.stdout
    assert str((root / "mlruns" / "mlflow.db").resolve()) in out.stdout
    assert list(root.rglob("mlflow.db")) == []


def test_the_users_own_choice_of_store_wins(tmp_path: Path) -> None:
    root = _project(tmp_path)
    mine = tmp_path / "elsewhere" / "mine.db"
    out = _run(f"""
        import mlflow
        from village_credit.registry import configure, get_client
        mlflow.set_tracking_uri("sqlite:///{mine.as_posix()}")
        configure()
        print("store", get_client().tracking_uri)
        """, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"store sqlite:///{mine.as_posix()}" in out.stdout
    assert mine.exists() and not (root / "mlruns").exists()


def test_registry_moves_with_the_store_the_user_moves_to(tmp_path: Path) -> None:
    """configure() pins the registry; a later mlflow.set_tracking_uri must take it along,
    or versions are looked up in the old store while runs go to the new one."""
    import mlflow

    from village_credit.registry import configure, get_client

    first, second = (f"sqlite:///{(tmp_path / n).as_posix()}" for n in ("a.db", "b.db"))
    configure(first)
    mlflow.set_tracking_uri(second)
    client = get_client()
    assert (client.tracking_uri, client._registry_uri) == (second, second)
    assert mlflow.get_registry_uri() == second


def test_a_registry_the_user_chose_is_kept(tmp_path: Path) -> None:
    import mlflow

    from village_credit.registry import get_client

    store, registry = (f"sqlite:///{(tmp_path / n).as_posix()}" for n in ("s.db", "r.db"))
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(registry)
    client = get_client()
    assert (client.tracking_uri, client._registry_uri) == (store, registry)


# ----------------------------------------------------------------------------- conventions


def _sample(n: int = 3000, seed: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 18, n)
    y = (rng.random(n) < p * 1.15).astype(int)  # slightly miscalibrated: p-values not ~1
    grades = np.where(p < 0.03, "A", np.where(p < 0.08, "B", np.where(p < 0.15, "C", "D")))
    points = 600 - 400 * p
    return y, p, grades, points


def test_every_report_figure_is_the_public_function_with_its_defaults() -> None:
    y, p, grades, points = _sample()
    order = ["A", "B", "C", "D"]
    rep = validation_report(y, p, points, grades, order)
    cal, disc = rep["calibration"], rep["discrimination"]

    stat, dof, hl_p = hosmer_lemeshow(y, p)
    assert (cal["hosmer_lemeshow"]["stat"], cal["hosmer_lemeshow"]["dof"],
            cal["hosmer_lemeshow"]["p_value"]) == (stat, dof, hl_p)
    assert dof == 10  # the toolkit's convention: dof = groups on an independent sample
    assert cal["ece"] == expected_calibration_error(y, p)
    assert cal["brier"] == brier(y, p)
    assert cal["in_the_large"] == calibration_in_the_large(y, p)
    assert (cal["spiegelhalter"]["z"], cal["spiegelhalter"]["p_value"]) == spiegelhalter(y, p)
    table = grade_calibration(grades, y, p, order)
    assert cal["grades"].equals(table)
    risk = -points  # the report judges discrimination on the risk-oriented score
    auc, se, lo, hi = auc_delong(y, risk)
    assert (disc["auc"], disc["auc_se"], disc["auc_ci"]) == (auc, se, [lo, hi])
    assert disc["ks"] == ks_statistic(y, risk)[0]
    # and the report's own knobs are the functions' defaults, not a second set
    cfg = ValidationConfig()
    assert (cfg.hl_groups, cfg.hl_ddof) == (10, 0)


def test_hosmer_lemeshow_default_differs_from_the_fitted_convention() -> None:
    """The default is ddof 0; ddof 2 is still there, and gives another p-value."""
    y, p, _, _ = _sample()
    assert hosmer_lemeshow(y, p)[2] == hosmer_lemeshow(y, p, ddof=0)[2]
    assert hosmer_lemeshow(y, p, ddof=2)[1] == 8
    assert hosmer_lemeshow(y, p, ddof=2)[2] != hosmer_lemeshow(y, p)[2]


def test_jeffreys_boundary_rule_is_ours_not_statsmodels() -> None:
    """What the comment in jeffreys_p_value cites: Brown, Cai & DasGupta pin the bound
    at 0 (resp. 1); statsmodels' Jeffreys interval does not."""
    low, _ = proportion_confint(0, 100, alpha=0.02, method="jeffreys")
    _, high = proportion_confint(100, 100, alpha=0.02, method="jeffreys")
    assert 0 < low < 1e-5 and 1 - 1e-5 < high < 1  # statsmodels: no pinning
    # ours: no default is never evidence that a PD of 0.001 is too low
    assert jeffreys_p_value([0], [100], [1e-9], "greater")[0] == 1.0
    assert jeffreys_p_value([100], [100], [1 - 1e-9], "less")[0] == 1.0
