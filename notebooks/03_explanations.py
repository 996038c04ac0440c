# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Explanations: global SHAP, reason codes, and the exact decomposition
#
# A score that a village review panel, a household and an independent calibrator
# cannot check will not be trusted. The blend is built so that it can be checked:
# every household's points are an **exact sum** of a base value, one term per rule
# item of the Jinxiang standard and one term per model feature. This notebook shows
#
# 1. the model-wide picture: which features drive risk (SHAP beeswarm and bar),
#    how one feature moves it, and what differs for elderly and formerly poor
#    households;
# 2. that the decomposition is exact (asserted, not claimed);
# 3. reason codes for a few households, in English and Chinese, as a panel or a
#    letter to the household would use them.
#
# To show rule items and model features side by side, the blend here is trained
# on **every** household's outcome (`split.train_outcomes = "all"`, possible only
# with synthetic data). Trained on granted households only, the blend may drop the
# rule term when rule points carry no signal there (notebook 02); the explanations
# work the same way either way.

# %%

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from village_credit.reporting.notebook import notebook_setup

# %matplotlib inline
# display defaults (fixed decimals, yuan separators); size and seed from VC_NOTEBOOK_*
N_HOUSEHOLDS, SEED = notebook_setup()

# %%
from village_credit.data import GeneratorConfig, generate_households
from village_credit.models import fit_blend, split_by_village

households = generate_households(GeneratorConfig(n_households=N_HOUSEHOLDS, seed=SEED))
train, calib, holdout = split_by_village(households, (0.6, 0.2, 0.2), seed=SEED).frames(households)
blend = fit_blend(train, train["default_12m"], calib, calib["default_12m"], policy="jinxiang_2022",
                  strategy="additive_points", gbm_params={"n_estimators": 100}, seed=SEED)
decisions = blend.decide(holdout)
print(blend.coefficients)
print(f"{len(holdout):,} hold-out households; approved {decisions['approved'].mean():.0%}; "
      f"points scaling {blend.scaling.to_dict()}")

# %% [markdown]
# ## 1. The model-wide picture (SHAP)
#
# `global_shap` runs `shap.TreeExplainer` on the blend's trees for the hold-out
# households. Units are the trees' log-odds of default: positive = riskier. (The
# rule term and the blend coefficients are not in these plots; section 2 puts
# everything on the points scale.)

# %%
from village_credit.explain import global_shap, plot_bar, plot_beeswarm

X = blend.features.transform(holdout)
shap_values = global_shap(blend, X, sample=None, seed=SEED)
plot_beeswarm(shap_values, max_display=12)

# %%
plot_bar(shap_values, max_display=12)

# %% [markdown]
# The same bars with the feature spec's Chinese labels, for a village panel. They
# need a CJK font (Debian/Ubuntu: `apt-get install fonts-noto-cjk`, then remove
# `~/.cache/matplotlib`); without one the plot falls back to the English labels and
# says so under the chart, rather than drawing empty boxes.

# %%
from village_credit.explain import feature_labels
from village_credit.reporting.displays import label_language

print("labels drawn in:", label_language("zh")[0])
plot_bar(shap_values, max_display=12, labels=feature_labels(shap_values.feature_names, "zh"))

# %% [markdown]
# Capacity (income, its volatility and sources, private debt) and behaviour
# (late utility bills, the on-time repayment ratio) typically dominate. The additive trees
# (one feature per tree) make every feature's effect a step function of that
# feature alone, so each dot's position depends on the household's own value of
# the feature and nothing else.
#
# Age and formerly-poor status are **not** features. Still, features can stand in
# for them. `features_tied_to` finds the features most correlated with a
# protected attribute; the dependence plot shows how the model uses the strongest
# proxy of age **among the features the model uses**: a feature no tree splits on
# has SHAP 0 for every household, and its dependence plot would be a flat line
# however strongly it correlates with age (`plot_dependence` refuses it).

# %%
from village_credit.explain import features_tied_to, plot_dependence

used = shap_values.used_features()
unused = [f for f in shap_values.feature_names if f not in used]
print(f"the model uses {len(used)} of {len(shap_values.feature_names)} features; unused: {unused}")
proxies = pd.DataFrame({attr: features_tied_to(shap_values.X, holdout, attr, top_n=4).round(2)
                        for attr in ("head_age", "formerly_poor")})
