"""t-closeness of ``default_12m`` (issue 28 item 4): met by the recoding, repaired or suppressed and
counted where it cannot be, and the homogeneity attack reported for both outcome values."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.data.generator import GeneratorConfig
from village_credit.privacy.anonymise import DEFAULT_QUASI_IDENTIFIERS, anonymise
from village_credit.privacy.closeness import enforce_t_closeness
from village_credit.privacy.raw_records import generate_raw_records
from village_credit.privacy.recoding import local_recode
from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG

KEY = bytes(range(32))
QIS = list(DEFAULT_QUASI_IDENTIFIERS)
LOC_QIS = ["village_code", "township_code", "head_age", "head_gender"]
T = DEFAULT_PRIVACY_CONFIG.t


def _largest_distance(table: pd.DataFrame, qis: list[str], y: pd.Series) -> float:
    """Independent count: the largest |default rate of a class - default rate of the table|."""
    y = pd.Series(np.asarray(y, float), index=table.index)
    rate = y.groupby([table[q] for q in qis], dropna=False, observed=True).transform("mean")
    return float((rate - y.mean()).abs().max())


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return generate_raw_records(GeneratorConfig(n_households=600, seed=3))


@pytest.fixture(scope="module")
def result(raw):
    return anonymise(raw, KEY, measure_risk=False)


def test_default_release_meets_t_closeness(raw, result) -> None:
    rep, hh = result.report, result.households
    assert T == 0.2 and rep.closeness["t_target"] == T
    t = _largest_distance(hh, QIS, hh["default_12m"])
    assert t <= T
    assert rep.closeness["t_achieved"]["default_12m"] == pytest.approx(t, abs=1e-6)
    assert rep.risk["syntactic"]["t_closeness"]["default_12m"] == pytest.approx(t, abs=1e-6)  # pycanon agrees
    assert rep.k_achieved >= 5 and rep.reconciles
    # without the target the same file's release breaches it: the recoding is what meets it
    untargeted = anonymise(raw, KEY, measure_risk=False, config=replace(DEFAULT_PRIVACY_CONFIG, t=None))
    assert _largest_distance(untargeted.households, QIS, untargeted.households["default_12m"]) > T
    assert untargeted.report.closeness["t_target"] is None


def test_recoding_does_not_split_a_class_beyond_t() -> None:
    """Village A's 10 heads hold 4 defaults (40 % against 10 %): released alone they would tell the
    insider so; the recoding keeps A and B together (township) instead, each part within t."""
    df = pd.DataFrame({"village_code": ["T1A"] * 10 + ["T1B"] * 30, "township_code": "T1",
                       "head_age": 40, "head_gender": "M"})
    y = np.r_[np.ones(4), np.zeros(36)].astype(int)
    free = local_recode(df, LOC_QIS, 5, DEFAULT_PRIVACY_CONFIG.hierarchies)
    assert set(free.data["village_code"]) == {"T1A", "T1B"}  # k alone keeps the villages
    rec = local_recode(df, LOC_QIS, 5, DEFAULT_PRIVACY_CONFIG.hierarchies, closeness={"default_12m": y}, t=0.15)
    assert rec.n_suppressed == 0
    assert set(rec.data["village_code"]) != {"T1A", "T1B"}  # merged: no village released alone
    assert _largest_distance(rec.data, LOC_QIS, pd.Series(y, index=df.index)) <= 0.15


def test_cell_that_cannot_be_merged_is_suppressed() -> None:
    """Gender is never generalised: 6 women heads with 3 defaults (50 %) cannot be merged with the
    men, so they are withheld (``suppressed_t``) and the men's class is measured against what is left."""
    df = pd.DataFrame({"village_code": "T1A", "township_code": "T1", "head_age": 40,
                       "head_gender": ["F"] * 6 + ["M"] * 60})
    y = np.r_[1, 1, 1, 0, 0, 0, 1, np.zeros(59)].astype(int)
    rec = local_recode(df, LOC_QIS, 5, DEFAULT_PRIVACY_CONFIG.hierarchies, closeness={"default_12m": y}, t=0.15)
    women = df["head_gender"] == "F"
    assert rec.suppressed_t.equals(women) and rec.suppressed.equals(women)
    assert _largest_distance(rec.data, LOC_QIS, pd.Series(y, index=df.index).loc[rec.data.index]) <= 0.15
    with pytest.raises(Exception, match="t-closeness"):
        local_recode(df, LOC_QIS, 5, DEFAULT_PRIVACY_CONFIG.hierarchies, closeness={"default_12m": y}, t=0)


