"""Tests of the synthetic household generator: determinism, calibration, relations."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from village_credit.data import (
    SCHEMA,
    GeneratorConfig,
    drift_townships,
    generate_households,
    generate_vintage,
    history_columns,
    read_table,
    validate_households,
    write_synthetic,
)
from village_credit.data.io import arrow_type
from village_credit.errors import ConfigError, VillageCreditError

N = 4000
CFG = GeneratorConfig(n_households=N, seed=42)


@pytest.fixture(scope="module")
def hh() -> pd.DataFrame:
    return generate_households(CFG)


@pytest.fixture(scope="module")
def hh2() -> pd.DataFrame:
    return generate_vintage(CFG, vintage=2)


def _hist(df: pd.DataFrame, kind: str) -> np.ndarray:
    return df[history_columns(kind)].to_numpy()


def _has_loan(df: pd.DataFrame) -> np.ndarray:
    return (_hist(df, "due") > 0).any(axis=1)


# --------------------------------------------------------------------------- determinism
def test_same_seed_same_frame_different_seed_differs(hh: pd.DataFrame) -> None:
    again = generate_households(GeneratorConfig(n_households=N, seed=42))
    pd.testing.assert_frame_equal(hh, again)
    other = generate_households(GeneratorConfig(n_households=N, seed=43))
    assert not other["true_pd"].equals(hh["true_pd"])
    assert (other["head_age"].to_numpy() != hh["head_age"].to_numpy()).mean() > 0.5


def test_parquet_bytes_identical_and_chunking_does_not_change_data(tmp_path, hh) -> None:
    a, b, c = tmp_path / "a.parquet", tmp_path / "b.parquet", tmp_path / "c.parquet"
    write_synthetic(CFG, a, chunk_rows=1000)
    write_synthetic(CFG, b, chunk_rows=1000)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    write_synthetic(CFG, c, chunk_rows=777)
    pd.testing.assert_frame_equal(read_table(a), read_table(c))
    pd.testing.assert_frame_equal(read_table(a), hh)


def test_bad_config_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="target_default_rate"):
        GeneratorConfig(target_default_rate=0.0)
    with pytest.raises(VillageCreditError, match="snapshot_date"):
        GeneratorConfig(snapshot_date="30/06/2025")


# --------------------------------------------------------------------------- schema
def test_every_schema_column_with_schema_dtype(hh: pd.DataFrame) -> None:
    assert list(hh.columns) == SCHEMA.names
    for spec in SCHEMA.columns:
        s = hh[spec.name]
        if spec.dtype == "int":
            assert s.dtype == np.int64, spec.name
        elif spec.dtype == "float":
            assert s.dtype == np.float64, spec.name
        elif spec.dtype == "bool":
            assert s.dtype == bool, spec.name
        elif spec.dtype == "date":
            assert s.dtype == "datetime64[ns]", spec.name
        else:
            assert pd.api.types.is_string_dtype(s.dtype), spec.name
        assert arrow_type(spec.dtype) is not None
    assert hh["household_id"].is_unique


def test_generated_data_passes_validation(hh: pd.DataFrame, hh2: pd.DataFrame) -> None:
    for df in (hh, hh2):
        res = validate_households(df, require_truth=True)
        assert res.n_quarantined == 0, res.quarantine.head().to_dict("records")
        assert res.n_valid == len(df)


@settings(max_examples=8, deadline=None)
@given(n=st.integers(min_value=0, max_value=60), seed=st.integers(0, 2**31 - 1),
       months=st.sampled_from([6, 12, 36]))
def test_any_small_population_is_valid(n: int, seed: int, months: int) -> None:
    cfg = GeneratorConfig(n_households=n, seed=seed, months=months, n_townships=2,
                          villages_per_township=3)
    df = generate_households(cfg)
    assert len(df) == n
    assert sum(c.startswith("dpd_m") for c in df.columns) == months
    res = validate_households(df, require_truth=True)
    assert res.n_quarantined == 0, res.quarantine.head().to_dict("records")
    assert (df["dependents"] <= df["household_size"] - 1).all()


# --------------------------------------------------------------------------- calibration
def test_default_rate_calibrated(hh: pd.DataFrame) -> None:
    assert abs(hh["true_pd"].mean() - 0.04) < 0.008
    assert abs(hh["default_12m"].mean() - 0.04) < 0.015
    high = generate_households(GeneratorConfig(n_households=3000, seed=5,
                                               target_default_rate=0.08))
    assert abs(high["true_pd"].mean() - 0.08) < 0.012


def test_age_pyramid_and_smartphone(hh: pd.DataFrame) -> None:
    age = hh["head_age"]
    assert age.between(18, 100).all()
    old = age >= 60
    assert abs(old.mean() - 0.25) < 0.05
    assert (age >= 80).mean() < old.mean() / 3  # pyramid thins with age
    phone_old, phone_young = hh.loc[old, "smartphone"].mean(), hh.loc[~old, "smartphone"].mean()
    assert 0.2 < phone_old < 0.45 < phone_young
    edu_rank = hh["education"].map({e: i for i, e in enumerate(
        ("none", "primary", "junior", "senior", "tertiary"))})
    assert edu_rank[old].mean() < edu_rank[~old].mean() - 0.5


def test_thin_files_more_common_for_elderly_and_formerly_poor(hh: pd.DataFrame) -> None:
    loan = _has_loan(hh)
    old = (hh["head_age"] >= 60).to_numpy()
    fp = hh["formerly_poor"].to_numpy()
    assert 0.15 < loan.mean() < 0.35  # "< 30 % dynamic records"
    assert loan[old].mean() < 0.6 * loan[~old].mean()
    assert loan[fp].mean() < 0.85 * loan[~fp].mean()


def test_formerly_poor_in_poorer_villages_with_subsidy(hh: pd.DataFrame) -> None:
    fp = hh["formerly_poor"]
    assert 0.08 < fp.mean() < 0.25
    income = hh.filter(like="income_").drop(columns="income_volatility").sum(axis=1)
    per_village = pd.DataFrame({"fp": fp, "inc": income}).groupby(hh["village_code"]).mean()
    assert per_village["fp"].corr(per_village["inc"]) < -0.2
    assert hh.loc[fp, "income_pension_subsidy"].median() > hh.loc[~fp, "income_pension_subsidy"].median()


# --------------------------------------------------------------------------- latent model
def test_true_pd_rises_with_past_delinquency(hh: pd.DataFrame) -> None:
    loan = _has_loan(hh)
    late = (_hist(hh, "dpd") > 0).sum(axis=1)
    pdv = hh["true_pd"].to_numpy()
    clean, some, many = pdv[loan & (late == 0)], pdv[loan & (late >= 1) & (late < 4)], pdv[loan & (late >= 4)]
    assert clean.mean() < some.mean() < many.mean()
    assert many.mean() > 2 * clean.mean()


def test_pensioned_elderly_not_riskier_than_mid_age(hh: pd.DataFrame) -> None:
    age = hh["head_age"]
    mid = hh.loc[age.between(40, 59), "true_pd"].mean()
    old = hh[age >= 60]
    pensioned = old.loc[old["social_insurance"] & (old["income_pension_subsidy"] > 0), "true_pd"].mean()
    unpensioned = old.loc[~old["social_insurance"], "true_pd"].mean()
    assert pensioned <= mid
    assert unpensioned > pensioned


def test_defaults_correlated_within_villages(hh: pd.DataFrame) -> None:
    logit = np.log(hh["true_pd"] / (1 - hh["true_pd"]))
    shuffled = pd.Series(np.random.default_rng(0).permutation(logit.to_numpy()))
    real = logit.groupby(hh["village_code"]).mean().var()
    null = shuffled.groupby(hh["village_code"].to_numpy()).mean().var()
    assert real > 2 * null


def test_default_draws_follow_true_pd(hh: pd.DataFrame) -> None:
    q = pd.qcut(hh["true_pd"], 4, labels=False)
    rates = hh.groupby(q)["default_12m"].mean()
    assert rates.iloc[-1] > 4 * max(rates.iloc[0], 1e-3)


# --------------------------------------------------------------------------- history
def test_dpd_accumulates_consistently(hh: pd.DataFrame) -> None:
    dpd, due, paid = _hist(hh, "dpd"), _hist(hh, "due"), _hist(hh, "paid")
    prev, cur = dpd[:, :-1], dpd[:, 1:]
    ok = (cur == 0) | ((prev == 0) & (cur >= 1) & (cur <= 30)) | (cur == np.minimum(prev + 30, 999))
    assert ok.all()
    assert (dpd[:, 0] <= 30).all()
    assert ((dpd > 0).sum() > 0) and (dpd >= 90).any()
    # a month that starts a spell had an unpaid instalment
    starts = np.zeros_like(dpd, bool)
    starts[:, 1:] = (prev == 0) & (cur > 0)
    assert (paid[starts] < due[starts]).all()
    nol = ~_has_loan(hh)
    assert (dpd[nol] == 0).all() and (paid[nol] == 0).all()
    assert set(np.unique(_hist(hh, "utility_late"))) <= {0, 1}
    assert 0.01 < _hist(hh, "utility_late").mean() < 0.2


def test_event_dates_before_snapshot_within_four_years(hh: pd.DataFrame) -> None:
    snap = hh["snapshot_date"]
    for spec in SCHEMA.by_role("event"):
        d = hh[spec.name]
        has = d.notna()
        assert (d[has] < snap[has]).all(), spec.name
        assert ((snap[has] - d[has]).dt.days <= 4 * 366).all(), spec.name
    vetoes = hh[[c for c in hh.columns if c.startswith("veto_")]].notna().any(axis=1)
    assert 0.01 < vetoes.mean() < 0.12
    assert hh["party_member"].mean() < 0.2
    assert (hh["hon_moral_model"] == "national").mean() < (hh["hon_moral_model"] == "county").mean()


def test_granted_hist_approximates_jinxiang(hh: pd.DataFrame) -> None:
    g = hh["granted_hist"]
    assert 0.35 < g.mean() < 0.8
    assert not g[hh["head_age"] > 60].any()
    assert not g[hh["major_bad_credit"]].any()
    assert (hh["outcome_observed"] == g).all()
    assert hh.loc[g, "true_pd"].mean() < hh.loc[~g, "true_pd"].mean()
    overdue_now = hh["dpd_m36"] > 0
    assert not (g & overdue_now).any()
    assert hh.loc[overdue_now, "veto_financial_date"].notna().all()


# --------------------------------------------------------------------------- vintage 2
def test_vintage2_same_households_one_year_later(hh: pd.DataFrame, hh2: pd.DataFrame) -> None:
    assert (hh2["household_id"] == hh["household_id"]).all()
    assert (hh2["vintage"] == 2).all()
    assert (hh2["snapshot_date"] == pd.Timestamp("2026-06-30")).all()
    assert (hh2["head_age"] == np.minimum(hh["head_age"] + 1, 100)).all()
    # months 13..36 of vintage 1 are months 1..24 of vintage 2
    for k in ("due", "paid", "dpd", "utility_late"):
        np.testing.assert_array_equal(_hist(hh2, k)[:, :24], _hist(hh, k)[:, 12:])
    # events recorded in vintage 1 persist (or are replaced by a later one)
    for spec in SCHEMA.by_role("event"):
        a, b = hh[spec.name], hh2[spec.name]
        assert (b[a.notna()] >= a[a.notna()]).all()


def test_vintage2_new_year_agrees_with_vintage1_outcome(hh, hh2) -> None:
    new = _hist(hh2, "dpd")[:, 24:]
    due = _hist(hh2, "due")[:, 24:]
    borrowing = (due > 0).any(axis=1)
    reached90 = (new >= 90).any(axis=1)
    d = hh["default_12m"].to_numpy() == 1
    assert not reached90[~d].any()
    assert reached90[d & borrowing].all()


def test_vintage2_drift_raises_risk_in_hit_townships(hh, hh2) -> None:
    hit = drift_townships(CFG, 2)
    assert 0 < len(hit) < CFG.n_townships
    in_hit = hh["township_code"].isin(hit)
    change = hh2["true_pd"] - hh["true_pd"]
    assert change[in_hit].mean() > 0.01
    assert change[in_hit].mean() > change[~in_hit].mean() + 0.01
    assert hh2.loc[in_hit, "income_volatility"].mean() > hh.loc[in_hit, "income_volatility"].mean()


# --------------------------------------------------------------------------- historical policy, exploration
_SAME = ["household_id", "head_age", "formerly_poor", "true_pd", "default_12m", "granted_hist"]


@pytest.fixture(scope="module")
def explored() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=N, seed=42, exploration_share=0.2))


def test_jinxiang_history_observes_nobody_over_60(hh: pd.DataFrame) -> None:
    obs = hh["outcome_observed"].to_numpy(bool)
    assert not obs[hh["head_age"].to_numpy() > 60].any()
    assert obs[hh["head_age"].to_numpy() <= 60].mean() > 0.5
    assert (hh["outcome_observed"] == hh["granted_hist"]).all()  # no exploration by default


def test_exploration_reveals_outcomes_of_refused_households_only(hh: pd.DataFrame, explored: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(hh[_SAME], explored[_SAME])  # it only reveals; nothing else moves
    new = explored["outcome_observed"] & ~explored["granted_hist"]
    refused = ~explored["granted_hist"]
    share = new.sum() / refused.sum()
    assert 0.12 < share < 0.2  # 20 % of the refused without a veto (vetoed ones never explored)
    old = explored["head_age"] > 60
    assert new[old].sum() > 0.1 * old.sum()  # the elderly are now partly observed
    assert not (explored["outcome_observed"] & ~hh["outcome_observed"] & explored["granted_hist"]).any()


def test_xx_county_policy_observes_up_to_65() -> None:
    df = generate_households(GeneratorConfig(n_households=N, seed=42, policy_age_max=65))
    age = df["head_age"].to_numpy()
    obs = df["outcome_observed"].to_numpy(bool)
    assert obs[(age > 60) & (age <= 65)].mean() > 0.5
    assert not obs[age > 65].any()


def test_partial_lending_over_the_cutoff(hh: pd.DataFrame) -> None:
    df = generate_households(GeneratorConfig(n_households=N, seed=42, over_age_grant_share=0.5))
    pd.testing.assert_frame_equal(hh[_SAME[:-1]], df[_SAME[:-1]])
    over = df["head_age"].to_numpy() > 60
    rate = df["granted_hist"].to_numpy(bool)[over].mean()
    under = hh["granted_hist"].to_numpy(bool)[~over].mean()
    assert 0.3 * under < rate < 0.7 * under  # about half of those otherwise eligible


@pytest.mark.parametrize("kw", [{"exploration_share": 1.5}, {"over_age_grant_share": -0.1}, {"policy_age_max": 10}])
def test_bad_policy_knobs_are_rejected(kw: dict) -> None:
    with pytest.raises(ConfigError):
        GeneratorConfig(**kw)


# --------------------------------------------------------------------------- targeted exploration (issue 25)
def _veto_active(df: pd.DataFrame) -> np.ndarray:
    """An active veto as the generator's old policy reads it: any veto in the 3 years to the snapshot."""
    cols = [c for c in df.columns if c.startswith("veto_") and c.endswith("_date")]
    cutoff = df["snapshot_date"] - pd.Timedelta(days=3 * 365)
    return np.logical_or.reduce([(df[c] > cutoff).to_numpy(bool) for c in cols])