proxies["used by the model"] = proxies.index.isin(used)
print("Spearman correlation with the protected attribute (all features):")
display(proxies)
age_rho = features_tied_to(shap_values.X[used], holdout, "head_age", top_n=1)
top_age_proxy = age_rho.index[0]
print(f"strongest age proxy the model uses: {top_age_proxy} (Spearman {age_rho.iloc[0]:+.2f})")
plot_dependence(shap_values, top_age_proxy, title=f"How {top_age_proxy} moves the risk")

# %% [markdown]
# Mean |SHAP| per group shows what the model leans on for elderly and formerly poor
# households compared with everyone else. Differences here are not unfair in
# themselves (older households have different incomes), but they tell an auditor
# where to look.

# %%
from village_credit.explain import default_groups, mean_abs_shap_by_group, plot_group_importance

by_group = mean_abs_shap_by_group(shap_values, default_groups(holdout, shap_values.index))
plot_group_importance(by_group, top_n=8)

# %% [markdown]
# ## 2. The exact decomposition
#
# `DecisionModel.contributions` returns, for every household, the points of:
#
# * `base`: the points of the average training household (the offset of the
#   points scale and the blend's intercept);
# * `rule:<item>`: `k_rule` x (the household's item points - the training mean),
#   on the points scale;
# * `model:<feature>`: `k_gbm` x the feature's SHAP value, on the points scale.
#
# They add up to the household's points, and the points map to its PD through the
# points scaling (`points = offset - factor x ln(odds)`). Both facts are asserted
# below for every hold-out household, not just shown for one.

# %%
contributions = blend.contributions(holdout)
total = contributions.sum(axis=1)
assert np.allclose(total.to_numpy(), decisions["points"].to_numpy(), rtol=0, atol=1e-8), "contributions must sum to points"
assert np.allclose(blend.scaling.pd(decisions["points"].to_numpy()), decisions["pd"].to_numpy(), rtol=0, atol=1e-12)

# The model terms are the SHAP values of section 1, rescaled: same numbers, another unit.
model_cols = [f"model:{f}" for f in shap_values.feature_names]
as_points = blend.scaling.contribution_points(blend.coefficients.k_gbm * shap_values.values)
assert np.allclose(contributions.loc[shap_values.index, model_cols].to_numpy(), as_points, rtol=0, atol=1e-8)

print(f"largest |sum of contributions - points| over {len(total):,} households: "
      f"{np.abs(total - decisions['points']).max():.2e}")
kinds = contributions.columns.str.split(":").str[0]
contributions.T.groupby(kinds).sum().T.describe().loc[["mean", "std", "min", "max"]]


# %% [markdown]
# One household, term by term: start from the base, add each rule item and each
# model feature, arrive at its points, its PD, and (through the policy) its grade
# and line. Contributions are measured against the *average* training household,
# so a household without an honour that many others hold shows a small negative
# term for it.

# %%
def waterfall(row_label, top=10):
    c = contributions.loc[row_label]
    body = c.drop("base")
    body = body[body != 0]
    shown = body.reindex(body.abs().sort_values(ascending=False).index[:top])
    rest = body.drop(shown.index).sum()
    parts = pd.concat([pd.Series({"base": c["base"]}), shown, pd.Series({"all other terms": rest})])
    start = parts.cumsum().shift(fill_value=0)
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(parts) + 1.8), layout="constrained")
    colors = ["#7f7f7f"] + ["#2ca02c" if v > 0 else "#d62728" for v in parts.iloc[1:]]
    bars = ax.barh(range(len(parts)), parts.to_numpy(), left=start.to_numpy(), color=colors)
    ax.set_yticks(range(len(parts)), [blend.labels.get(k, {}).get("en", k) for k in parts.index])
    ax.invert_yaxis()
    ax.axvline(c.sum(), color="k", ls="--", lw=1)
    # every bar end and the total inside the axes, with a margin (nothing clipped)
    ends = np.r_[start.to_numpy(), (start + parts).to_numpy(), c.sum()]
    pad = 0.06 * (ends.max() - ends.min())
    ax.set_xlim(ends.min() - pad, ends.max() + pad)
    d = decisions.loc[row_label]
    ax.set_title(f"{d['household_id']}: {c.sum():.1f} points, PD {d['pd']:.2%}\n"
                 f"grade {d['grade']}, line {d['credit_line']:,.0f} yuan", fontsize=10)
    ax.set_xlabel("points")
    lo, hi = ax.get_xlim()
    assert all(lo < b.get_x() + w < hi for b in bars for w in (0, b.get_width())), "a bar is clipped"
    plt.show()
    return parts.rename("points").to_frame()

