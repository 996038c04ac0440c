"""Fixtures shared by the test modules (pytest finds them here; nothing imports this file).

* ``tiny_households``: a factory of small synthetic household tables whose default
  depends monotonically on history, income and debt (fast; for the models tests);
* ``generated_households``: a factory of the project generator's households;
* ``rule_households``: a factory of hand-built household frames for the rules tests,
  every column a shipped policy reads set to a clean base household (aged 40, no
  honours, no events) unless overridden; ``rule_columns``: their snapshot date and the
  deduction, veto and honour columns (from the schema);
* ``validation_kit``: the validation-kit tests' helpers (:class:`ValidationKit`): a small
  decision model trained once per session on the generator's standard population
  (4 % default rate) and kept as plain files, a real sqlite MLflow store, registration,
  and the "riskier population" (same generator, higher ``target_default_rate``: a pure
  base-rate shift, the textbook case a third-party Platt recalibration must fix);
* ``scoring_env``: ONE small registered model (``village-credit@champion``, trained with
  ``fit_blend``, logged as the pyfunc from code, promoted through the real promotion
  path) in a real sqlite MLflow store, and the scoring input (Parquet and CSV) with a
  few bad rows of each kind (:class:`ScoringEnv`); built once per session.
  ``assert_every_row_once``: each input row decided or quarantined exactly once.

Factories are session-scoped so hypothesis tests and module-scoped fixtures can use them.

``_mlflow_store_restored`` (autouse): MLflow's process-wide store settings are put back
after every test, so a test that points MLflow at its own store (or a server it stops)
cannot leak it into the next test, whatever order the tests run in.

``pytest_collection_modifyitems``: the files run longest first, by the seconds each
took in a measured run (tests/durations.json; for the two workers of ``make test``; the
suite is order-independent, so only its time changes), and a root function's ``>>>``
example runs once: in tests/test_docstring_examples.py's fresh namespace when that test is
collected, else as the module's doctest. ``--update-durations`` rewrites the table's
entries for the files a run ran.
"""

from __future__ import annotations

import atexit
import gc
import json
import math
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.schema import (
    DEDUCTION_ITEMS,
    EDUCATION,
    INCOME_SOURCES,
    SCHEMA,
    VETO_FAMILIES,
    history_columns,
)


def _tiny_households(n: int = 2000, seed: int = 0, months: int = 36, n_villages: int = 40) -> pd.DataFrame:
    """Synthetic households whose default depends on history, income and debt (monotonically)."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    has_loan = rng.random(n) < 0.7
    due = np.where(has_loan[:, None] & (rng.random((n, months)) < 0.8), rng.uniform(500, 3000, (n, months)), 0.0)
    p_late = 1 / (1 + np.exp(-(risk[:, None] * 1.5 - 3.0)))
    late = (rng.random((n, months)) < p_late) & (due > 0)
    dpd = np.where(late, rng.choice([15, 30, 60, 90], size=(n, months)), 0)
    paid = np.where(late, due * rng.uniform(0, 0.9, (n, months)), due)
    util = (rng.random((n, months)) < 1 / (1 + np.exp(-(risk[:, None] - 2.0)))).astype(int)
    income = {s: rng.gamma(2.0, 8000 * np.exp(-0.3 * risk)) * (rng.random(n) < 0.6) for s in INCOME_SOURCES}
    df = pd.DataFrame({
        "household_id": [f"H{i:06d}" for i in range(n)],
        "township_code": [f"T{i % 5:02d}" for i in range(n)],
        "village_code": [f"V{v:03d}" for v in rng.integers(0, n_villages, n)],
        "vintage": np.ones(n, dtype=int),
        "head_age": rng.integers(22, 80, n),
        "education": rng.choice(EDUCATION, n),
        "household_size": rng.integers(1, 7, n),
        "smartphone": rng.random(n) < 0.6,
        "formerly_poor": rng.random(n) < 0.15,
        "social_insurance": rng.random(n) < 0.8,
        "new_agri_operator": rng.random(n) < 0.1,
        "individual_business": rng.random(n) < 0.1,
        "land_mu": rng.gamma(2.0, 3.0, n),
        "assets_yuan": rng.gamma(2.0, 50000, n),
        **{f"income_{s}": v for s, v in income.items()},
        "income_volatility": rng.gamma(2.0, 0.1, n),
        "credit_limit_yuan": np.where(has_loan, 50000.0, 0.0),
        "balance_yuan": np.where(has_loan, rng.uniform(0, 50000, n), 0.0),
        "private_debt_yuan": rng.gamma(1.0, 5000 * np.exp(0.5 * risk)),
    })
    df["dependents"] = np.minimum(rng.integers(0, 4, n), df["household_size"].to_numpy())
    hist = {}
    for kind, arr in (("due", due), ("paid", paid), ("dpd", dpd), ("utility_late", util)):
        for j, c in enumerate(history_columns(kind, months)):
            hist[c] = arr[:, j]
    df = pd.concat([df, pd.DataFrame(hist)], axis=1)
    logit = -3.0 + 1.2 * risk + 0.02 * (dpd > 0).sum(axis=1)
    df["true_pd"] = 1 / (1 + np.exp(-logit))
    df["default_12m"] = (rng.random(n) < df["true_pd"].to_numpy()).astype(int)
    df["granted_hist"] = True
    df["outcome_observed"] = True
    return df


def _generated_households(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    """The project generator's households (``n`` rows, ``seed``)."""
    return generate_households(GeneratorConfig(n_households=n, seed=seed))


