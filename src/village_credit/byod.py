"""Bring your own data: train on any tabular file with a binary target, no rule engine.

The household main job (``pipeline.run_experiment``) needs the household schema and a
policy. Analysts with real, anonymised data have other columns. This module trains
the GBM alone (the blend is off: no rule points, no policy, no credit line) on any
Parquet/CSV file with a 0/1 target column and, optionally, a feature spec (labels,
units, monotone directions; see ``models.features.load_feature_specs``):

read -> quarantine rows without a target -> features (spec or inferred) -> split by
group (or seeded random) -> optional Optuna tuning -> LightGBM with the spec's
monotone constraints -> calibration on the calibration part -> hold-out metrics
(AUC with DeLong CI, KS, Hosmer-Lemeshow, Brier and ECE before/after calibration) ->
global SHAP plots -> validation report -> MLflow (params, metrics, artifacts, the
booster as LightGBM text via ``mlflow.lightgbm``; calibrator and feature spec as JSON).

Nothing here logs rows: MLflow gets the config, aggregates, plots, the model and a
data fingerprint. The quarantine table stays in ``output_dir`` (row number, id when
configured, column, reason) and is never logged.

The main job dispatches here with one line (``is_generic`` reads only the file's
header)::

    if is_generic(cfg): return run_generic_experiment(cfg, progress=progress)

Registration: a generic model has no policy, so it is never registered under the
household decision model's name; ``register=True`` registers it as
``<registry.model_name>-generic``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from village_credit.config import DataConfig, ExperimentConfig
from village_credit.errors import ConfigError, DataReadError
from village_credit.stages import StageTimer

__all__ = [
    "GENERIC_SUFFIX",
    "GenericResult",
    "file_columns",
    "is_generic",
    "print_generic_summary",
    "run_generic_experiment",
]

GENERIC_SUFFIX = "-generic"
"""Registered-model name suffix for generic models (kept apart from the decision model)."""

MIN_ROWS = 200
"""Fewer labelled rows than this cannot give a train / calibration / hold-out split worth reporting."""

MIN_GROUPS_FOR_GROUP_SPLIT = 6
"""With fewer distinct groups a group split is degenerate; a seeded random split is used (and tagged)."""

MAX_CATEGORY_SHARE = 0.5
"""Text columns with more distinct values than this share of rows look like identifiers: not features."""

QUARANTINE_FILE = "quarantine.parquet"


# ----------------------------------------------------------------------------- result
@dataclass
class GenericResult:
    """What a generic run produced.

    Attribute names shared with ``pipeline.ExperimentResult`` (``config``, ``metrics``,
    ``paths``, ``run_id``, ``model_version``, ``promoted``, ``scoring``, ``programme``,
    ``approval_by_group``, ``tracking_uri``, ``quarantined_rows``, ``stages``,
    ``summary_dict``) let the ``train`` command print it unchanged.
    """

    config: ExperimentConfig
    metrics: dict[str, float] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    kind: str = "generic"
    model_uri: str | None = None
    registered_model_name: str | None = None
    model_version: str | None = None
    tracking_uri: str = ""
    quarantined_rows: int = 0
    feature_names: list[str] = field(default_factory=list)
    monotone: dict[str, int] = field(default_factory=dict)
    split_method: str = ""
    stages: list[Any] = field(default_factory=list)
    # in-memory fitted objects (not serialised in summary_dict)
    model: Any = field(default=None, repr=False)
    features: Any = field(default=None, repr=False)
    calibrator: Any = field(default=None, repr=False)
    # the household summary's fields, empty here (no policy: no decisions, no gates)
    promoted: bool = False
    gates: dict[str, Any] = field(default_factory=dict)
    scoring: dict[str, Any] = field(default_factory=dict)
    programme: dict[str, Any] = field(default_factory=dict)
    approval_by_group: pd.DataFrame | None = None

    def summary_dict(self) -> dict[str, Any]:
        return {
            "kind": "generic",
            "metrics": self.metrics,
            "run_id": self.run_id,
            "model_uri": self.model_uri,
            "registered_model_name": self.registered_model_name,
            "model_version": self.model_version,
            "paths": self.paths,
            "quarantined_rows": self.quarantined_rows,
            "features": self.feature_names,
            "monotone": self.monotone,
            "split_method": self.split_method,
            "stages": {s.name: round(s.seconds, 2) for s in self.stages},
        }




# ----------------------------------------------------------------------------- dispatch
def file_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet or CSV file, from its schema / header only (no rows read)."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(p).names)
        if suffix == ".csv":
            with p.open("r", encoding="utf-8", newline="") as fh:
                return [h.strip() for h in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataReadError(f"{p}: cannot read the column names: {exc}") from exc
    except Exception as exc:  # pyarrow.ArrowInvalid and friends
        raise DataReadError(f"{p}: cannot read the column names: {exc}") from exc
    raise DataReadError(f"{p}: unsupported file type {p.suffix!r}; expected .parquet or .csv")


def _household_columns_missing(columns: list[str]) -> list[str]:
    from village_credit.data.schema import SCHEMA, HouseholdSchema, months_in

    m = months_in(columns)
    schema = SCHEMA if m in (0, SCHEMA.months) else HouseholdSchema(months=m)
    have = set(columns)
    return [c for c in schema.names if c not in have]  # what the main job validates (truth included)


def is_generic(cfg: ExperimentConfig) -> bool:
    """True when this experiment is a bring-your-own-data run (see the module docstring).

    ``data.source`` is an existing file AND (``data.feature_spec`` is set OR
    ``model.strategy == "gbm_only"`` and the file lacks columns the household main job
    requires). Reads only the file's header. A missing file is not generic: the
    household path then reports it as it always has.
    """
    d = cfg.data
    if d.source == "generate":
        return False
    p = Path(d.source)
    if not p.is_file():
        return False
    if d.feature_spec:
        return True
    if cfg.model.strategy != "gbm_only":
        return False
    return bool(_household_columns_missing(file_columns(p)))


# ----------------------------------------------------------------------------- data
def _coerce_numeric_text(df: pd.DataFrame, keep: set[str]) -> pd.DataFrame:
    """Text columns whose every non-missing cell is a number become float (CSV reads text)."""
    fixes: dict[str, pd.Series] = {}
    for c in df.columns:
        s = df[c]
        if c in keep or not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue
        stripped = s.astype("string").str.strip()
        stripped = stripped.mask(stripped == "")
        num = pd.to_numeric(stripped, errors="coerce")
        if int(num.notna().sum()) == int(stripped.notna().sum()) and int(num.notna().sum()) > 0:
            fixes[c] = num.astype("float64")
    return df.assign(**fixes) if fixes else df


def _parse_target(df: pd.DataFrame, target: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    """``(y as float with NaN for missing, missing mask)``; ConfigError if not 0/1."""
    if target not in df.columns:
        shown = ", ".join(map(str, list(df.columns)[:20])) + (" ..." if df.shape[1] > 20 else "")
        raise ConfigError(f"{source}: target column {target!r} not found (set data.target); "
                          f"the file has: {shown}")
    s = df[target]
    if pd.api.types.is_bool_dtype(s.dtype):
        vals = s.astype("Float64")
    elif pd.api.types.is_numeric_dtype(s.dtype):
        vals = pd.to_numeric(s, errors="coerce").astype("Float64")
    else:
        text = s.astype("string").str.strip()
        text = text.mask(text == "")
        low = text.str.lower()
        mapped = low.map({"true": "1", "false": "0"}).fillna(low)
        vals = pd.to_numeric(mapped, errors="coerce").astype("Float64")
        unparsed = text.notna() & vals.isna()
        if unparsed.any():
            bad = sorted(set(text[unparsed].astype(str)))[:5]
            raise ConfigError(f"{source}: target column {target!r} must be binary 0/1; "
                              f"{int(unparsed.sum())} row(s) hold other values, e.g. {bad}")
    y = vals.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = np.isnan(y)
    bad_mask = ~missing & ~np.isin(y, (0.0, 1.0))
    if bad_mask.any():
        bad = sorted(set(y[bad_mask].tolist()))[:5]
        raise ConfigError(f"{source}: target column {target!r} must be binary 0/1; "
                          f"{int(bad_mask.sum())} row(s) hold other values, e.g. {bad}")
    present = set(y[~missing].tolist())
    if present != {0.0, 1.0}:
        raise ConfigError(f"{source}: target column {target!r} must hold both 0 and 1; "
                          f"found only {sorted(present) or 'missing values'}")
    return y, missing


def _quarantine(df: pd.DataFrame, missing: np.ndarray, target: str, id_column: str,
                path: Path) -> int:
    """Write one row per row without a target: row number, id (if any), column, reason."""
    pos = np.flatnonzero(missing).astype(np.int64)
    ids = (df[id_column].astype("string").to_numpy()[pos].astype(object) if id_column in df.columns
           else np.full(len(pos), "", dtype=object))
    q = pd.DataFrame({
        "row_number": pos,
        "id": pd.Series(ids, dtype="string").fillna(""),
        "column": pd.Series([target] * len(pos), dtype="string"),
        "reason": pd.Series(["missing target value"] * len(pos), dtype="string"),
        "check": pd.Series(["missing"] * len(pos), dtype="string"),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    q.to_parquet(path, index=False)
    return len(pos)


def _resolve_target(d: DataConfig, spec_file: dict[str, Any], source: str) -> str:
    spec_target = spec_file.get("target")
    if spec_target and spec_target != d.target:
        if d.target == DataConfig().target:
            return str(spec_target)
        raise ConfigError(f"{source}: data.target {d.target!r} and the feature spec's target "
                          f"{spec_target!r} differ; set one of them")
    return d.target


def _build_specs(df: pd.DataFrame, cfg: ExperimentConfig, target: str,
                 spec_file: dict[str, Any], spec_path: str | None) -> tuple[list[Any], list[str]]:
    """Feature specs for the table, and the columns left out (with why) for the record."""
    from village_credit.models.features import specs_from_frame
    from village_credit.registry.tracking import personal_columns

    d = cfg.data
    listed = {str(f["name"]) for f in spec_file.get("features", [])}
    protected = [str(c) for c in spec_file.get("protected", []) or []]
    exclude = {target, d.id_column, d.group_column, *map(str, spec_file.get("exclude", []) or [])}
    skipped: list[str] = []
    for c in personal_columns(df.columns):  # names, phones, addresses are never features
        if c not in exclude:
            exclude.add(c)
            skipped.append(f"{c} (looks like personal data)")
    if not cfg.model.include_protected:
        for c in protected:
            if c in df.columns and c not in exclude:
                exclude.add(c)
                skipped.append(f"{c} (protected; model.include_protected is false)")
    n = max(len(df), 1)
    for c in df.columns:
        s = df[c]
        if c in exclude or c in listed or pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if not pd.api.types.is_datetime64_any_dtype(s) and s.nunique(dropna=True) > MAX_CATEGORY_SHARE * n:
            exclude.add(c)
            skipped.append(f"{c} (text with mostly distinct values: an identifier?)")
    features = spec_file.get("features") or None
    bad_names = sorted(listed & exclude - set(protected))
    if bad_names:
        raise ConfigError(f"{spec_path}: feature spec lists column(s) that cannot be features "
                          f"(target, id, group or personal data): {bad_names}")
    try:
        specs = specs_from_frame(df, target=target, exclude=sorted(exclude & set(df.columns)),
                                 overrides=[f for f in (features or []) if str(f["name"]) not in exclude],
                                 protected=protected)
    except ConfigError as exc:
        raise ConfigError(f"{spec_path or cfg.data.source}: {exc}") from exc
    if not specs:
        raise ConfigError(f"{cfg.data.source}: no feature columns left besides target/id/group")
    return specs, skipped


def _split(df: pd.DataFrame, y: np.ndarray, cfg: ExperimentConfig
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Positions of train / calibration / hold-out, the CV groups of every row, and the method."""
    from sklearn.model_selection import train_test_split

    from village_credit.models.splits import split_by_village

    s, d = cfg.split, cfg.data
    fractions = (1 - s.calibration_share - s.holdout_share, s.calibration_share, s.holdout_share)
    if d.group_column in df.columns:
        groups = df[d.group_column].astype("string").fillna("<missing>").to_numpy(dtype=object)
        n_groups = len(pd.unique(groups))
        if n_groups >= MIN_GROUPS_FOR_GROUP_SPLIT:
            frame = pd.DataFrame({"g": groups})
            sp = split_by_village(frame, fractions, seed=cfg.seed, group_col="g")
            parts = (sp.train, sp.calibration, sp.holdout)
            if all(len(p) and len(np.unique(y[p])) == 2 for p in parts):
                return (*parts, groups, f"by group column {d.group_column!r} ({n_groups} groups)")
        method = f"seeded random (group column {d.group_column!r} has too few groups: {n_groups})"
    else:
        method = "seeded random (no group column)"
    idx = np.arange(len(y))
    rest, hold = train_test_split(idx, test_size=s.holdout_share, random_state=cfg.seed, stratify=y)
    tr, ca = train_test_split(rest, test_size=s.calibration_share / (1 - s.holdout_share),
                              random_state=cfg.seed + 1, stratify=y[rest])
    return np.sort(tr), np.sort(ca), np.sort(hold), idx.astype(object), method


