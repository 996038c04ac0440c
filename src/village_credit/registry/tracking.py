"""Run context for reproducibility: data fingerprint, config, seed, versions, commit.

Only aggregates and hashes are logged, never rows: a run in the tracking store must
not become a copy of farmers' names, ID numbers, phones or addresses.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow.entities import Param, RunTag
from pandas.util import hash_pandas_object

from village_credit.data.schema import PERSONAL_COLUMN_PATTERN, personal_columns  # noqa: F401 (re-exported)
from village_credit.errors import ConfigError

_TRACKED_LIBRARIES = (
    "village-credit", "mlflow", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn",
    "lightgbm", "shap", "optuna", "fairlearn", "statsmodels", "optbinning", "pyyaml",
)

_FINGERPRINT_VERSION = "vc-fp-1"


def strip_personal_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` without columns named like personal data; for anything we log."""
    drop = personal_columns(df.columns)
    return df.drop(columns=drop) if drop else df


def _dtype_kind(dtype: Any) -> str:
    # Normalise so that pandas 2 (object strings) and 3 (str dtype) give one fingerprint.
    if pd.api.types.is_string_dtype(dtype) or dtype == object:
        return "string"
    return str(dtype)


def data_fingerprint(df: pd.DataFrame) -> str:
    """SHA-256 of a table's content: column names, normalised dtypes and every cell.

    Built on ``pandas.util.hash_pandas_object`` per row (index excluded, so a reset
    index does not change it), fed in row order to SHA-256: the fingerprint is
    **order-sensitive** in rows and columns, so the same rows shuffled count as a
    different training table (row order changes seeded splits). String columns hash
    alike under pandas 2 (object) and 3 (str); cells that are not hashable (lists)
    are hashed by their ``repr``. Prefixed with a scheme tag so it can evolve.

    >>> import pandas as pd
    >>> from village_credit.registry import data_fingerprint
    >>> df = pd.DataFrame({"village_code": ["V001", "V002"], "head_age": [45, 67]})
    >>> data_fingerprint(df)
    'vc-fp-1:0210d74f184aaee1c32f965b2e85141661fe58073e5bfc703194a407e1aafbaa'
    >>> data_fingerprint(df) == data_fingerprint(df.iloc[::-1])  # row order counts
    False
    """
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"data_fingerprint needs a DataFrame, got {type(df).__name__}")
    h = hashlib.sha256()
    header = [[str(c), _dtype_kind(t)] for c, t in df.dtypes.items()]
    h.update(json.dumps({"n_rows": len(df), "columns": header}).encode())
    if len(df.columns) and len(df):
        frame = df
        for col in df.columns:
            if df[col].dtype == object:
                try:
                    hash_pandas_object(df[col], index=False)
                except TypeError:
                    if frame is df:
                        frame = df.copy(deep=False)
                    frame[col] = df[col].map(repr)
        rows = hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
        h.update(rows.astype("<u8").tobytes())
    return f"{_FINGERPRINT_VERSION}:{h.hexdigest()}"


def library_versions() -> dict[str, str]:
    """Installed versions of Python and the libraries a result depends on.

    Read once per process (each ``importlib.metadata`` lookup scans site-packages, a
    tenth of a second for the list; installed versions do not change under a running job).
    """
    return dict(_library_versions())


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    out = {"python": platform.python_version()}
    for lib in _TRACKED_LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            continue
    return tuple(out.items())


def git_commit(path: str | Path | None = None) -> str | None:
    """HEAD commit of the repository holding ``path`` (default: this package), or ``None``.

    ``None`` when git or a repository is not available (an installed wheel, a
    container): the caller records "unknown" rather than failing a run.
    """
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        res = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = res.stdout.strip()
    return sha if res.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", sha) else None


def code_version(commit: str | None = None) -> str:
    """Git commit when available (``commit``: one already read), else the package version:
    what to tag a result with."""
    commit = commit or git_commit()
    if commit:
        return commit
    try:
        return f"village-credit=={metadata.version('village-credit')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = str(value)[:6000]  # MLflow's param value limit


def _redact(value: Any) -> Any:
    """Config with values under personal-looking keys replaced: configs are logged verbatim."""
    if isinstance(value, Mapping):
        return {
            k: ("<redacted>" if PERSONAL_COLUMN_PATTERN.search(str(k)) and not isinstance(v, Mapping)
                else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def log_run_context(
    config: Mapping[str, Any],
    seed: int | None,
    df: pd.DataFrame | None,
    *,
    run_id: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    new_run: bool = False,
) -> dict[str, str]:
    """Log config (params + ``config/config.yaml``), seed, data fingerprint, versions, commit.

    Logs into ``run_id`` or the active run. Of ``df`` only its fingerprint, shape and
    (non-personal) column count are logged, never rows. Returns the tags written.
    ``extra_tags`` (the caller's own, e.g. the data source) go in the same batch; the
    params and tags take one ``log_batch`` per 100 params (MLflow's limit per batch), not
    one call per kind. ``new_run``: the run was just started, so it holds no params yet
    and the look-up of those already logged (params are immutable) is skipped.

    >>> import mlflow
    >>> import pandas as pd
    >>> from village_credit.registry import log_run_context
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> df = pd.DataFrame({"village_code": ["V001", "V002"], "head_age": [45, 67]})
    >>> with mlflow.start_run():
    ...     tags = log_run_context({"model": {"n_estimators": 5}}, 0, df)
    >>> tags["seed"], tags["data_rows"], tags["data_columns"], tags["data_fingerprint"][:8]
    ('0', '2', '2', 'vc-fp-1:')
    >>> store.close()
    """
    if run_id is None:
        active = mlflow.active_run()
        if active is None:
            raise ConfigError("log_run_context needs an active MLflow run or an explicit run_id")
        run_id = active.info.run_id
    client = mlflow.tracking.MlflowClient()

    safe_config = _redact(dict(config))
    params: dict[str, str] = {}
    _flatten("", safe_config, params)
    params["seed"] = str(seed)
    params = {k[:250]: v for k, v in params.items()}

    commit = git_commit()
    tags: dict[str, str] = {"code_version": code_version(commit), "seed": str(seed)}
    tags["git_commit"] = commit or "unknown"
    for lib, ver in library_versions().items():
        tags[f"lib.{lib}"] = ver
    if df is not None:
        tags["data_fingerprint"] = data_fingerprint(df)
        tags["data_rows"] = str(len(df))
        tags["data_columns"] = str(df.shape[1])
        n_personal = len(personal_columns(df.columns))
        if n_personal:
            tags["data_personal_columns"] = str(n_personal)

    tags.update({str(k): str(v) for k, v in (extra_tags or {}).items()})
    existing = {} if new_run else client.get_run(run_id).data.params
    # Params are immutable in MLflow: skip keys already logged with the same value.
    new_params = [Param(k, v) for k, v in params.items() if existing.get(k) != v]
    run_tags = [RunTag(k, v) for k, v in tags.items()]
    for i in range(0, max(len(new_params), 1), 100):  # the tags ride with the first batch
        client.log_batch(run_id, params=new_params[i:i + 100], tags=run_tags[:100] if i == 0 else [])
    for i in range(100, len(run_tags), 100):
        client.log_batch(run_id, tags=run_tags[i:i + 100])
    client.log_text(
        run_id, yaml.safe_dump(safe_config, sort_keys=True, allow_unicode=True), "config/config.yaml"
    )
    return tags