@pytest.fixture(scope="session")
def tiny_households() -> Callable[..., pd.DataFrame]:
    """``tiny_households(n=2000, seed=0, months=36, n_villages=40)`` -> a small synthetic table."""
    return _tiny_households


@pytest.fixture(scope="session")
def generated_households() -> Callable[..., pd.DataFrame]:
    """``generated_households(n=2000, seed=0)`` -> the generator's households."""
    return _generated_households


# ----------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class RuleColumns:
    """The rules tests' snapshot date and the rule columns of the household schema."""

    snapshot: pd.Timestamp
    deductions: list[str]
    vetoes: list[str]
    honour_levels: dict[str, tuple[str, ...]]
    honour_flags: list[str]


RULE_COLUMNS = RuleColumns(
    snapshot=pd.Timestamp("2024-06-30"),
    deductions=[f"ded_{k}_date" for k, _, _ in DEDUCTION_ITEMS],
    vetoes=[f"veto_{k}_date" for k, _, _ in VETO_FAMILIES],
    honour_levels={c.name: tuple(c.categories) for c in SCHEMA.columns
                   if c.name.startswith("hon_") and c.categories},
    honour_flags=["party_member", "hon_veteran_brave", "hon_virtue", "hon_frugal_ceremony"],
)
SNAPSHOT = RULE_COLUMNS.snapshot
DED_COLS = RULE_COLUMNS.deductions
VETO_COLS = RULE_COLUMNS.vetoes
HONOUR_LEVEL_COLS = RULE_COLUMNS.honour_levels
HONOUR_FLAG_COLS = RULE_COLUMNS.honour_flags


def _rule_households(n: int = 1, **cols: Any) -> pd.DataFrame:
    """A valid minimal household table with ``n`` rows; keyword args override columns
    (scalars broadcast; dates may be strings)."""
    base: dict[str, Any] = {
        "household_id": [f"H{i:05d}" for i in range(n)],
        "township_code": "T01",
        "village_code": "V001",
        "snapshot_date": SNAPSHOT,
        "head_age": 40,
        "full_civil_capacity": True,
        "fixed_residence": True,
        "fixed_income": True,
        "major_bad_credit": False,
        "new_agri_operator": False,
        "individual_business": False,
        "private_debt_yuan": 0.0,
        **{f"income_{s}": (30000.0 if s == "farming" else 0.0) for s in INCOME_SOURCES},
        **{c: "none" for c in HONOUR_LEVEL_COLS},
        **{c: False for c in HONOUR_FLAG_COLS},
        **{c: pd.NaT for c in DED_COLS + VETO_COLS},
    }
    base.update(cols)
    df = pd.DataFrame({k: (v if np.ndim(v) else [v] * n) for k, v in base.items()})
    for c in DED_COLS + VETO_COLS + ["snapshot_date"]:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[ns]")
    for c in ["full_civil_capacity", "fixed_residence", "fixed_income", "major_bad_credit",
              "new_agri_operator", "individual_business", *HONOUR_FLAG_COLS]:
        df[c] = df[c].astype(bool)
    df["head_age"] = df["head_age"].astype("int64")
    return df


@pytest.fixture(scope="session")
def rule_households() -> Callable[..., pd.DataFrame]:
    """``rule_households(n=1, **columns)`` -> a valid minimal household table for the rules."""
    return _rule_households


@pytest.fixture(scope="session")
def rule_columns() -> RuleColumns:
    return RULE_COLUMNS


# ----------------------------------------------------------------------------- validation kit
KIT_NAME = "vc-kit"
KIT_TRAIN_SEED = 11
KIT_RISKY_RATE = 0.12


