"""``village-credit train`` and ``village-credit demo``: the main job from the shell."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
import yaml
from rich.console import Console

from village_credit.commands._errors import user_errors
from village_credit.commands._options import tracking_uri_option
from village_credit.commands._tables import fitting_table
from village_credit.config import load_config
from village_credit.pipeline import run_experiment
from village_credit.registry.preflight import check_tracking_uri
from village_credit.registry.store import default_tracking_uri
from village_credit.registry.verdict import GATE_NAME as VERDICT_GATE
from village_credit.yaml_io import safe_load

DEFAULT_EXPERIMENT = Path("experiments/default.yaml")


COMPARISON_WORDS = {"elderly": "heads aged 60+ vs under 60", "formerly_poor": "formerly poor vs other"}


def _print_outcome_support(sup: dict, console: Console) -> None:
    """Extrapolated groups first, then predicted PD against the truth and the observed rate,
    then each equal-risk comparison's worst line gap once (it is one figure per comparison,
    not per age band)."""
    if not sup:
        return
    ext = sup.get("extrapolated_groups") or []
    console.print(("[yellow]EXTRAPOLATED[/yellow] (fewer than "
                   f"{sup.get('min_observed')} observed outcomes in training): {', '.join(ext)}")
                  if ext else "outcome support: every protected group has observed outcomes")
    console.print(f"remedies applied: {'; '.join(sup.get('remedies') or []) or 'none'}")
    rows = [r for r in sup.get("headline") or [] if "|" not in str(r.get("group"))]
    ceiling = any(r.get("ceiling_true_ratio") is not None for r in rows)
    h = fitting_table("group", *((c, "right") for c in ("households", "outcome observed", "pred / true",
                                                        *(("ceiling / true",) if ceiling else ()),
                                                        "pred / observed")),
                      title="mean predicted PD over the true and the observed default rate (hold-out)")

    def fmt(v, f: str) -> str:
        return "n/a" if v is None else format(v, f)

    for r in rows:
        h.add_row(str(r["group"]), f"{r.get('n') or 0:,}", f"{r.get('n_observed') or 0:,}",
                  fmt(r.get("pred_true_ratio"), ".2f"),
                  *((fmt(r.get("ceiling_true_ratio"), ".2f"),) if ceiling else ()),
                  fmt(r.get("pred_observed_ratio"), ".2f"))
    console.print(h)
    console.print("pred / observed counts only the households whose outcome was observed (lent to, or "
                  "explored); the ECE above counts every hold-out household's outcome, which "
                  "generated data know. A small ECE beside a ratio far from 1 means the PD is right "
                  "for the population but not for those who were lent to."
                  + (" ceiling / true: the best PD these columns allow (fitted to the truth); where it "
                     "misses too, no model on these columns reaches the group's true PD."
                     if ceiling else ""))
    gaps = {}
    for r in rows:  # one figure per comparison: every elderly band row carries the same one
        comp = r.get("equal_risk_comparison")
        if comp and comp not in gaps:
            gaps[comp] = (r.get("worst_gap_line"), r.get("worst_gap_line_decile"))
    for comp, (gap, decile) in gaps.items():
        where = (f" (true-PD decile {int(decile)})" if decile is not None else "") if gap is not None else \
            (": no true-PD decile holds enough households of both groups to check (fairness.min_count)")
        console.print(f"worst equal-risk line gap, {COMPARISON_WORDS.get(comp, comp)}, at equal true PD: "
                      f"{fmt(gap, '+.1%')}{where}")


def _print_stages(result, console: Console) -> None:
    """Seconds per stage, so a user sees where a run's time went."""
    stages = getattr(result, "stages", None) or []
    if not stages:
        return
    total = sum(s.seconds for s in stages)
    print("Stage timings (s): " + ", ".join(f"{s.name} {s.seconds:.2f}" for s in stages) + f"; total {total:.2f}")
def _verdict_line(result) -> str:
    """The hold-out verdict, who signed it, and its first reasons."""
    v = getattr(result, "validation", None) or {}
    if not v.get("verdict"):
        return "none"
    who = f"signed by {v['validator']}" if v.get("validator") else "unsigned: no validation record"
    why = "; ".join((v.get("reasons") or [])[:2])
    return f"{str(v['verdict']).upper()} ({who})" + (f": {why}" if why else "")


def _not_promoted(result) -> str:
    """Why the version is not @champion, in the words of the gate that stopped it."""
    if result.model_version is None:
        return "NO: not registered (stages.mlflow is off)"
    gates = (result.gates or {}).get("gates") or {}
    summary_file = result.paths.get("summary", f"{result.config.output_dir}/summary.json")
    where = (f"gate table: artifact gates/v{result.model_version}/gates.md of run {result.run_id} "
             f"(and 'gates' in {summary_file})")
    if (result.gates or {}).get("refused"):
        return f"NO: the validator's verdict refuses it (a FAIL is never overridden); {where}"
    failed = ", ".join(gates.get("failed") or []) or "a gate"
    return f"NO: failed {failed}; {where}"


