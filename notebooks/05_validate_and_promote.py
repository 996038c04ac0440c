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
# # 05 · Third-party validation and promotion gates
#
# The credit-township plan asks for a **three-party review** (三方复核): the bank
# checks the credit data, the township checks the behaviour data, and an
# **independent third party calibrates the model**. In this toolkit that review
# is the path from a registered model version to `@champion`, the alias the credit
# center scores with:
#
# 1. the main job trains the blend, logs it to MLflow as a pyfunc and registers a
#    new version, with its hold-out evidence;
# 2. the **promotion gates** compare every piece of evidence (discrimination,
#    calibration, stability, fairness, input schema) with a threshold; only a
#    version that passes all of them becomes `@champion`;
# 3. an independent validator, holding nothing but the model URI and its own
#    labelled sample, reproduces the figures and writes the validation report.
#
# We first break a gate **on purpose** (an unreachable AUC threshold) and check
# that the version does *not* become champion; then run the third-party
# validation; then try to promote with the thresholds the experiment file
# declares, and, where a gate fails, show what would have to change.

# %%
import os

import matplotlib.pyplot as plt
import pandas as pd

from village_credit.reporting.notebook import notebook_setup

# %matplotlib inline
# display defaults (fixed decimals, yuan separators); size and seed from VC_NOTEBOOK_*
N_HOUSEHOLDS, SEED = notebook_setup()

# %%
from village_credit.reporting.notebook import scratch_mlflow_store

# the store named by MLFLOW_TRACKING_URI, else a throw-away one (never the repository's mlruns/)
WORK_DIR = scratch_mlflow_store()

# %%
from village_credit.config import GateConfig, load_config
from village_credit.pipeline import run_experiment
from village_credit.registry import champion_version, configure, list_versions

configure()  # the store from MLFLOW_TRACKING_URI (set above)
overrides = {
    "name": "notebook-05", "seed": SEED, "output_dir": os.path.join(WORK_DIR, "main_job"),
    "data.n_households": N_HOUSEHOLDS, "data.second_vintage": False,
    "model.gbm.n_estimators": 100, "model.tuning.n_trials": 2, "model.tuning.timeout_s": 30,
    "stages.shap": False, "stages.reports": False,  # not used here (the main job's own reports: make demo)
    "registry.gates.auc_min": 0.99,   # on purpose: no credit model reaches this
}
cfg = load_config(None, overrides)
MODEL = cfg.registry.model_name
result = run_experiment(cfg, score_population=False)
print(f"registered {MODEL} version {result.model_version}; promoted: {result.promoted}")


# %% [markdown]
# ## 1. A gate failing on purpose
#
# The main job ran the gates with `auc_min = 0.99`. Every gate is recorded on the
# model version (value, threshold, pass/fail) together with the evidence, whatever
# the outcome:

# %%
def gate_table(report):
    gates = pd.DataFrame(report["gates"])
    gates["value"] = pd.to_numeric(gates["value"], errors="coerce")  # missing evidence -> NaN
    return gates[["name", "value", "comparator", "threshold", "passed", "detail"]].set_index("name")

gates_strict = gate_table(result.gates["gates"])
gates_strict

# %%
assert not result.promoted, "an AUC of 0.99 must not be reachable"
assert not gates_strict.loc["auc_min", "passed"]
assert champion_version(MODEL) is None, "a version that failed its gates must not be champion"
print("failed gates:", ", ".join(result.gates["gates"]["failed"]))
print("champion:", champion_version(MODEL))
versions = pd.DataFrame(list_versions(MODEL))
assert versions.set_index("version").loc[str(result.model_version), "aliases"] == ["challenger"]
versions[["version", "aliases", "gates_passed", "failed_gates", "created"]]

# %% [markdown]
# The version exists in the registry but carries `@challenger`, not `@champion`;
# nothing that scores `models:/village-credit@champion` can pick it up (both are
# asserted above). Other gates may fail too at notebook scale (the list printed
# above); we come back to them below.
#
# ## 2. The third-party validation
#
# The validator receives the model URI and labels its **own** sample: here an
# independent population from the same generator (another seed), every household
# labelled, granted or not. `validate_model` downloads the logged model, hashes its
# files (the figures are tied to those exact bytes), scores the sample through the
# pyfunc, and computes the report with the same statistics functions the gates
# use: discrimination (AUC with a DeLong interval, Gini, KS, rank ordering),
# calibration (ECE, Hosmer-Lemeshow, Spiegelhalter, a traffic light per grade),
# stability against the training profile stored with the model (PSI / CSI), and a
# fairness summary. The report files are logged to a validation run and the model
# version is tagged with the headline figures.