def _kit_population(n: int, seed: int, rate: float = 0.04) -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=n, seed=seed, target_default_rate=rate))


def _kit_train_model(n: int = 3000, seed: int = KIT_TRAIN_SEED):
    from village_credit.models.blend import fit_blend
    from village_credit.validation import reference_profile

    df = _kit_population(n, seed)
    cut = int(n * 2 / 3)
    tr, ca = df.iloc[:cut].reset_index(drop=True), df.iloc[cut:].reset_index(drop=True)
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   strategy="additive_points",
                   gbm_params={"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.08},
                   seed=0)
    # the training reference a registered model carries: its features and its score
    feats = dm.features.transform(tr)
    points = dm.decide(tr)["points"].to_numpy(float)
    dm.metadata["reference_profile"] = reference_profile(feats, score=points, score_name="score")
    return dm, df


def _kit_make_store(root: Path) -> str:
    from village_credit.registry import configure

    uri = f"sqlite:///{root.as_posix()}/mlflow.db"
    configure(uri)
    return uri


def _kit_register_model(dm, root: Path, name: str = KIT_NAME) -> str:
    """Save, log and register ``dm``; returns ``models:/name/version``."""
    import mlflow

    from village_credit.registry.pyfunc_model import log_decision_model

    d = dm.save(root / f"dm-{name}")
    with mlflow.start_run(run_name=f"train-{name}"):
        info = log_decision_model(d, input_example=dm.input_example(5), registered_model_name=name)
    return f"models:/{name}/{info.registered_model_version}"


def _kit_cached_model(tmp_path_factory):
    """The trained test model, trained once per session and kept as plain files."""
    from village_credit.models.decision import DecisionModel

    d = tmp_path_factory.getbasetemp() / "vc-kit-trained-model"
    if not (d / "model.json").is_file():
        dm, _ = _kit_train_model()
        dm.save(d)
    return DecisionModel.load(d)


@dataclass(frozen=True)
class ValidationKit:
    """The validation-kit tests' model name, riskier default rate and helpers."""

    NAME: str = KIT_NAME
    RISKY_RATE: float = KIT_RISKY_RATE
    population: Callable[..., pd.DataFrame] = _kit_population
    make_store: Callable[[Path], str] = _kit_make_store
    register_model: Callable[..., str] = _kit_register_model
    cached_model: Callable[[Any], Any] = _kit_cached_model


@pytest.fixture(scope="session")
def validation_kit() -> ValidationKit:
    return ValidationKit()


# ----------------------------------------------------------------------------- scoring
SCORING_NAME = "village-credit"
SCORING_MODEL_URI = f"models:/{SCORING_NAME}@champion"
SCORING_TRUTH = ["true_pd", "default_12m", "granted_hist", "outcome_observed"]


@dataclass
class ScoringEnv:
    root: Path
    tracking_uri: str
    model_uri: str
    version: str
    households: pd.DataFrame  # the scoring input (with injected bad rows)
    parquet: Path
    csv: Path
    bad_rows: dict[int, str]  # row number -> column with the problem

    def env(self) -> dict[str, str]:
        """Environment for a subprocess running the CLI against this store."""
        src = str(Path(__file__).resolve().parents[1] / "src")
        return {**os.environ, "MLFLOW_TRACKING_URI": self.tracking_uri,
                "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
                "PYSPARK_PYTHON": sys.executable}