def _gbm_params(cfg: ExperimentConfig, tuned: dict[str, Any], monotone: list[int]) -> dict[str, Any]:
    from village_credit.models.gbm import LGBMDefaultModel

    allowed = set(LGBMDefaultModel().get_params())
    unknown = sorted(set(cfg.model.gbm) - allowed)
    if unknown:
        raise ConfigError(f"model.gbm: unknown LightGBM parameter(s) {unknown}; known: {sorted(allowed)}")
    params = {"random_state": cfg.seed, **cfg.model.gbm, **tuned}
    params["monotone_constraints"] = list(monotone)  # the spec always wins
    return params


def _tune(X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, cfg: ExperimentConfig,
          monotone: list[int]) -> tuple[dict[str, Any], float | None]:
    from village_credit.models.tuning import tune

    t = cfg.model.tuning
    if not t.n_trials and not t.timeout_s:
        return {}, None
    folds = max(2, min(int(t.cv_folds), len(pd.unique(groups))))
    res = tune(X, y, groups, n_trials=t.n_trials or None, timeout=t.timeout_s, seed=cfg.seed,
               cv_folds=folds, log_to_mlflow=True, base_params={"monotone_constraints": list(monotone)})
    return dict(res.best_params), float(res.best_value)


def _grade_edges(p_calibration: np.ndarray, n: int = 10) -> list[float]:
    """Inner PD cut points (deciles of the calibration part): grade G01 = lowest PD."""
    edges = np.unique(np.quantile(p_calibration, np.linspace(0, 1, n + 1))[1:-1])
    return [float(e) for e in edges]


