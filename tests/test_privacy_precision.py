"""Issue 28: dates and amounts at the models' precision, the record holders, l-diversity,
burden per group, and the scanner on model files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.data.schema import history_columns
from village_credit.models.features import build_household_features
from village_credit.privacy.anonymise import anonymise
from village_credit.privacy.precision import EVENT_WINDOW_MONTHS, event_columns, release_precision
from village_credit.privacy.raw_records import add_fake_pii
from village_credit.privacy.scanner import scan_pii
from village_credit.rules import score_rules

KEY = bytes(range(32))
BANDED = {"worst_dpd", "worst_dpd_6m", "worst_dpd_12m", "recent_dpd", "utilisation", "income_volatility"}


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=800, seed=3))


@pytest.fixture(scope="module")
def result(households):
    return anonymise(add_fake_pii(households, 3), KEY, measure_risk=False)


def test_every_shipped_policy_window_is_a_release_band() -> None:
    policies = Path(__file__).resolve().parents[1] / "src/village_credit/rules/policies"
    windows = set()
    for f in policies.glob("*.yaml"):
        doc = yaml.safe_load(f.read_text(encoding="utf-8"))
        for section in ("deductions", "vetoes"):
            for item in (doc.get(section) or {}).values():
                if isinstance(item, dict) and "window_years" in item:
                    windows.add(12 * int(item["window_years"]))
    assert windows and windows <= set(EVENT_WINDOW_MONTHS)


@pytest.mark.parametrize("policy", ["jinxiang_2022", "tongxiang", "xx_county", "rencheng_2025"])
def test_rule_points_identical_on_released_dates_and_amounts(households, policy) -> None:
    released, _ = release_precision(households)
    a, b = score_rules(households, policy), score_rules(released, policy)
    np.testing.assert_array_equal(np.asarray(a.points), np.asarray(b.points))


def test_features_unchanged_except_the_banded_ones(households) -> None:
    released, rep = release_precision(households)
    fa, fb = build_household_features(households), build_household_features(released)
    exact = [c for c in fa.columns if c not in BANDED]
    pd.testing.assert_frame_equal(fa[exact], fb[exact], atol=0.01, rtol=0)
    # banded: worst days past due keep their collection bucket
    bucket = np.searchsorted([1, 30, 60, 90], fa["worst_dpd"], side="right")
    np.testing.assert_array_equal(bucket, np.searchsorted([1, 30, 60, 90], fb["worst_dpd"], side="right"))
    assert rep.history_households_reordered > 0 and rep.events_blanked_outside_windows > 0


def test_history_amounts_are_ratios_and_loan_months_lose_their_position(households) -> None:
    released, _ = release_precision(households)
    due = released[history_columns("due")].to_numpy()
    assert due.max() <= 1.0 + 1e-9  # ratios to the household's largest instalment
    raw_due = households[history_columns("due")].to_numpy()
    assert ((due > 0).sum(axis=1) == (raw_due > 0).sum(axis=1)).all()
    # without delinquency, loan months sit last whatever month the loan started
    clean = (households[history_columns("dpd")].to_numpy() == 0).all(axis=1) & (raw_due > 0).any(axis=1)
    n_loan = (due[clean] > 0).sum(axis=1)
    assert ((due[clean] > 0) == (np.arange(due.shape[1]) >= (due.shape[1] - n_loan)[:, None])).all()


def test_every_holder_measured_and_released_columns_single_out_fewer(result) -> None:
    holders = result.report.risk["holders"]
    assert set(holders["released"]) == {"village_insider", "outside_party", "lending_bank", "register_keeper"}
    for name in ("lending_bank", "register_keeper"):
        assert holders["released"][name]["n_unique"] < holders["raw"][name]["n_unique"]
    assert holders["released"]["village_insider"]["k"] >= 5
    assert holders["raw"]["village_insider"]["unique_share"] > 0.5


def test_debt_flags_are_l_diverse_and_homogeneity_is_reported(result) -> None:
    hom = result.report.risk["homogeneity"]
    assert hom["l_targets"] == ["private_debt_yuan>0", "balance_yuan>0"]
    insider = hom["by_holder"]["village_insider"]
    hh = result.households
    flag = (hh["private_debt_yuan"] > 0).astype(int)
    qis = result.report.quasi_identifiers
    distinct = hh.assign(f=flag).groupby(qis, dropna=False, observed=True)["f"].transform("nunique")
    assert insider["private_debt_yuan>0"]["certain_share"] == pytest.approx(float((distinct < 2).mean()), abs=1e-6)
    assert insider["private_debt_yuan>0"]["certain_share"] < 0.05
    assert "default_12m" in insider  # measured even where not targeted


def test_burden_per_group_reported_and_elderly_within_twice(result) -> None:
    burden = result.report.burden
    assert set(burden["age_band"]) == {"18-40", "41-59", "60-64", "65-69", "70+"}
    assert set(burden["formerly_poor"]) == {"formerly_poor", "other"}
    assert "altered_share.location" in burden["age_band"]["65-69"]
    assert set(burden["elderly_loss_ratio"]) == {"60-64", "65-69", "70+"}  # each over the under-60s
    assert all(v <= 2.0 for v in burden["elderly_loss_ratio"].values())


def test_scanner_ignores_lightgbm_counts_but_finds_planted_phones(tmp_path) -> None:
    counts = " ".join(["12", "139", "1234", "5678", "7"] * 20)
    (tmp_path / "booster.txt").write_text(f"tree\nleaf_count={counts}\ninternal_count=139 1234 5678\n")
    assert scan_pii(tmp_path, quasi_identifiers=()) == []
    phone = "139" + " 1234 " + "5678"
    (tmp_path / "note.txt").write_text(f"电话 {phone}\n", encoding="utf-8")
    assert [f.kind for f in scan_pii(tmp_path, quasi_identifiers=())] == ["phone"]


def test_event_columns_are_the_registers() -> None:
    cols = event_columns(generate_households(GeneratorConfig(n_households=5, seed=0)).columns)
    assert len(cols) == 17 and all(c.endswith("_date") for c in cols)


def test_two_yearly_releases_join_only_when_linking_is_chosen() -> None:
    from village_credit.data.generator import generate_vintage
    from village_credit.privacy.risk import joined_release_risk
    from village_credit.privacy.threat_model import DEFAULT_PRIVACY_CONFIG

    cfg = GeneratorConfig(n_households=500, seed=5)
    raw1, raw2 = add_fake_pii(generate_households(cfg), 5), add_fake_pii(generate_vintage(cfg, 2), 5)
    att = {a.name: a.knows for a in DEFAULT_PRIVACY_CONFIG.attackers}
    scoped = [anonymise(r, KEY, measure_risk=False).households for r in (raw1, raw2)]
    assert joined_release_risk(scoped, att, 5)["n_linked"] == 0
    linked = [anonymise(r, KEY, measure_risk=False, link_releases=True).households for r in (raw1, raw2)]
    joined = joined_release_risk(linked, att, 5)
    assert joined["n_linked"] >= 0.9 * min(len(t) for t in linked)  # rows released in both years
    # the joined table is one table: each release alone keeps k = 5 against the insider, joined it does not
    assert joined["holders"]["village_insider"]["k"] < 5
    assert joined["holders"]["village_insider"]["columns"] == 2 * len(att["village_insider"])
    assert "default_12m" in joined["homogeneity"]["village_insider"]


def test_auc_within_the_utility_bound_on_dates_and_amounts_at_model_precision() -> None:
    """Same households, same split and seed: the default model on the precision release (dates
    in window bands, history as ratios in canonical order, days past due banded) keeps its
    hold-out AUC within the 0.01 bound the privacy report uses (docs/privacy.md)."""
    from village_credit.privacy.utility import utility_comparison

    raw = generate_households(GeneratorConfig(n_households=3000, seed=3))
    released, _ = release_precision(raw)
    util = utility_comparison(raw, released, seed=0, n_boot=5)
    assert abs(util["auc_difference"]) <= 0.01, util["auc"]


def test_the_documented_privacy_yaml_is_valid() -> None:
    from village_credit.privacy.threat_model import privacy_config_from_dict

    text = (Path(__file__).resolve().parents[1] / "docs/privacy.md").read_text(encoding="utf-8")
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    cfg = privacy_config_from_dict(yaml.safe_load(block), "docs/privacy.md")
    assert cfg.l == 2 and cfg.holder_k == 2 and cfg.l_targets == ("private_debt_yuan", "balance_yuan")
    assert cfg.t == 0.2 and cfg.t_targets == ("default_12m",)
    assert [a.recoded for a in cfg.attackers] == [True, False]
    assert "dependents" in cfg.qis and "ded_hygiene_date" not in cfg.qis


# --- protection against the bank and the register keeper: one table of steps -------------

def test_shipped_event_windows_are_what_every_shipped_policy_uses() -> None:
    from village_credit.privacy.precision import shipped_event_windows
    from village_credit.rules import list_policies, load_policy

    windows = shipped_event_windows()
    for name in list_policies():  # each policy's dated items: their window is a release cut
        data = load_policy(name).to_dict()
        for section in ("deductions", "vetoes"):
            for item in (data.get(section) or {}).values():
                if isinstance(item, dict) and "event" in item:
                    assert 12 * int(item["window_years"]) in windows[item["event"]], (name, item)
    assert windows["ded_pollution_date"] == (24,) and len(windows) == 17  # the 17 dated items


@pytest.mark.parametrize("policy", ["jinxiang_2022", "tongxiang", "xx_county", "rencheng_2025"])
def test_event_bands_at_the_shipped_windows_keep_rule_points(households, policy) -> None:
    from village_credit.privacy.precision import _merge_event_bands

    released, _ = release_precision(households)
    merged = released.copy()
    _merge_event_bands(merged, np.arange(len(merged)))
    ev = event_columns(released.columns)
    assert merged[ev].nunique().sum() < released[ev].nunique().sum()  # fewer distinct cells
    np.testing.assert_array_equal(np.asarray(score_rules(released, policy).points),
                                  np.asarray(score_rules(merged, policy).points))


def test_protection_steps_leave_no_row_unique_and_keep_insider_k(result) -> None:
    from village_credit.privacy.precision import HOLDER_STAGES, HolderProtection
    from village_credit.privacy.threat_model import LENDING_BANK, REGISTER_KEEPER

    prot = result.report.precision["holder_protection"]
    extra = {"repair_rounds", "suppressed_by_group"}  # the anonymiser's: rounds with the t repair, per group
    assert set(prot) - extra == {"k", "suppressed", "rounds", "default_certain"} | {s.counter for s in HOLDER_STAGES}
    assert set(prot) - extra == set(HolderProtection.__dataclass_fields__)
    assert prot["event_bands_merged"] > 0 and prot["bank_figures_coarsened"] > 0
    hh = result.households
    for holder in (LENDING_BANK, REGISTER_KEEPER):
        cols = [c for c in holder.knows if c in hh.columns]
        assert hh.groupby(cols, dropna=False).size().min() >= 2, holder.name
    qis = result.report.quasi_identifiers
    assert hh.groupby(qis, dropna=False, observed=True).size().min() >= 5


def test_outcome_noise_is_randomized_response_recorded_and_seeded(households) -> None:
    from village_credit.privacy.anonymise import flip_outcome
    from village_credit.privacy.errors import KAnonymityError
    from village_credit.privacy.threat_model import PrivacyConfigError, privacy_config_from_dict

    rel = households[["household_id", "default_12m"]]
    out, info = flip_outcome(rel, 0.1, seed=1)
    changed = out["default_12m"].to_numpy() != rel["default_12m"].to_numpy()
    assert info["n_flipped"] == changed.sum() and 0.06 < changed.mean() < 0.14
    assert info["released_value_true_prob"] == pytest.approx(0.9)
    assert set(out["default_12m"].unique()) <= {0, 1} and out["default_12m"].dtype == rel["default_12m"].dtype
    pd.testing.assert_frame_equal(out, flip_outcome(rel, 0.1, seed=1)[0])  # seeded
    same, info0 = flip_outcome(rel, 0.0)
    assert same is rel and info0["n_flipped"] == 0
    with pytest.raises(KAnonymityError, match="flip rate"):
        flip_outcome(rel, 0.5)
    cfg = privacy_config_from_dict({"outcome_noise": {"flip_rate": 0.05, "seed": 3}})
    assert (cfg.outcome_flip_rate, cfg.outcome_flip_seed) == (0.05, 3)
    with pytest.raises(PrivacyConfigError, match="outcome_noise.flip_rate"):
        privacy_config_from_dict({"outcome_noise": {"flip_rate": 0.7}})


def test_anonymise_with_outcome_noise_reports_it_and_releases_noisy_outcomes() -> None:
    from village_credit.privacy.threat_model import privacy_config_from_dict

    hh = generate_households(GeneratorConfig(n_households=300, seed=4))
    cfg = privacy_config_from_dict({"outcome_noise": {"flip_rate": 0.2, "seed": 0}})
    res = anonymise(add_fake_pii(hh, 4), KEY, measure_risk=False, config=cfg)
    noise = res.report.risk["homogeneity"]["outcome_noise"]
    assert noise["flip_rate"] == 0.2 and noise["n_flipped"] > 0.1 * len(res.households)
    # about a fifth of the mostly-repaid outcomes now read "defaulted"
    assert res.households["default_12m"].mean() > hh["default_12m"].mean() + 0.1


def test_location_floor_bounds_the_location_burden_from_below(result) -> None:
    """Issue 28 item 5: a household whose village holds fewer than k of its exact cell (gender,
    formerly-poor status, under 60 or not) cannot keep its village; the report shows that floor
    per group, and no group keeps its village more often (coarsened or suppressed)."""
    for grp in ("age_band", "formerly_poor"):
        for g, v in result.report.burden[grp].items():
            lost = v["altered_share.location"] + v["suppressed_share"]
            assert 0 <= v["location_floor_share"] <= lost + 1e-9, (grp, g)
    ab = result.report.burden["age_band"]
    assert ab["60-64"]["location_floor_share"] > max(ab["18-40"]["location_floor_share"],
                                                    ab["41-59"]["location_floor_share"])