def _scoring_households(n: int = 3000, seed: int = 11) -> tuple[pd.DataFrame, dict[int, str]]:
    """Generated households (truth dropped) with a few bad rows of each kind."""
    df = generate_households(GeneratorConfig(n_households=n, seed=seed))
    df = df.drop(columns=[c for c in SCORING_TRUTH if c in df.columns])
    head_age = np.array(df["head_age"], dtype="float64")  # np.array copies: writable
    head_age[[5, n // 2]] = np.nan
    size = np.array(df["household_size"])
    size[17] = -2
    education = np.array(df["education"], dtype=object)
    education[n - 3] = "doctorate_of_magic"
    hid = np.array(df["household_id"], dtype=object)
    hid[41] = hid[40]  # duplicate within one chunk: both copies are quarantined
    df = df.assign(head_age=head_age, household_size=size, education=education, household_id=hid)
    bad = {5: "head_age", n // 2: "head_age", 17: "household_size", n - 3: "education", 40: "household_id",
           41: "household_id"}
    return df, bad


def _build_scoring_env(base: Path) -> ScoringEnv:
    """Build the registered model (``@champion``) and the scoring input files under ``base``."""
    import mlflow
    from mlflow import MlflowClient

    from village_credit.data.io import write_parquet
    from village_credit.models.blend import fit_blend
    from village_credit.registry import configure
    from village_credit.registry.pyfunc_model import log_decision_model

    base.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{base.as_posix()}/mlflow.db"
    configure(uri)
    train = generate_households(GeneratorConfig(n_households=1500, seed=3))
    tr, ca = train.iloc[:1000], train.iloc[1000:]
    dm = fit_blend(tr, tr["default_12m"], ca, ca["default_12m"], policy="jinxiang_2022",
                   strategy="additive_points", gbm_params={"n_estimators": 20, "num_leaves": 7}, seed=0)
    dm.save(base / "decision_model")
    with mlflow.start_run():
        info = log_decision_model(base / "decision_model", input_example=dm.input_example(5),
                                  registered_model_name=SCORING_NAME)
    version = str(info.registered_model_version)
    # promoted through the real promotion path (the scorer refuses an ungated version);
    # the gates themselves are the subject of the registry tests, not of these
    from village_credit.registry import promote

    promote(SCORING_NAME, version, {}, override_reason="scoring tests: gates are tested in test_registry_*", override_by="test suite", override_until="2099-12-31",
            client=MlflowClient(tracking_uri=uri, registry_uri=uri))

    households, bad = _scoring_households()
    parquet = write_parquet(households, base / "households.parquet")
    csv = base / "households.csv"
    out = households.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c].dtype):
            out[c] = out[c].dt.strftime("%Y-%m-%d")
    out.to_csv(csv, index=False)
    env = ScoringEnv(root=base, tracking_uri=uri, model_uri=SCORING_MODEL_URI, version=version,
                     households=households, parquet=parquet, csv=csv, bad_rows=bad)
    return env


def _assert_every_row_once(out_dir: Path, n_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each input row number appears exactly once across decisions + quarantined rows."""
    from village_credit.scoring import read_decisions
    from village_credit.scoring.outputs import read_quarantine_rows

    dec = read_decisions(out_dir)
    bad = read_quarantine_rows(out_dir)
    rows = np.concatenate([dec["row_number"].to_numpy(np.int64), bad["row_number"].to_numpy(np.int64)])
    assert len(rows) == n_rows, (len(dec), len(bad), n_rows)
    assert np.array_equal(np.sort(rows), np.arange(n_rows))
    return dec, bad


@pytest.fixture(scope="session")
def scoring_env(tmp_path_factory: pytest.TempPathFactory) -> ScoringEnv:
    return _build_scoring_env(tmp_path_factory.mktemp("scoring_env"))


@pytest.fixture(scope="session")
def assert_every_row_once() -> Callable[[Path, int], tuple[pd.DataFrame, pd.DataFrame]]:
    return _assert_every_row_once


@pytest.fixture(autouse=True)
def _mlflow_store_restored() -> Any:
    # imported here, not at the top: MLflow and LightGBM (~4 CPU s) are then not imported by
    # the xdist controller, which loads this file before it starts the workers
    from village_credit.registry.examples import mlflow_state_restored

    with mlflow_state_restored():
        yield


@pytest.fixture
def scoring_store(scoring_env: ScoringEnv) -> ScoringEnv:
    """MLflow pointed at the scoring env's store for this test (put back afterwards by
    ``_mlflow_store_restored``): the session store was configured when the env was built,
    and a module fixture of another file may have pointed MLflow elsewhere since."""
    import mlflow

    mlflow.set_tracking_uri(scoring_env.tracking_uri)
    mlflow.set_registry_uri(scoring_env.tracking_uri)
    return scoring_env


# ----------------------------------------------------------------------------- scheduling
def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _root_examples_run_twice(items: list[pytest.Item]) -> list[pytest.Item]:
    """The ``--doctest-modules`` items of the root functions whose example
    tests/test_docstring_examples.py also runs, in a fresh namespace, in this session.

    Both run the same example (same module, same ``>>>`` lines); the fresh namespace is
    the stricter run (an example may not lean on its module's globals), so the module one
    is the duplicate. A run that collects only the module (``pytest src/...``) keeps it.
    """
    import inspect

    import village_credit

    fresh = {it.callspec.params["name"] for it in items
             if it.name.startswith("test_root_example_runs_in_a_fresh_namespace[")}
    doc_names = set()
    for name in fresh:
        obj = getattr(village_credit, name)
        if inspect.isfunction(obj):
            doc_names.add(f"{obj.__module__}.{obj.__qualname__}")
    return [it for it in items if isinstance(it, pytest.DoctestItem) and it.dtest.name in doc_names] \
        if doc_names else []


DURATIONS = Path(__file__).with_name("durations.json")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-durations", action="store_true", default=False,
                     help="write each file's seconds of this run into tests/durations.json "
                          "(the order of the files under `make test`)")


def file_weights(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per test file (node id prefix) of a measured run; empty if there is no table."""
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(f): float(s) for f, s in table.get("seconds", {}).items()}


