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
# # 07 · The policy lab: from today's standard to a chosen alternative
#
# A points standard is a set of policy choices: the base item's age limit, the grade
# cut-offs, the line per point, each veto's repair window, the share of refused
# households given a trial loan, the approval cut-off. Before changing one, a programme
# designer should see the whole trade-off: how many households are approved, what the
# lending is expected to lose, and whether the elderly and the formerly poor are
# treated like others **of the same risk**.
#
# The generated households carry their true probability of default, so here every
# figure is measured on the ground truth: a *synthetic* frontier, and the notebook
# says so on every chart and table (SYNTHETIC). On a real labelled sample the same
# search uses observed outcomes only, says MEASURED, and marks the groups without
# outcome support (docs/policy-lab.md).
#
# On the ground truth every gap is split in two: the **information ceiling** (the gap
# the best model these columns allow would leave under the same policy parameters:
# only more information, not another policy or model, closes it) and the policy's
# **own excess** (gap = ceiling + own).

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from village_credit.reporting.notebook import notebook_setup, scratch_mlflow_store

# %matplotlib inline
# display defaults (fixed decimals, yuan separators); size and seed from VC_NOTEBOOK_*
N_HOUSEHOLDS, SEED = notebook_setup()
# the store named by MLFLOW_TRACKING_URI, else a throw-away one (never the repository's mlruns/)
WORK_DIR = Path(scratch_mlflow_store())

# %% [markdown]
# ## Today's standard and what may vary
#
# The Jinxiang 2022 standard declares, in its `parameters:` block, which values a
# designer may vary and over which range. Today's value of each is read from the
# policy itself and is always one of the values tried.

# %%
from village_credit.data import GeneratorConfig, generate_households
from village_credit.policy_lab import current_values
from village_credit.policy_lab.parameters import parameter_space
from village_credit.rules import load_policy

households = generate_households(GeneratorConfig(n_households=N_HOUSEHOLDS, seed=SEED))
today = load_policy("jinxiang_2022")
today_values = current_values(today)
display(pd.DataFrame({"today": today_values,
                      "values tried": {k: s.describe() for k, s in parameter_space(today).items()}}))

# %% [markdown]
# ## The search
#
# NSGA-II (Optuna) tries policies generation by generation, each a full decision on the
# same households; objectives: approval rate up, expected loss down, and the
# equal-risk approval and line gaps of the elderly and the formerly poor down (either
# sign; the objectives are the whole gaps, what households meet). A policy may not lose
# more than today's. Trial 0 is today's standard. Every trial is an MLflow child run of
# one parent run.

# %%
from village_credit.policy_lab import run_policy_lab

lab = run_policy_lab(households, today, n_trials=40, population_size=10, seed=SEED, min_count=20,
                     out_dir=WORK_DIR / "policy_lab")
print(lab.notice)
print(f"{len(lab.trials)} trials, {len(lab.pareto)} Pareto policies; MLflow parent run {lab.parent_run_id}")

# %% [markdown]
# ## The frontier
#
# Grey: every trial. Numbered: the Pareto policies (no other policy is at least as good
# on every objective and better on one), coloured by the size of the elderly approval
# gap. The star is today's standard. The right panel names each numbered policy's
# changes from today (`*`) and its elderly approval gap as ceiling + own excess, so the
# chart reads without hovering.

# %%
from village_credit.reporting.displays import PolicyFrontierDisplay

fig = plt.figure(figsize=(14, 6.5), layout="constrained")
PolicyFrontierDisplay.from_result(lab, fig=fig)
plt.show()

# %% [markdown]
# The same Pareto policies as a table, with their parameters and figures by group
# (approval rate and mean line of the elderly, the formerly poor and the others; the
# signed worst gaps, negative means the group gets less than others of equal risk,
# each with its `_ceiling` and `_excess` parts). The `basis` column says SYNTHETIC.

# %%
table = lab.by_group()
display(table)

# %% [markdown]
# ## Choosing an alternative
#
# One reasonable choice: among the Pareto policies whose own excess in the elderly
# approval gap is smaller than today's (the part of the gap a policy can close; the
# ceiling's part needs more information, e.g. exploration loans or dynamic records),
# the one that approves the most households. (A designer may choose otherwise; the
# table above holds every candidate.)

# %%
own = "elderly_approval_gap_excess"
row_today = lab.today
better = table[table[own].abs() < abs(row_today[own])]
chosen = (better if len(better) else table).sort_values("approval_rate").iloc[-1]
changes = {p: (row_today[p], chosen[p]) for p in lab.parameters if chosen[p] != row_today[p]}
display(pd.DataFrame(changes, index=["today", "chosen"]).T)
figures = ["approval_rate", "expected_loss_yuan", "approval_elderly", "approval_formerly_poor"] + [
    f"{c}_approval_{part}" for c in ("elderly", "formerly_poor") for part in ("gap", "gap_ceiling", "gap_excess")]
display(pd.DataFrame({"today": row_today[figures], "chosen": chosen[figures]}))

# %% [markdown]
# ## Writing it out as a policy
#
# The chosen trial's policy is written as a new YAML file. It loads and scores like the
# shipped ones; its notes say where it came from and on what basis its figures stand.
# Scored again from the file, it reproduces the trial's figures exactly.

# %%
from village_credit.policy_lab import PolicyEvaluator
from village_credit.rules import score_rules

path = lab.export_policy(int(chosen["trial"]), WORK_DIR / "jinxiang_pilot.yaml", name="jinxiang_pilot")
pilot = load_policy(path)
print(pilot.name, "|", pilot.notes[-1])
rules = score_rules(households, pilot).decisions
print(f"rule standard alone (no exploration): approval {rules['approved'].mean():.3f}")
check = PolicyEvaluator(households, pilot, seed=SEED, min_count=20)
again = check.figures(check.decide(pilot))
# every figure, NaN where the trial's was NaN (a gap no decile could measure)
np.testing.assert_array_equal([again[k] for k in figures], chosen[figures].to_numpy(float))
print(f"from the file: approval {again['approval_rate']:.3f}, expected loss {again['expected_loss_yuan']:,.0f} yuan"
      " (the trial's figures exactly)")