def _grades(p: np.ndarray, edges: list[float]) -> tuple[np.ndarray, list[str]]:
    order = [f"G{i + 1:02d}" for i in range(len(edges) + 1)]
    idx = np.searchsorted(np.asarray(edges, dtype=float), p, side="right")
    return np.asarray(order, dtype=object)[idx], order


def _write_explanations(model: Any, X: pd.DataFrame, specs: list[Any], out: Path, seed: int
                        ) -> dict[str, Path]:
    """Global SHAP: beeswarm, bar, dependence of the top 2 features, JSON (spec labels)."""
    from village_credit.explain.shap_global import global_shap, plot_bar, plot_beeswarm, plot_dependence

    out.mkdir(parents=True, exist_ok=True)
    gs = global_shap(model, X, sample=2000, seed=seed)
    by = {s.name: s for s in specs}
    labels_en = {n: by[n].label_en if n in by else n for n in gs.feature_names}
    labels_zh = {n: by[n].label_zh if n in by else n for n in gs.feature_names}
    paths = {"beeswarm": out / "shap_beeswarm.png", "bar": out / "shap_bar.png"}
    plot_beeswarm(gs, path=paths["beeswarm"], labels=labels_en)
    plot_bar(gs, path=paths["bar"], labels=labels_en)
    overall = np.abs(gs.values).mean(axis=0)
    order = np.argsort(-overall, kind="stable")
    for i in order[:2]:
        f = gs.feature_names[i]
        key = f"dependence:{f}"
        slug = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f)
        paths[key] = out / f"shap_dependence_{slug}.png"
        plot_dependence(gs, f, path=paths[key], labels=labels_en)
    summary = {
        "units": "log-odds of default (LightGBM raw score, before calibration)",
        "explainer": "shap.TreeExplainer (tree_path_dependent)",
        "n_rows": len(X), "n_explained": len(gs), "seed": int(seed),
        "base_value": float(np.mean(gs.base_values)) if len(gs) else None,
        "overall": [{"feature": gs.feature_names[i], "label_en": labels_en[gs.feature_names[i]],
                     "label_zh": labels_zh[gs.feature_names[i]],
                     "monotone": int(by[gs.feature_names[i]].monotone) if gs.feature_names[i] in by else 0,
                     "mean_abs_shap": float(overall[i])} for i in order],
        "files": {k: p.name for k, p in paths.items()},
    }
    paths["summary_json"] = out / "shap_global.json"
    paths["summary_json"].write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return paths