def longest_first(items: list[pytest.Item], weights: dict[str, float]) -> None:
    """Sort ``items`` in place so that files run longest first (a stable sort: a file's
    tests stay together and in their order).

    With ``--dist loadfile`` a file is one unit, handed to whichever worker is nearly out
    of work; the longest files first leave only short ones for the end (the LPT rule),
    so the two workers end close together. A file not in the table counts as a median
    one; one holding a ``slow`` test before all (new end-to-end work starts first).
    """
    medium = statistics.median(weights.values()) if weights else 0.0
    slow_files = {_file_of(it) for it in items if it.get_closest_marker("slow")}

    def weight(f: str) -> float:
        if f in weights:
            return weights[f]
        return math.inf if f in slow_files else medium

    by_file = {f: weight(f) for f in {_file_of(it) for it in items}}
    items.sort(key=lambda it: -by_file[_file_of(it)])


@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only what will really run counts
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest files run first; a root function's example runs once.

    Under ``make test`` (``--dist loadfile --no-loadscope-reorder``) xdist hands the files
    out in this order. xdist's default order (files with the most tests first) started
    the one-test end-to-end files last, and one worker idled while the other finished
    them. (``--dist loadgroup`` would split files further, but with pytest 9 xdist 3.8
    ignores ``xdist_group``: it sets a node id attribute pytest no longer reads.)
    """
    twice = _root_examples_run_twice(items)
    if twice:
        config.hook.pytest_deselected(items=twice)
        ids = {id(it) for it in twice}
        items[:] = [it for it in items if id(it) not in ids]
    longest_first(items, file_weights())


_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Setup + call + teardown seconds per file (module fixtures' teardown included), as the
    controller sees them (under xdist the workers' reports reach it)."""
    file = report.nodeid.split("::", 1)[0]
    _seconds[file] = _seconds.get(file, 0.0) + report.duration


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``--update-durations``: merge this run's seconds per file into tests/durations.json
    (only in the controller; the files not run keep their entries). Then the session's
    garbage is collected once and the heap frozen (:func:`_freeze_heap`)."""
    config = session.config
    if config.getoption("--update-durations", default=False) and not hasattr(config, "workerinput"):
        _write_durations()
    _freeze_heap()


SLOW_EXIT = os.environ.get("VC_SLOW_EXIT") == "1"
"""``VC_SLOW_EXIT=1``: a run ends as pytest makes it (no frozen heap, no quick worker exit), to compare."""


def _freeze_heap() -> None:
    """Collect the session's garbage once, then freeze the heap.

    pytest's exit makes ten full collections (looking for exceptions raised in
    finalisers); on a worker's ~1 GiB heap each walked every object again. Garbage found
    by this one collection still reports its finalisers' exceptions as those would.
    """
    if not SLOW_EXIT:
        gc.collect()
        gc.freeze()


def _write_durations() -> None:
    table = {"about": "seconds per test file of a measured run (setup + call + teardown); "
                      "tests/conftest.py runs the files longest first. Rewrite with "
                      "`pytest -n 2 --dist loadfile --no-loadscope-reorder --update-durations`.",
             "seconds": file_weights()}
    # a file under 0.05 s keeps the smallest positive weight: a 0 would read as "no entry"
    table["seconds"].update({f: max(round(s, 1), 0.1) for f, s in _seconds.items()})
    table["seconds"] = dict(sorted(table["seconds"].items(), key=lambda kv: (-kv[1], kv[0])))
    DURATIONS.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")


def _quick_worker_exit() -> None:
    """The last thing an xdist worker runs: leave without the interpreter's teardown.

    The controller waits for every worker process to end before it reports, and a
    worker's teardown (dropping every module and object of a ~1 GiB heap, after the
    last test has reported) took seconds of that wait. Output is flushed first; nothing
    after this would have reached the controller anyway.
    """
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(0)


if os.environ.get("PYTEST_XDIST_WORKER") and not SLOW_EXIT:
    # registered while this conftest loads, so it runs after the exit handlers the tests'
    # libraries register later (atexit runs them last-in first-out)
    atexit.register(_quick_worker_exit)