elderly_rows = holdout.index[holdout["head_age"] >= 65]
example = elderly_rows[0] if len(elderly_rows) else holdout.index[0]
print("head aged", holdout.loc[example, "head_age"], "| formerly poor:", bool(holdout.loc[example, "formerly_poor"]))
waterfall(example)

# %% [markdown]
# Look for the `base points` term of an elderly household: the Jinxiang base item
# requires a head aged 18-60, so a household over 60 has 0 base points, and the
# blend's rule term (`k_rule` x item points) carries that into the blend's score.
# The model part does not penalise age, but the rule part does, as far as the
# calibration finds the rule points predictive. Swapping the policy for
# `jinxiang_2022_no_age_cutoff` removes the term (notebook 04).

# %% [markdown]
# ## 3. Reason codes for a few households
#
# `explain(model, households)` gives the reasons behind each decision: decisive
# reasons first (a veto, a failed eligibility condition), then the factors that
# took the most points away (`down`) and those that added the most (`up`). Here:
# the best and worst scored households, a vetoed one, and the elderly household
# above.

# %%
from village_credit.explain import explain

d = decisions.assign(points=decisions["points"].astype(float))
picks = {"highest points": d["points"].idxmax(), "lowest points, not vetoed": d.loc[~d["vetoed"], "points"].idxmin(),
         "elderly (above)": example}
if d["vetoed"].any():
    picks["vetoed"] = d.index[d["vetoed"]][0]
chosen = holdout.loc[list(dict.fromkeys(picks.values()))]
reasons = explain(blend, chosen, top_k=3)
case = {row: name for name, row in reversed(list(picks.items()))}
shown = ["household_id", "points", "pd", "grade", "credit_line", "vetoed", "veto_reasons"]
decisions.loc[chosen.index, shown].assign(case=[case[i] for i in chosen.index])

# %%
reasons[["household_id", "rank", "direction", "kind", "code", "label_en", "points"]]

# %% [markdown]
# The same reasons with the Chinese labels from the policy file and the feature
# spec, in the wide form (one row per household, fixed columns, the shape batch
# scoring writes), ready for a notification letter or the panel's list:

# %%
wide = explain(blend, chosen, top_k=3, form="wide")
cols = ["household_id", "decisive_label_zh"] + [f"{d}_{i}_{c}" for d in ("down", "up") for i in (1, 2)
                                               for c in ("label_zh", "points")]
wide[cols].round(1)

# %% [markdown]
# A vetoed household's first reason is the veto itself (no points attached: a veto
# is not outweighed by anything). Everyone else's reasons are ranked by exact
# points, so "late utility bills cost you 12 points" is literally true for that
# household under this model.
#
# Finally, the rule items can be read in the policy's own terms, as the village
# panel scores them (`RuleScores.explain`), next to what the blend made of them:

# %%
from village_credit.rules import score_rules

rule_scores = score_rules(chosen, blend.policy)
hh = chosen.index[0]
own = rule_scores.explain(hh, lang="zh").set_index("item")
blended = contributions.loc[hh, [f"rule:{i}" for i in own.index]].rename(lambda c: c.split(":", 1)[1])
own.assign(**{"points in the blend": blended.round(2)})

# %% [markdown]
# ## Take-aways
#
# * The global picture and the household-level reasons are the same numbers:
#   the SHAP values of the beeswarm, rescaled, are the `model:` terms of every
#   household's decomposition (asserted above).
# * Every household's points are an exact, additive sum over rule items and
#   features; a panel can add them up by hand, a calibrator can recompute them.
# * Protected attributes are not features, but proxies exist (pension income,
#   smartphone use): that is why the fairness audit (notebook 04) looks at
#   decisions, not at feature lists.