# %%
from village_credit.data import GeneratorConfig, generate_households
from village_credit.validation.kit import validate_model

validator_sample = generate_households(GeneratorConfig(n_households=N_HOUSEHOLDS, seed=SEED + 1))
model_uri = f"models:/{MODEL}/{result.model_version}"
validation, html_path, json_path = validate_model(model_uri, validator_sample,
                                                  os.path.join(WORK_DIR, "third_party"),
                                                  fairness_boot=50, seed=SEED,
                                                  validator="notebook 05 (third-party sample)")
print("report:", html_path, "|", json_path)
disc, cal = validation["discrimination"], validation["calibration"]
stab = validation.get("stability") or {}
pd.Series({
    "AUC": disc["auc"], "AUC 95% CI": "[{:.3f}, {:.3f}]".format(*disc["auc_ci"]), "Gini": disc["gini"],
    "KS": disc["ks"], "rank ordering monotone": disc["rank_ordering_monotone"],
    "ECE": cal["ece"], "Brier": cal["brier"], "Hosmer-Lemeshow p": cal["hosmer_lemeshow"]["p_value"],
    "Spiegelhalter p": cal["spiegelhalter"]["p_value"], "grade lights (green/amber/red)":
        "{green}/{amber}/{red}".format(**cal["lights"]),
    "score PSI vs training": stab.get("score_psi"),
}, name="third-party figures").to_frame()

# %%
from village_credit.reporting.displays import GradeBackTestDisplay, ReliabilityDisplay, fmt_number

grades = cal["grades"]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained", width_ratios=[1, 1.4])
ReliabilityDisplay(pd.DataFrame(cal["reliability"]), name="Reliability on the validator's sample").plot(ax=axes[0])
GradeBackTestDisplay.from_table(pd.DataFrame(grades), ax=axes[1])
plt.show()
grades

# %% [markdown]
# What an independent sample shows that the bank's own hold-out may not: the model
# was calibrated on households the old programme granted, and the validator's
# sample contains everyone. Look at the riskiest grades and the Hosmer-Lemeshow
# p-value: if the model underestimates risk where the old programme never lent,
# this is where it shows.
#
# The back-test keeps **vetoed** households (an overdue loan at review, for
# example) on a row of their own: the policy grades them whatever their PD, so
# they are not mixed into the model's grades. The model never saw a vetoed
# household in training (the old programme never granted them), so their model PD
# says little about them; their decision is right regardless (the veto wins, no
# line). What this sample shows, computed from the table above:

# %%
from IPython.display import Markdown

from village_credit.rules.grades import POLICY_GRADED

by_grade = pd.DataFrame(grades).set_index("grade")
empty = [g for g in by_grade.index if by_grade.loc[g, "n"] == 0]
small = [f"{g} (n = {by_grade.loc[g, 'n']})" for g in by_grade.index if 0 < by_grade.loc[g, "n"] < 30]
lines = []
if POLICY_GRADED in by_grade.index and by_grade.loc[POLICY_GRADED, "n"] > 0:
    vet = by_grade.loc[POLICY_GRADED]
    lines.append(f"* vetoed households: {vet['n']:,} in the sample, {vet['defaults']:,} defaults: observed rate "
                 f"{fmt_number(vet['observed_rate'])} against a mean model PD of {fmt_number(vet['predicted_pd'])} "
                 f"({'higher' if vet['observed_rate'] > vet['predicted_pd'] else 'not higher'} than the model says).")
lines.append("* grades with no household in this sample (no light, nothing to back-test): "
             + (", ".join(empty) or "none") + ".")
lines.append("* grades with fewer than 30 households (a light on so few is weak evidence either way): "
             + (", ".join(small) or "none") + ".")
lines.append(f"* Hosmer-Lemeshow p = {fmt_number(cal['hosmer_lemeshow']['p_value'])}"
             + (" (below 0.01: the PDs do not match the observed rates across the sample's deciles)."
                if cal["hosmer_lemeshow"]["p_value"] < 0.01 else " (no evidence against the PDs at 1 %)."))
Markdown("\n".join(lines))

# %% [markdown]
# The reproducibility block ties the figures to the model's bytes, and the model
# version now carries the validation's headline figures as tags:

# %%
from village_credit.registry import get_client

repro = validation["reproducibility"]
print({k: repro[k] for k in repro if k in ("model_uri", "model_version", "model_artifact_sha256",
                                           "sample_rows", "rows_scored", "validated_at")})