def test_tight_t_suppresses_and_counts_per_group(raw) -> None:
    """A target the recoding cannot meet everywhere (t = 0.03) withholds the cells that breach it,
    counted per age band and formerly-poor status, and the release meets it."""
    res = anonymise(raw, KEY, measure_risk=False, config=replace(DEFAULT_PRIVACY_CONFIG, t=0.03))
    rep, hh = res.report, res.households
    c = rep.closeness
    assert c["n_suppressed"] > 0 and rep.reconciles
    for grp in ("age_band", "formerly_poor"):
        assert sum(v["n_suppressed"] for v in c["suppressed_by_group"][grp].values()) == c["n_suppressed"]
        # included in the suppression every group is charged with
        for g, v in c["suppressed_by_group"][grp].items():
            assert rep.suppressed_by_group[grp][g]["n_suppressed"] >= v["n_suppressed"]
    assert _largest_distance(hh, QIS, hh["default_12m"]) <= 0.03 + 1e-12


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=8), seed=st.integers(0, 10_000),
       t=st.sampled_from([0.05, 0.15, 0.3]))
def test_final_repair_leaves_every_class_within_t(sizes: list[int], seed: int, t: float) -> None:
    """Whatever the classes, what the repair keeps is within t of what it keeps (iterated: the
    overall rate moves with each withheld class), and it withholds whole classes only."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({"cls": np.repeat(np.arange(len(sizes)), sizes)})
    y = pd.Series((rng.random(len(table)) < 0.2).astype(int), index=table.index)
    drop = enforce_t_closeness(table, ["cls"], {"default_12m": y}, t)
    assert drop.groupby(table["cls"]).nunique().max() == 1  # whole classes
    kept = table.loc[~drop]
    if len(kept):
        assert _largest_distance(kept, ["cls"], y.loc[kept.index]) <= t + 1e-12


def test_report_shows_both_homogeneity_figures(result) -> None:
    rep, hh = result.report, result.households
    out = rep.risk["homogeneity"]["outcome"]
    assert out["column"] == "default_12m" and out["t_target"] == T
    ins = out["by_holder"]["village_insider"]
    rate = hh["default_12m"].astype(float).groupby([hh[q] for q in QIS], observed=True).transform("mean")
    assert ins["repaid_certain_share"] == pytest.approx(float((rate == 0).mean()), abs=1e-6)
    assert ins["repaid_certain_share"] > 0  # the cost of a rare outcome, reported
    assert ins["default_certain_n"] == int((rate == 1).sum()) == 0  # the target
    assert ins["max_default_posterior"] == pytest.approx(float(rate.max()), abs=1e-6)
    assert ins["max_default_posterior"] <= ins["base_rate"] + T + 1e-9
    assert set(out["by_holder"]) == {a.name for a in DEFAULT_PRIVACY_CONFIG.attackers}
    text = rep.summary()
    assert "repaid certain for" in text and "default certain for 0" in text and "t-closeness of default_12m" in text
    # the l-diversity line of the t-protected outcome says it is not the requirement
    assert "not required: protected by t-closeness" in next(
        line for line in text.splitlines() if line.startswith("l-diversity of default_12m"))


def _keeper_table() -> tuple[pd.DataFrame, np.ndarray]:
    """Village A: two households share the only veto date and both defaulted (a class of two on the
    register keeper's columns: neither unique, both certain defaults), four without events repaid.
    Village B: its only two households defaulted, no events (a class of defaults only)."""
    table = pd.DataFrame({"village_code": ["A"] * 6 + ["B"] * 2, "snapshot_date": pd.Timestamp("2025-06-30"),
                          "veto_petition_date": [pd.Timestamp("2025-03-01")] * 2 + [pd.NaT] * 6})
    return table, np.r_[1, 1, 0, 0, 0, 0, 1, 1]


def test_keeper_class_of_defaults_only_is_protected_and_counted() -> None:
    from village_credit.privacy.precision import protect_holders

    table, y = _keeper_table()
    keeper = {"register_keeper": ["village_code", "veto_petition_date"]}
    plain, plain_gone, _ = protect_holders(table, keeper, [], 1, 2)  # uniqueness only: both classes stay
    assert not plain_gone.any() and plain["veto_petition_date"].notna().sum() == 2
    out, gone, rep = protect_holders(table, keeper, [], 1, 2, outcome=y)
    kept = out.loc[~gone]
    rate = pd.Series(y[~gone], index=kept.index).groupby(
        [kept["village_code"], kept["veto_petition_date"]], dropna=False).transform("mean")
    assert (rate < 1).all()  # default certain for no one left
    assert gone.tolist() == [False] * 6 + [True] * 2  # B cannot be merged with anyone: withheld
    assert kept["veto_petition_date"].isna().all()  # A's two joined the village's households without events
    assert rep.default_certain >= 4 and rep.suppressed == 2 and len(out) == len(table)  # counted; counts in = out


def test_release_has_no_default_certain_class_for_any_holder() -> None:
    """Three households of one village planted with the same (only) veto date, all defaulted: the
    register keeper's class of them would tell it they defaulted. The release has default certain 0
    for every declared holder, the rows the protection treated or withheld are counted (per age band
    and formerly-poor status for the withheld), and rows in = released + suppressed + quarantined."""
    raw = generate_raw_records(GeneratorConfig(n_households=400, seed=5)).copy()
    events = [c for c in raw.columns if c.startswith(("ded_", "veto_")) and c.endswith("_date")]
    village = raw["village_code"].value_counts().index[0]
    male = raw["resident_id"].astype(str).str[16].astype(int) % 2 == 1  # same released cell: gender exact
    pick = raw.index[(raw["village_code"] == village) & ~raw["formerly_poor"].astype(bool) & male][:3]
    raw.loc[pick, events] = pd.NaT
    raw.loc[pick, "veto_petition_date"] = pd.Timestamp("2025-03-01")
    raw.loc[pick, "default_12m"] = 1
    res = anonymise(raw, KEY, measure_risk=False)
    rep, hh = res.report, res.households
    for a in DEFAULT_PRIVACY_CONFIG.attackers:
        cols = [c for c in a.knows if c in hh.columns]
        rate = hh["default_12m"].astype(float).groupby([hh[c] for c in cols], dropna=False,
                                                       observed=True).transform("mean")
        assert (rate < 1).all(), a.name  # independent count
        assert rep.risk["homogeneity"]["outcome"]["by_holder"][a.name]["default_certain_n"] == 0
    prot = rep.precision["holder_protection"]
    assert prot["default_certain"] >= 2  # the planted class was found and sent further
    assert hh["veto_petition_date"].isna().all()  # by withholding the planted date (the gentlest step left)
    for grp in ("age_band", "formerly_poor"):
        assert sum(v["n_suppressed"] for v in prot["suppressed_by_group"][grp].values()) == prot["suppressed"]
    assert prot["repair_rounds"] >= 1 and rep.reconciles
    assert rep.n_in == len(raw) == rep.n_released + rep.n_suppressed + rep.n_quarantined


def test_a_step_with_min_class_keeps_rows_only_in_large_mixed_classes() -> None:
    """A step that must not raise the bank's figures (``min_class``, the minimal history): rows stay
    there only in a class of at least that many holding both outcomes; the others go on."""
    from village_credit.privacy.precision import HolderStage, protect_holders

    def to(value: float):
        def apply(table, rows, cols=(), qis=()):
            table.iloc[rows, table.columns.get_loc("credit_limit_yuan")] = value
            return np.ones(len(rows), dtype=bool)
        return apply

    stages = (HolderStage("histories_minimal", "bank", to(0.0), min_class=3),
              HolderStage("histories_withheld", "bank", to(-1.0)))
    table = pd.DataFrame({"village_code": ["A"] * 4 + ["B"] * 2 + ["C"] * 3,
                          "credit_limit_yuan": np.arange(9, dtype=float) + 1})  # every row unique
    y = np.r_[1, 0, 0, 0, 1, 0, 0, 0, 0]
    bank = {"lending_bank": ["village_code", "credit_limit_yuan"]}
    out, gone, rep = protect_holders(table, bank, [], 1, 2, stages=stages, outcome=y)
    assert not gone.any() and len(out) == len(table)
    # A: 4 rows, both outcomes -> stays; B: 2 rows (< 3) and C: all repaid -> the next step
    assert out["credit_limit_yuan"].tolist() == [0.0] * 4 + [-1.0] * 5
    assert rep.histories_minimal == 9 and rep.histories_withheld == 5
    # without the outcome only the class size counts: C (3 rows) stays
    out2, _, _ = protect_holders(table, bank, [], 1, 2, stages=stages)
    assert out2["credit_limit_yuan"].tolist() == [0.0] * 4 + [-1.0] * 2 + [0.0] * 3