def _signature(feature_names: list[str]) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema, TensorSpec

    inputs = Schema([ColSpec("double", n, required=False) for n in feature_names])
    outputs = Schema([TensorSpec(np.dtype(np.float64), (-1,), "raw_log_odds")])
    return ModelSignature(inputs=inputs, outputs=outputs)


def _log_model(model: Any, feature_names: list[str], registered_name: str | None) -> Any:
    import lightgbm
    import mlflow

    return mlflow.lightgbm.log_model(
        model.booster_, name="model", signature=_signature(feature_names),
        pip_requirements=[f"lightgbm=={lightgbm.__version__}", f"mlflow=={mlflow.__version__}"],
        registered_model_name=registered_name,
    )


def print_generic_summary(result: GenericResult, console: Any) -> None:
    """The short summary of a generic run (the household one speaks of blend, rules and gates)."""
    from rich.table import Table

    m = result.metrics
    nan = float("nan")
    t = Table(title=f"village-credit (bring your own data): '{result.config.name}'", show_header=False)
    t.add_row("rows read = used + quarantined",
              f"{int(m.get('rows_read', 0)):,} = {int(m.get('rows_used', 0)):,} + {result.quarantined_rows:,}")
    t.add_row("split", result.split_method)
    t.add_row("features", f"{len(result.feature_names)} ("
              + ", ".join(f"{n}{'+' if v > 0 else '-' if v < 0 else ''}" for n, v in result.monotone.items())[:200]
              + ")")
    t.add_row("hold-out rows / default rate", f"{int(m.get('holdout_rows', 0)):,} / {m.get('holdout_default_rate', nan):.2%}")
    t.add_row("AUC (95 % DeLong CI)",
              f"{m.get('auc', nan):.3f} [{m.get('auc_ci_low', nan):.3f}, {m.get('auc_ci_high', nan):.3f}]")
    t.add_row("KS / Hosmer-Lemeshow p", f"{m.get('ks', nan):.3f} / {m.get('hosmer_lemeshow_p', nan):.3f}")
    t.add_row("ECE before -> after calibration", f"{m.get('ece_before', nan):.4f} -> {m.get('ece_after', nan):.4f}")
    t.add_row("Brier before -> after", f"{m.get('brier_before', nan):.4f} -> {m.get('brier_after', nan):.4f}")
    t.add_row("model", result.model_uri or "")
    t.add_row("registered", f"{result.registered_model_name} v{result.model_version}"
              if result.registered_model_name else "no (pass register=True)")
    console.print(t)
    for k, v in sorted(result.paths.items()):
        print(f"  {k:<40} {v}")  # plain: Rich would wrap long paths
    print(f".venv/bin/mlflow ui --backend-store-uri {result.tracking_uri}")