tags = get_client().get_model_version(MODEL, result.model_version).tags
pd.Series({k: v for k, v in tags.items() if k.startswith("validation.")}, name="tag value").to_frame()

# %% [markdown]
# ## 3. The gates, with the declared thresholds
#
# The thresholds declared in the experiment file (`registry.gates` in
# `experiments/default.yaml`, the file the demo runs) are the programme's promotion
# policy; they differ from the code's defaults (`GateConfig()`), and the cell below
# prints which. Evaluating them is a pure function of the evidence, so we can look at
# both evidence sets before promoting: the main job's hold-out evidence and the third
# party's.

# %%
from village_credit.registry import evaluate_gates, promote, recorded_evidence

DECLARED_IN = os.path.join("..", "experiments", "default.yaml")
thresholds = vars(load_config(DECLARED_IN).registry.gates)   # the declared thresholds
code_defaults = vars(GateConfig())
print(f"thresholds declared in {DECLARED_IN}; where they differ from the code defaults:",
      {k: f"{code_defaults[k]} -> {v}" for k, v in thresholds.items() if code_defaults.get(k) != v} or "nowhere")
main_evidence = recorded_evidence(MODEL, result.model_version)
third_party_evidence = validation["evidence"]
both = pd.concat({
    "main job hold-out": gate_table(evaluate_gates(main_evidence, thresholds).to_dict())[["value", "threshold", "passed"]],
    "third party": gate_table(evaluate_gates(third_party_evidence, thresholds).to_dict())[["value", "threshold", "passed"]],
}, axis=1)
both.drop(index="schema_compatible")  # the schema comes from the model signature, filled in by promote()

# %% [markdown]
# Reading the two columns: a `NaN` value is **missing** evidence, and missing
# evidence fails its gate: a model whose fairness could not be measured has not
# shown that it is fair. The main job's hold-out is a fifth of the villages, so it
# may hold too few elderly and formerly poor households per true-risk decile
# (`fairness.min_count`) for the equal-risk gaps to be measured; the third party
# scores a whole population. What the two evidence sets say here:

# %%
def missing_vs_measured(table):
    main, tp = table["main job hold-out"], table["third party"]
    out = []
    for gate in table.index.drop("schema_compatible"):
        m, t = main.loc[gate], tp.loc[gate]
        if pd.isna(m["value"]) and not pd.isna(t["value"]):
            out.append(f"* `{gate}`: not measurable on the hold-out; the third party measured "
                       f"{fmt_number(t['value'])} ({'passes' if t['passed'] else 'fails'} "
                       f"{fmt_number(t['threshold'])}).")
        elif bool(m["passed"]) != bool(t["passed"]):
            out.append(f"* `{gate}`: the evidence sets disagree: hold-out {fmt_number(m['value'])} "
                       f"({'passes' if m['passed'] else 'fails'}), third party {fmt_number(t['value'])} "
                       f"({'passes' if t['passed'] else 'fails'}).")
    return "\n".join(out) or "The two evidence sets agree on every gate."


Markdown(missing_vs_measured(both))

# %% [markdown]
# Now the promotion proper, on the main job's evidence with the declared
# thresholds. If every gate passes, the version becomes `@champion` in one atomic
# alias switch; if any fails, it stays `@challenger`, whatever we think of the
# model.

# %%
promotion = promote(MODEL, result.model_version, main_evidence, thresholds)
failed = promotion.report.to_dict()["failed"]
print("promoted:", promotion.promoted, "| failed gates:", ", ".join(failed) or "none")
print("champion:", champion_version(MODEL))
gate_table(promotion.report.to_dict())[["value", "comparator", "threshold", "passed"]]

# %% [markdown]
# The version's MLflow page now says so in words: its **description** names the
# model and the gate verdict, and the gate results are one table on the version's
# run (`gates/v<N>/gates.md`, with `gates.json` for machines) rather than a tag
# per number.

# %%
import mlflow

mv = get_client().get_model_version(MODEL, result.model_version)
print(mv.description)
Markdown(mlflow.artifacts.load_text(f"runs:/{mv.run_id}/{mv.tags['gates.table']}"))

# %% [markdown]
# ## 4. What would have to change
#
# A failed gate is a finding, not an obstacle to route around. For each failed
# gate: how far the evidence is from the threshold, what the independent third
# party measured on its whole-population sample, and what would move the number.
#
# An **override** (`promote(..., override_reason=...)`) exists for the case where
# the evidence cannot decide a gate, for example equal-risk cells too small at
# notebook scale. It is honest only when no other evidence decides the gate
# against the model. The cell below applies that rule: gates the main job could
# not measure (missing value) may be overridden only if no gate fails on evidence
# that was measured, the third party's included.

