"""Threat model config, local recoding invariants, risk measurement and the scanner's QI check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.groups import age_band
from village_credit.errors import VillageCreditError
from village_credit.privacy.kanon import class_sizes
from village_credit.privacy.recoding import ANY, local_recode
from village_credit.privacy.risk import syntactic_risk
from village_credit.privacy.scanner import scan_pii
from village_credit.privacy.threat_model import (
    DEFAULT_PRIVACY_CONFIG,
    INSIDER,
    PrivacyConfigError,
    load_privacy_config,
)

CFG = DEFAULT_PRIVACY_CONFIG


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=1500, seed=4, n_townships=2, villages_per_township=4))


# --- threat model -----------------------------------------------------------------

def test_default_qis_are_what_the_insider_knows() -> None:
    for col in ("village_code", "head_age", "head_gender", "household_size", "education", "land_mu"):
        assert col in CFG.qis
    assert set(INSIDER.knows) <= set(CFG.qis)
    assert CFG.k == 5


def test_yaml_config_overrides_and_validates(tmp_path) -> None:
    p = tmp_path / "privacy.yaml"
    p.write_text("k: 7\nquasi_identifiers: [village_code, head_age, land_mu]\n"
                 "hierarchies:\n  land_mu: {edges: [0, 5, 10, 5001], decimals: 1}\nrisk: {enabled: false}\n",
                 encoding="utf-8")
    cfg = load_privacy_config(p)
    assert cfg.k == 7 and cfg.qis == ("village_code", "head_age", "land_mu")
    assert cfg.hierarchies["land_mu"].edges == (0, 5, 10, 5001)
    assert cfg.risk.enabled is False


@pytest.mark.parametrize(("text", "key"), [
    ("k: 0\n", "k"),
    ("quasi_identifiers: [village_code, shoe_size]\n", "quasi_identifiers"),
    ("hierarchies:\n  land_mu: {edges: [5, 1]}\n", "hierarchies.land_mu"),
    ("hierarchies:\n  head_age: {edges: [18, 60, 101], mandatory: [65]}\n", "hierarchies.head_age"),
    ("attackers:\n  neighbour: {knows: [land_mu, nope]}\n", "attackers.neighbour.knows"),
    ("risk: {n_attacks: -3}\n", "risk.n_attacks"),
    ("hierarchies:\n  head_gender: {edges: [0, 1, 2]}\n", "hierarchies.head_gender"),
    ("colour: blue\n", "colour"),
    ("t: 1.5\n", "t"),
    ("t: 0\n", "t"),
    ("t: high\n", "t"),
    ("t_targets: [land_mu]\n", "t_targets"),
    ("t_targets: [default_12m, nope]\n", "t_targets"),
])
def test_bad_config_names_file_and_key(tmp_path, text, key) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(PrivacyConfigError) as exc:
        load_privacy_config(p)
    assert str(p) in str(exc.value) and f": {key}:" in str(exc.value)
    assert isinstance(exc.value, VillageCreditError)


# --- local recoding ---------------------------------------------------------------

def _expected_suppressed(df: pd.DataFrame, exact: list[str], k: int) -> pd.Series:
    """Per row: withheld only where its cell of exact values x side of the elderly cut (60) is
    below k; the other age-band starts (41, 65, 70) are crossed where a part would fall below k."""
    side = df["head_age"] >= 60
    return df.groupby([*[df[c] for c in exact], side])["head_age"].transform("size") < k


def _bands_move_only_in_classes_spanning_them(rec, raw: pd.DataFrame) -> None:
    """A released age leaves its fairness band only in a class whose households span two bands."""
    moved = age_band(rec.data["head_age"]) != age_band(raw["head_age"])
    spans = pd.Series(age_band(raw["head_age"]), index=raw.index).groupby(rec.class_id).transform("nunique") > 1
    assert not (moved & ~spans).any()


def test_recoding_reaches_k_suppressing_little_and_keeps_groups(households) -> None:
    qis = list(CFG.qis)
    rec = local_recode(households, qis, 5, CFG.hierarchies)
    # only cells of exact values (gender x formerly poor x side of 60) below k are withheld
    assert (rec.suppressed == _expected_suppressed(households, ["head_gender", "formerly_poor"], 5)).all()
    assert rec.n_suppressed <= 0.01 * len(households)
    assert int(class_sizes(rec.data, qis).min()) >= 5
    raw = households.loc[rec.data.index]
    # fairness bands move only in classes that had to span them; exact QIs and the 60 cut never
    _bands_move_only_in_classes_spanning_them(rec, raw)
    assert (age_band(rec.data["head_age"]) != age_band(raw["head_age"])).mean() < 0.1
    assert ((rec.data["head_age"] >= 60) == (raw["head_age"] >= 60)).all()
    assert (rec.data["head_gender"] == raw["head_gender"]).all()
    assert (rec.data["formerly_poor"] == raw["formerly_poor"]).all()
    assert rec.data["household_size"].between(1, 15).all()
    # it is generalisation, not a copy: land and size are coarsened for most households
    assert (rec.data["land_mu"] != raw["land_mu"]).mean() > 0.5
    # location is the village where k allows, else its township or any
    assert set(rec.location_levels) <= {"village", "township", "any"}
    gen_v = rec.data["village_code"].str.endswith(ANY)
    assert (rec.data.loc[~gen_v, "village_code"] == raw.loc[~gen_v, "village_code"]).all()


def test_small_elderly_cell_is_merged_by_age_band_and_keeps_its_village() -> None:
    """Issue 28 item 5: a village's 3 heads aged 60-64 and 3 aged 65-69 (each below k) are one
    class of 60+ in their village (age widened) instead of being released at township level."""
    rng = np.random.default_rng(0)
    ages = {"V1": [*rng.integers(25, 59, 40), 61, 62, 63, 66, 67, 68],
            "V2": [*rng.integers(25, 59, 40), *rng.integers(60, 65, 8), *rng.integers(65, 70, 8)]}
    df = pd.DataFrame([{"village_code": f"T1{v}", "township_code": "T1", "head_age": int(a), "head_gender": "M"}
                       for v, aa in ages.items() for a in aa])
    qis = ["village_code", "township_code", "head_age", "head_gender"]
    rec = local_recode(df, qis, 5, CFG.hierarchies)
    assert rec.n_suppressed == 0 and int(class_sizes(rec.data, qis).min()) >= 5
    old = (df["village_code"] == "T1V1") & (df["head_age"] >= 60)
    assert (rec.data.loc[old, "village_code"] == "T1V1").all()  # kept its village
    assert (rec.data.loc[old, "head_age"] >= 60).all()  # on its side of 60
    assert rec.bands.loc[old, "head_age"].nunique() == 1 and rec.bands.loc[old, "head_age"].iloc[0] == "61-69"
    # the large village's elderly still get the 65 cut (k allows it there)
    v2 = (df["village_code"] == "T1V2") & (df["head_age"] >= 60)
    assert (age_band(rec.data.loc[v2, "head_age"]) == age_band(df.loc[v2, "head_age"])).all()
    assert (rec.data["village_code"] == df["village_code"]).all()  # nobody coarsened


def test_band_kept_where_merging_it_would_keep_no_village() -> None:
    """The 65 cut is only given up to keep a village: where no village holds k heads of 60+ (a
    small file), the 60-64 and 65-69 heads keep their own bands (and lose the location)."""
    rng = np.random.default_rng(1)
    ages = {"T1V1": [61, 62, 66], "T1V2": [63, 67, 68], "T2V1": [60, 65, 66], "T2V2": [64, 69]}
    df = pd.DataFrame([{"village_code": v, "township_code": v[:2], "head_age": int(a), "head_gender": "M"}
                       for v, aa in ages.items() for a in [*rng.integers(25, 59, 30), *aa]])
    qis = ["village_code", "township_code", "head_age", "head_gender"]
    rec = local_recode(df, qis, 5, CFG.hierarchies)
    assert rec.n_suppressed == 0 and int(class_sizes(rec.data, qis).min()) >= 5
    old = df["head_age"] >= 60
    assert (age_band(rec.data.loc[old, "head_age"]) == age_band(df.loc[old, "head_age"])).all()
    assert (rec.data.loc[old, "village_code"] == "*").all()
    assert (rec.data.loc[~old, "village_code"] == df.loc[~old, "village_code"]).all()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(min_value=0, max_value=120), k=st.integers(min_value=1, max_value=8),
       seed=st.integers(min_value=0, max_value=10_000))
def test_recoding_invariants(n: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "village_code": rng.choice(["T1V1", "T1V2", "T2V1"], n),
        "head_age": rng.integers(18, 95, n), "head_gender": rng.choice(["F", "M"], n, p=[0.2, 0.8]),
        "land_mu": np.round(rng.exponential(6, n), 1), "household_size": rng.integers(1, 9, n),
    })
    df["township_code"] = df["village_code"].str[:2]
    qis = ["village_code", "township_code", "head_age", "head_gender", "land_mu", "household_size"]
    rec = local_recode(df, qis, k, CFG.hierarchies)
    # counts in = counts out; every released class >= k; suppression only on exact-QI cells < k
    assert len(rec.data) + rec.n_suppressed == n
    expected = _expected_suppressed(df, ["head_gender"], k) if n else pd.Series(dtype=bool)
    if len(rec.data):
        assert int(class_sizes(rec.data, qis).min()) >= k
        _bands_move_only_in_classes_spanning_them(rec, df.loc[rec.data.index])
        released, raw_age = rec.data["head_age"], df.loc[rec.data.index, "head_age"]
        assert ((released >= 60) == (raw_age >= 60)).all()
    assert (rec.suppressed == expected).all()


# --- risk -------------------------------------------------------------------------

def test_syntactic_risk_uses_pycanon_and_flags_unprotected_tables(households) -> None:
    qis = ["village_code", "head_age", "household_size", "land_mu"]
    raw_risk = syntactic_risk(households, qis, ["default_12m"], {"insider": qis})
    assert raw_risk["k_anonymity"] == 1  # exact land area singles households out
    rec = local_recode(households, qis, 5, CFG.hierarchies)
    r = syntactic_risk(rec.data, qis, ["default_12m"], {"insider": qis, "outsider": ["village_code"]})
    assert r["tool"].startswith("pycanon")
    assert r["k_anonymity"] >= 5 and r["k_by_attacker"]["insider"] >= 5
    assert r["l_diversity"]["default_12m"] >= 1
    assert 0 <= r["t_closeness"]["default_12m"] <= 1
    empty = syntactic_risk(households.iloc[:0], qis, ["default_12m"])
    assert empty["k_anonymity"] is None


def test_attack_risk_reports_measured_or_why_not(households) -> None:
    from village_credit.privacy.risk import anonymeter_available, attack_risk

    qis = ["head_age", "household_size", "land_mu"]
    half = households.iloc[:600]
    rec = local_recode(half, qis, 5, CFG.hierarchies)
    out = attack_risk(half.loc[rec.data.index], rec.data, households.iloc[600:1200], qis, "default_12m",
                      n_attacks=50, seed=1)
    if not anonymeter_available():
        assert out["status"].startswith("not measured")
        return
    assert out["status"] == "measured"
    for attack in ("singling_out", "linkability", "inference"):
        assert 0 <= out[attack]["risk"] <= 1


# --- scanner ----------------------------------------------------------------------

def test_scanner_flags_tables_whose_qi_classes_are_below_k(tmp_path, households) -> None:
    out = tmp_path / "out"
    out.mkdir()
    cols = ["household_id", "village_code", "township_code", "head_age", "land_mu", "household_size"]
    households[cols].to_parquet(out / "leaky.parquet")
    households[cols].to_csv(out / "leaky.csv", index=False)
    rec = local_recode(households, list(CFG.qis), 5, CFG.hierarchies)
    rec.data[cols].to_parquet(out / "released.parquet")
    households[["household_id", "village_code", "township_code"]].to_parquet(out / "ids_only.parquet")
    findings = scan_pii(out)
    flagged = {f.file.rsplit("/", 1)[-1] for f in findings if f.kind == "small_qi_class"}
    assert flagged == {"leaky.parquet", "leaky.csv"}
    msg = next(f for f in findings if f.kind == "small_qi_class").snippet_masked
    assert "smaller than k=5" in msg
    assert not [f for f in scan_pii(out, quasi_identifiers=()) if f.kind == "small_qi_class"]


def test_cli_scan_pii_reports_small_classes(tmp_path, households) -> None:
    from village_credit.cli import app

    households[["village_code", "head_age", "land_mu"]].to_csv(tmp_path / "t.csv", index=False)
    r = CliRunner().invoke(app, ["scan-pii", "--input", str(tmp_path)])
    assert r.exit_code == 1 and "small_qi_class" in r.output
    r = CliRunner().invoke(app, ["scan-pii", "--input", str(tmp_path), "--no-qi-check"])
    assert r.exit_code == 0, r.output


def test_cli_anonymise_reads_the_privacy_config(tmp_path) -> None:
    import json

    from village_credit.cli import app

    runner = CliRunner()
    raw_csv, key = tmp_path / "raw.csv", tmp_path / "secret.key"
    assert runner.invoke(app, ["make-key", "--output", str(key)]).exit_code == 0
    assert runner.invoke(app, ["generate-raw", "--n-households", "300", "--seed", "2", "--output", str(raw_csv)]).exit_code == 0
    conf = tmp_path / "privacy.yaml"
    conf.write_text("k: 3\nquasi_identifiers: [village_code, township_code, head_age, head_gender, land_mu]\n",
                    encoding="utf-8")
    out = tmp_path / "hh.parquet"
    r = runner.invoke(app, ["anonymise", "--input", str(raw_csv), "--output", str(out), "--key-file", str(key),
                            "--privacy-config", str(conf), "--no-risk"])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "hh.anonymisation.json").read_text())
    assert rep["k_required"] == 3 and rep["quasi_identifiers"][-1] == "land_mu"
    assert rep["threat_model"]["source"] == str(conf)
    assert rep["risk"]["syntactic"]["k_anonymity"] >= 3
    assert rep["risk"]["attacks"]["status"].startswith("not measured")
    conf.write_text("k: three\n", encoding="utf-8")
    r = runner.invoke(app, ["anonymise", "--input", str(raw_csv), "--output", str(out), "--key-file", str(key),
                            "--privacy-config", str(conf)])
    assert r.exit_code == 2 and "privacy.yaml: k:" in r.output


# --- utility ----------------------------------------------------------------------

@pytest.mark.slow
def test_utility_comparison_trains_both_models_on_the_same_households() -> None:
    from village_credit.privacy.errors import PrivacyError
    from village_credit.privacy.utility import utility_comparison

    hh = generate_households(GeneratorConfig(n_households=2500, seed=6, n_townships=2, villages_per_township=5))
    rec = local_recode(hh, list(CFG.qis), 5, CFG.hierarchies)
    anon = rec.data.copy()
    anon["dependents"] = np.minimum(anon["dependents"], anon["household_size"])
    out = utility_comparison(hh, anon, seed=0, n_boot=5)
    auc = out["auc"]
    assert out["n_households"] == len(anon) == out["n_train"] + out["n_calibration"] + out["n_holdout"]
    assert 0.5 < auc["raw_model_raw_holdout"] <= 1 and 0.5 < auc["anon_model_anon_holdout"] <= 1
    assert out["auc_difference"] == pytest.approx(auc["anon_model_anon_holdout"] - auc["raw_model_raw_holdout"],
                                                  abs=1e-6)
    lo, hi = out["auc_difference_ci"]  # paired DeLong: both models on the same hold-out rows
    assert lo < out["auc_difference"] < hi and hi - lo < 0.2
    assert set(out["approval_by_group"]) == {"raw", "anonymised"}
    assert {d["feature"] for d in out["fairness_disparities"]} >= {"age_band", "formerly_poor"}
    with pytest.raises(PrivacyError, match="not in the raw table"):
        utility_comparison(hh.iloc[:100], anon)