def print_summary(result, console: Console) -> None:
    """The short summary a user reads after the main job."""
    if getattr(result, "kind", "") == "table":
        print_table_summary(result, console)
        return

    m = result.metrics
    t = fitting_table("measure", "value", title=f"village-credit: experiment '{result.config.name}'",
                      show_header=False)
    t.add_row("hold-out households", f"{int(m.get('holdout_households', 0)):,}")
    t.add_row("households quarantined on validation", f"{result.quarantined_rows:,}")
    t.add_row("default rate (hold-out)", f"{m.get('holdout_default_rate', float('nan')):.2%}")
    t.add_row("AUC blend / GBM / rules / oracle",
              " / ".join(f"{m.get(k, float('nan')):.3f}" for k in ("blend_auc", "gbm_auc", "rules_auc", "oracle_auc")))
    t.add_row("ECE blend", f"{m.get('blend_ece', float('nan')):.4f}")
    if "blend_oot_auc" in m:
        t.add_row("out of time (vintage 2): AUC blend / oracle, score PSI",
                  f"{m['blend_oot_auc']:.3f} / {m['oracle_oot_auc']:.3f}, {m['score_psi_oot']:.3f}")
    t.add_row("approval rate blend / rules",
              f"{m.get('blend_approval_rate', float('nan')):.1%} / {m.get('rules_approval_rate', float('nan')):.1%}")
    t.add_row("registered version", f"{result.config.registry.model_name} v{result.model_version}")
    t.add_row("validator's verdict (hold-out)", _verdict_line(result))
    t.add_row("promoted to @champion", "yes" if result.promoted else _not_promoted(result))
    if result.scoring:
        s = result.scoring
        t.add_row("batch scoring", f"{s['rows_read']:,} read = {s['scored']:,} scored + {s['quarantined']:,} quarantined")
    if result.programme:
        p = result.programme
        t.add_row("credit villages (> 55 % of households rated A, and the \"952\" standard: 90 % on file, "
                  "50 % granted, NPL <= 2 %)", f"{p['credit_villages']} of {p['villages']}")
        t.add_row("credit townships (> 75 % villages)", f"{p['credit_townships']} of {p['townships']}")
    console.print(t)
    _print_stages(result, console)
    if result.approval_by_group is not None:
        cols = list(result.approval_by_group.columns)
        g = fitting_table("group", *((str(c), "right") for c in cols),
                          title="approval rate by group (hold-out)")
        for grp, row in result.approval_by_group.iterrows():
            g.add_row(str(grp), *[f"{row[c]:.1%}" for c in cols])
        console.print(g)
    _print_outcome_support(getattr(result, "outcome_support", None) or {}, console)
    console.print("Reports and scores:")
    for k, v in sorted(result.paths.items()):
        print(f"  {k:<40} {v}")  # plain: Rich would wrap long paths
    if not result.promoted:
        _print_next_steps(result)  # the population was not scored: how to score it anyway
    uri = result.tracking_uri or default_tracking_uri()
    console.print("\nBrowse the run (copy this line):")
    # Plain print: Rich would wrap the long URI and break copy-paste.
    print(f".venv/bin/mlflow ui --backend-store-uri {uri}")


def print_table_summary(result, console: Console) -> None:
    """The summary of a run on a table of one's own (no rules, no programme): what was
    left out and why, the split, hold-out and cross-fitted metrics, the model URIs."""
    m = result.metrics
    nan = float("nan")
    if result.dropped_columns:
        console.print("Columns left out of the features:")
        for col, why in result.dropped_columns.items():
            print(f"  {col:<40} {why}")  # plain: every dropped column, with its reason
    t = fitting_table("measure", "value", title=f"village-credit (table of one's own): '{result.config.name}'",
                      show_header=False)
    t.add_row("rows read = used + quarantined (no target)",
              f"{int(m.get('rows_read', 0)):,} = {int(m.get('rows_read', 0)) - result.quarantined_rows:,}"
              f" + {result.quarantined_rows:,}")
    t.add_row("split", f"{result.split_method}; calibration cross-fitted on the training rows")
    t.add_row("features", f"{len(result.features)}: " + ", ".join(result.features)[:200])
    cross_fitted = getattr(result, "evidence", "hold-out") != "hold-out"
    where = "rows judged out-of-fold (no hold-out)" if cross_fitted else "hold-out rows"
    t.add_row(f"{where} = scored + quarantined; default rate",
              f"{int(m.get('holdout_households', 0) + m.get('holdout_quarantined', 0)):,} = "
              f"{int(m.get('holdout_households', 0)):,} + {int(m.get('holdout_quarantined', 0)):,}"
              f"; {m.get('holdout_default_rate', nan):.2%}")
    for part, cells in (getattr(result, "categories_read_as_missing", None) or {}).items():
        if cells:
            t.add_row(f"unlisted categories read as missing ({part})",
                      "; ".join(f"{c}: {sum(v.values()):,}" for c, v in cells.items()))
    t.add_row("AUC out-of-fold (95 % DeLong CI) / cross-fitted" if cross_fitted else
              "AUC hold-out (95 % DeLong CI) / cross-fitted",
              f"{m.get('auc', nan):.3f} [{m.get('auc_ci_low', nan):.3f}, {m.get('auc_ci_high', nan):.3f}]"
              f" / {m.get('cv_auc', nan):.3f}")
    t.add_row("KS / Hosmer-Lemeshow p", f"{m.get('ks', nan):.3f} / {m.get('hosmer_lemeshow_p', nan):.3f}")
    t.add_row("ECE / Brier (out-of-fold)" if cross_fitted else "ECE / Brier (hold-out)",
              f"{m.get('ece', nan):.4f} / {m.get('brier', nan):.4f}")
    cut = result.config.model.approval_max_pd
    t.add_row("approval cut-off (model.approval_max_pd)",
              f"PD <= {cut:g}: {m.get('approval_rate', nan):.1%} of the {where} approved" if cut is not None
              else "none declared: decisions carry no 'approved'")
    if result.model_version:
        t.add_row("registered version", f"{result.registered_model_name} v{result.model_version}")
        t.add_row("validator's verdict (hold-out)", _verdict_line(result))
        t.add_row("promoted to @champion", "yes" if result.promoted else
                  (_not_promoted(result) if result.gates else "gates not run"))
    else:
        t.add_row("MLflow", "off (stages.mlflow: false): model saved locally only")
    if result.scoring:
        s = result.scoring
        t.add_row("batch scoring", f"{s['rows_read']:,} read = {s['scored']:,} scored + {s['quarantined']:,} quarantined")
    console.print(t)
    if cross_fitted:
        print(f"Evidence: {result.evidence}")
    _print_stages(result, console)
    for k, v in sorted(result.paths.items()):
        print(f"  {k:<40} {v}")
    if result.run_model_uri:
        _print_next_steps(result)
        print(f".venv/bin/mlflow ui --backend-store-uri {result.tracking_uri}")