# %%
LEVERS = {
    "auc": "a better ranking: more outcomes, richer features (notebook 02)",
    "ks": "a better ranking: more outcomes, richer features (notebook 02)",
    "ece": "recalibrate on outcomes that include never-granted households (reject inference, notebook 04)",
    "hosmer": "recalibrate on outcomes that include never-granted households (reject inference, notebook 04)",
    "psi": "retrain on data like the population being scored",
    "fairness_approval": "narrow the equal-risk approval gap: outcomes for never-granted elderly and formerly "
                         "poor households, the policy without the age cutoff (notebook 04)",
    "fairness_line": "narrow the equal-risk line gap (same levers as the approval gap)",
    "fairness_parity": "raise the lowest group approval rate (policy change, notebook 04)",
    "fairness_gap_vs_rules": "treat protected households materially more equally than the points standard",
}


def lever(gate):
    return next((v for k, v in LEVERS.items() if k in gate), "see the gate's detail")


tp_report = evaluate_gates(third_party_evidence, thresholds).to_dict()
tp_gates = gate_table(tp_report)
main_gates = gate_table(promotion.report.to_dict())
# every gate failed on either evidence set (the third party can see what the hold-out cannot)
to_fix = failed + [g for g in tp_report["failed"] if g not in failed and g != "schema_compatible"]
todo = pd.DataFrame({
    "main job value": main_gates["value"].reindex(to_fix),
    "rule": main_gates["comparator"].reindex(to_fix) + " " + main_gates["threshold"].reindex(to_fix).map(fmt_number),
    "main job passes": main_gates["passed"].reindex(to_fix),
    "third party value": tp_gates["value"].reindex(to_fix),
    "third party passes": tp_gates["passed"].reindex(to_fix),
    "what would move it": [lever(g) for g in to_fix],
})
todo

# %%
undecided = [g for g in failed if pd.isna(main_gates.loc[g, "value"])]
# evidence against the model: a gate the main job measured and failed, or any gate the
# third party measured and failed (its validation verdict binds too)
decided_against = [g for g in failed if not pd.isna(main_gates.loc[g, "value"])]
decided_against += [g for g in tp_gates.index
                    if g != "schema_compatible" and g not in decided_against
                    and not pd.isna(tp_gates.loc[g, "value"]) and not bool(tp_gates.loc[g, "passed"])]
if failed and not decided_against:
    reason = (f"gates {', '.join(undecided)} could not be measured on the {N_HOUSEHOLDS:,}-household "
              "hold-out (equal-risk cells below fairness.min_count) and the third party's "
              "whole-population check passes them")
    promotion = promote(MODEL, result.model_version, main_evidence, thresholds, override_reason=reason,
                        override_by="notebook 05 analyst", override_until="2099-12-31")
    print("promoted by override; reason recorded on the version:", reason)
else:
    print("no override: the evidence decides these gates against the model:", ", ".join(decided_against))
    print("the version stays", [r["aliases"] for r in list_versions(MODEL)
                                if r["version"] == str(result.model_version)][0])
print("champion:", champion_version(MODEL))

# %%
pd.DataFrame(list_versions(MODEL))[["version", "aliases", "gates_passed", "failed_gates", "override_reason"]]

# %%
champion_now = champion_version(MODEL)
Markdown(f"**Outcome of this run:** version {result.model_version} is "
         + ("`@champion` by override (reason recorded on the version)" if champion_now == str(result.model_version)
            else f"not `@champion` (the registry's champion: {champion_now or 'none'}); "
                 f"gates decided against it: {', '.join(decided_against) or 'none'}."))

# %% [markdown]
# ## Take-aways
#
# * A version that fails any gate is registered but never `@champion`; the outcome
#   of this run's attempts is printed just above.
# * An override is for evidence that cannot decide a gate, not for evidence that
#   decides it against the model. Where the third party's own sample measured a
#   failing gate, the honest outcome is "not promoted" plus the list of what would
#   have to change.
# * Every attempt, passed or refused, leaves a record: gate values, thresholds,
#   evidence, code version and, for an override, the reason.
# * The third-party validation needs only the model URI and a labelled sample;
#   its figures come from the same functions the gates use, on the same bytes the
#   credit center will load.
# * Read the third party's gate table: where it disagrees with the main job's, the
#   validator's whole-population sample is showing what a hold-out drawn from the
#   bank's own book cannot.
#
# Next: `06_batch_scoring.ipynb` scores a file with `@champion`.