# ----------------------------------------------------------------------------- main
def run_generic_experiment(cfg: ExperimentConfig, *, progress: bool = False,
                           register: bool = False) -> GenericResult:
    """Train, calibrate, explain and validate a GBM on any file with a 0/1 target; log to MLflow.

    Returns a :class:`GenericResult` (metrics, paths, run id, model URI). Rows without a
    target go to ``<output_dir>/quarantine.parquet`` (counted in ``rows_quarantined``).
    Raises :class:`ConfigError` naming the file and the column when the target is absent
    or not binary 0/1, and :class:`DataReadError` when the file cannot be read.
    """
    import mlflow

    from village_credit.data.io import read_table
    from village_credit.models.calibration import calibration_summary, fit_calibrator
    from village_credit.models.features import GenericFeatures, load_feature_specs
    from village_credit.models.gbm import LGBMDefaultModel
    from village_credit.models.scaling import PointsScaling
    from village_credit.registry import configure, log_run_context
    from village_credit.validation import (auc_delong, brier, expected_calibration_error, hosmer_lemeshow,
                                           ks_statistic, reference_profile, validation_report,
                                           write_validation_report)

    d = cfg.data
    source = str(d.source)
    if source == "generate":
        raise ConfigError("run_generic_experiment needs data.source to be a Parquet or CSV file")
    result = GenericResult(config=cfg)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timer = StageTimer(result.stages, progress, total=8)
    try:
        spec_file = load_feature_specs(d.feature_spec) if d.feature_spec else {}
        target = _resolve_target(d, spec_file, source)
        raw = timer.run("read data", read_table, source)
        n_read = len(raw)
        raw = raw.reset_index(drop=True)
        y_all, missing = _parse_target(raw, target, source)
        q_path = out_dir / QUARANTINE_FILE
        result.quarantined_rows = _quarantine(raw, missing, target, d.id_column, q_path)
        result.paths["quarantine"] = str(q_path)
        df = raw.loc[~missing].reset_index(drop=True)
        y = y_all[~missing].astype(np.int64)
        if len(df) < MIN_ROWS:
            raise ConfigError(f"{source}: only {len(df)} rows with a target; need at least {MIN_ROWS}")
        df = _coerce_numeric_text(df, keep={target, d.id_column, d.group_column})

        specs, skipped = _build_specs(df, cfg, target, spec_file, d.feature_spec)
        feats = GenericFeatures(specs).fit(df)
        monotone = feats.monotone_constraints()
        names = feats.feature_names_out
        result.feature_names = list(names)
        result.monotone = {n: int(m) for n, m in zip(names, monotone, strict=True)}
        X = feats.transform(df)

        tr, ca, ho, groups, method = _split(df, y, cfg)
        result.split_method = method
        Xtr, Xca, Xho = X.iloc[tr], X.iloc[ca], X.iloc[ho]
        ytr, yca, yho = y[tr], y[ca], y[ho]

        configure(experiment_name=cfg.registry.experiment)
        result.tracking_uri = mlflow.get_tracking_uri()
        with mlflow.start_run(run_name=cfg.name) as run:
            result.run_id = run.info.run_id
            mlflow.set_tags({"pipeline": "bring-your-own-data", "blend": "off (gbm only, no rule engine)",
                             "split_method": method, "target": target})
            log_run_context(cfg.to_dict(), cfg.seed, df.iloc[tr])
            tuned, cv_auc = timer.run("tune (Optuna)", _tune, Xtr, ytr, groups[tr], cfg, monotone)
            params = _gbm_params(cfg, tuned, monotone)
            model = timer.run("fit LightGBM", LGBMDefaultModel(**params).fit, Xtr, ytr)
            result.model, result.features = model, feats

            z_ca = model.decision_function(Xca)
            cal = timer.run("calibrate", fit_calibrator, z_ca, yca, method=cfg.model.calibration,
                            seed=cfg.seed, input="logit")
            result.calibrator = cal

            z_ho = model.decision_function(Xho)
            p_before = model.predict_proba(Xho)[:, 1]
            p_after = cal.transform(z_ho)
            auc, _, lo, hi = auc_delong(yho, p_after)
            ks, _ = ks_statistic(yho, p_after)
            hl_stat, hl_dof, hl_p = hosmer_lemeshow(yho, p_after, groups=10, ddof=0)
            cs = calibration_summary(yho, p_before, p_after)
            m: dict[str, float] = {
                "auc": auc, "auc_ci_low": lo, "auc_ci_high": hi, "gini": 2 * auc - 1, "ks": ks,
                "hosmer_lemeshow_stat": hl_stat, "hosmer_lemeshow_p": hl_p,
                **cs,
                "brier": brier(yho, p_after), "ece": expected_calibration_error(yho, p_after),
                "rows_read": n_read, "rows_quarantined": result.quarantined_rows, "rows_used": len(df),
                "train_rows": len(tr), "calibration_rows": len(ca), "holdout_rows": len(ho),
                "holdout_default_rate": float(yho.mean()), "holdout_households": len(ho),
                "n_features": len(names), "n_trees": model.best_iteration_,
            }
            if cv_auc is not None:
                m["tuning_best_cv_auc"] = cv_auc
            # the household summary's names for the GBM-only model
            m.update({"gbm_auc": auc, "gbm_ks": ks, "gbm_ece": m["ece"], "gbm_brier": m["brier"],
                      "gbm_hosmer_lemeshow_p": hl_p})
            result.metrics = {k: float(v) for k, v in m.items()}

            expl = timer.run("explain (SHAP)", _write_explanations, model, Xho, specs, out_dir / "explain",
                             cfg.seed)

            scaling = PointsScaling.from_pdo(cfg.model.pdo, cfg.model.base_points, cfg.model.base_odds)
            edges = _grade_edges(cal.transform(z_ca))
            grades, order = _grades(p_after, edges)
            train_points = scaling.points_from_pd(cal.transform(model.decision_function(Xtr)))
            reference = reference_profile(Xtr, score=train_points)
            val = timer.run("validation report", validation_report, yho, p_after,
                            scaling.points_from_pd(p_after), grades, order, features_df=Xho,
                            reference_profile=reference)
            val_html, val_json = write_validation_report(val, out_dir / "validation",
                                                         title="Model validation report (bring your own data)")

            model_dir = out_dir / "model"
            model.save_model(model_dir / "model.txt")
            spec_json = {"target": target, "id_column": d.id_column, "group_column": d.group_column,
                         "features": [s.to_dict() for s in feats.specs_], "skipped": skipped,
                         "monotone_constraints": monotone}
            meta = {"format": "village-credit/generic-model/1", "target": target, "features": list(names),
                    "calibrator": cal.to_dict(), "points_scaling": scaling.to_dict(),
                    "grade_edges_pd": edges, "grade_order": order, "split_method": method,
                    "reference_profile": reference}
            files = {"calibrator.json": cal.to_dict(), "feature_spec.json": spec_json,
                     "generic_model.json": meta}
            for fname, obj in files.items():
                (model_dir / fname).write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str),
                                               encoding="utf-8")

            mlflow.log_params({f"fitted.{k}": str(v)[:500] for k, v in params.items()})
            mlflow.log_params({"n_features": len(names), "features_skipped": len(skipped)})
            mlflow.log_metrics(result.metrics)
            mlflow.log_artifacts(str(out_dir / "explain"), "explain")
            mlflow.log_artifacts(str(out_dir / "validation"), "validation")
            for fname in files:
                mlflow.log_artifact(str(model_dir / fname), "generic")
            reg_name = cfg.registry.model_name + GENERIC_SUFFIX if register else None
            info = timer.run("log model", _log_model, model, list(names), reg_name)
            result.model_uri = info.model_uri
            mlflow.set_tag("generic_model_uri", info.model_uri)
            result.registered_model_name = reg_name
            if reg_name is not None and getattr(info, "registered_model_version", None) is not None:
                result.model_version = str(info.registered_model_version)

            result.paths.update({**{f"explain_{k}": str(v) for k, v in expl.items()},
                                 "validation_html": str(val_html), "validation_json": str(val_json),
                                 "model_dir": str(model_dir)})
    finally:
        timer.close()
    (out_dir / "summary.json").write_text(json.dumps(result.summary_dict(), indent=2, default=str),
                                          encoding="utf-8")
    result.paths["summary"] = str(out_dir / "summary.json")
    return result