def _print_next_steps(result) -> None:
    """What to run next with the registered model: score it (promoted), or how to promote
    it, and how to score it for research only (the loader refuses an ungated model)."""
    if not result.run_model_uri:
        return
    if result.promoted:
        print(f"score new rows: village-credit score --model models:/{result.registered_model_name}@champion "
              "--input <file> --output <folder>")
        return
    name, version = result.registered_model_name, result.model_version
    failed = [g for g in ((result.gates or {}).get("gates") or {}).get("failed") or [] if g != VERDICT_GATE]
    if version and (result.validation or {}).get("verdict") != "fail" and failed:
        # a new validation changes the verdict only; these gates stay failed until the model changes
        print(f"not promoted (failed {', '.join(failed)}): change the model "
              "(docs/fairness.md), or promote it anyway with an override every report shows: "
              f"village-credit promote --model-name {name} --version {version} "
              "--override-by <who> --override-reason <why> --override-until <YYYY-MM-DD>")
    elif version and (result.validation or {}).get("verdict") != "fail":
        print(f"to promote it: validate it on a labelled sample the training never saw, "
              f"signed: village-credit validate --model models:/{name}/{version} "
              "--input <labelled file> --validator <who>, then village-credit promote "
              f"--model-name {name} --version {version}")
    print(f"score new rows (not promoted: research use only, recorded in the outputs): "
          f"village-credit score --model {result.run_model_uri} --allow-ungated "
          "--input <file> --output <folder>")

def train(
    experiment: Path = typer.Option(DEFAULT_EXPERIMENT, "--config", "-c", help="Experiment YAML."),
    n_households: Optional[int] = typer.Option(None, "--n-households", "-n",
                                               help="Generated data only: override data.n_households."),
    trials: Optional[int] = typer.Option(None, help="Override model.tuning.n_trials."),
    promote: bool = typer.Option(True, help="Run the promotion gates."),
    score: bool = typer.Option(True, help="Batch-score the training file with @champion once promoted."),
    sets: Optional[list[str]] = typer.Option(
        None, "--set", help="Override one config key, KEY=VALUE (value read as YAML; paths "
                            "relative to the current folder), e.g. --set data.source=loans.csv."),
    tracking_uri: Optional[str] = tracking_uri_option(),
) -> None:
    """Run an experiment: train, explain, audit, log to MLflow, gate, score."""
    console = Console()
    overrides: dict = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set {item!r}: expected KEY=VALUE")
        try:
            overrides[key.strip()] = safe_load(value)
        except yaml.YAMLError as exc:
            raise typer.BadParameter(f"--set {item!r}: {exc}") from exc
    if n_households is not None:
        overrides["data.n_households"] = n_households
    if trials is not None:
        overrides["model.tuning.n_trials"] = trials
    with user_errors(console):
        if tracking_uri:  # the store every stage uses (registry.store.resolve_store reads it)

            os.environ["MLFLOW_TRACKING_URI"] = check_tracking_uri(tracking_uri)
        cfg = load_config(experiment, overrides)
        result = run_experiment(cfg, progress=True, promote_model=promote, score_population=score)
    print_summary(result, console)


def demo() -> None:
    """The main job on the embedded default (experiments/default.yaml, generated data)."""
    train(DEFAULT_EXPERIMENT if DEFAULT_EXPERIMENT.exists() else None, None, None, True, True, None, None)