@pytest.fixture(scope="module")
def targeted() -> pd.DataFrame:
    return generate_households(GeneratorConfig(n_households=N, seed=42, exploration_share=0.05,
                                               exploration_share_over_age=0.3))


def test_targeted_exploration_honours_its_share_over_the_age_ceiling(targeted: pd.DataFrame) -> None:
    over = targeted["head_age"].to_numpy() > 60
    refused = ~targeted["granted_hist"].to_numpy(bool) & ~_veto_active(targeted)
    explored = targeted["outcome_observed"].to_numpy(bool) & ~targeted["granted_hist"].to_numpy(bool)
    assert not (explored & _veto_active(targeted)).any()  # no trial loan to a vetoed household
    pool = refused & over
    assert pool.sum() > 500
    share_over = explored[pool].mean()
    se = np.sqrt(0.3 * 0.7 / pool.sum())
    assert abs(share_over - 0.3) < 4 * se, share_over
    share_under = explored[refused & ~over].mean()  # the under-age refused keep the uniform 5 %
    assert abs(share_under - 0.05) < 4 * np.sqrt(0.05 * 0.95 / (refused & ~over).sum()), share_under


def test_targeted_exploration_reveals_only_and_is_reproducible(hh: pd.DataFrame, targeted: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(hh[_SAME], targeted[_SAME])  # it only reveals outcomes
    again = generate_households(GeneratorConfig(n_households=N, seed=42, exploration_share=0.05,
                                                exploration_share_over_age=0.3))
    pd.testing.assert_frame_equal(targeted, again)  # same seed, same data
    uniform = generate_households(GeneratorConfig(n_households=N, seed=42, exploration_share=0.05))
    under = targeted["head_age"].to_numpy() <= 60
    # below the ceiling nothing changes; above it the 5 % explored are among the 30 % (one draw)
    assert (targeted["outcome_observed"][under] == uniform["outcome_observed"][under]).all()
    assert (targeted["outcome_observed"] | ~uniform["outcome_observed"]).all()
    default = generate_households(GeneratorConfig(n_households=N, seed=42, exploration_share=0.05,
                                                  exploration_share_over_age=None))
    pd.testing.assert_frame_equal(default, uniform)  # None: the uniform share applies over the ceiling too


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_targeted_exploration_share_is_validated(bad: float) -> None:
    with pytest.raises(ConfigError, match="exploration_share_over_age must be in"):
        GeneratorConfig(exploration_share_over_age=bad)


def test_targeted_exploration_key_reaches_the_generator_from_an_experiment() -> None:
    from village_credit.config import load_config
    from village_credit.pipeline import load_households

    cfg = load_config(None, {"data.n_households": 2000, "data.second_vintage": False,
                             "data.exploration_share": 0.0, "data.exploration_share_over_age": 0.5})
    v1, later = load_households(cfg)
    explored = v1["outcome_observed"].to_numpy(bool) & ~v1["granted_hist"].to_numpy(bool)
    over = v1["head_age"].to_numpy() > cfg.data.policy_age_max
    assert later is None and not explored[~over].any()  # no uniform grant: nobody under the ceiling
    assert 0.4 < explored[over].mean() < 0.55  # about half of the over-age (the vetoed are never explored)
