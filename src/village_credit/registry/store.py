"""Where the MLflow tracking store and model registry live.

The default is a sqlite database plus an artifact folder under ``mlruns/`` of the
repository (or the current directory when not inside one): MLflow 3 has no file
store for the registry, and sqlite keeps one self-contained folder that
``mlflow ui`` can open. ``MLFLOW_TRACKING_URI`` overrides it (e.g. a tracking
server). Tests pass explicit temporary paths instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from village_credit.errors import ConfigError
from village_credit.registry.preflight import check_tracking_uri

DEFAULT_EXPERIMENT = "village-credit"
DEFAULT_MODEL_NAME = "village-credit"
_DB_NAME = "mlflow.db"


def _project_root(start: Path | None = None) -> Path:
    """Nearest ancestor holding ``.git`` or ``pyproject.toml``; else the start dir.

    So that running any command from a sub-folder of the repository uses the one
    ``mlruns/`` store at the top, not a new one per folder.
    """
    here = (start or Path.cwd()).resolve()
    for cand in (here, *here.parents):
        if (cand / ".git").exists() or (cand / "pyproject.toml").exists():
            return cand
    return here


def default_tracking_uri(root: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<root>/mlruns/mlflow.db``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    base = Path(root).resolve() if root is not None else _project_root()
    return f"sqlite:///{(base / 'mlruns' / _DB_NAME).as_posix()}"


def resolve_store() -> str:
    """The store every entry point works on: the one the user chose, else the project's.

    The user's choice is ``MLFLOW_TRACKING_URI`` (which ``mlflow.set_tracking_uri`` also
    sets), else a process-wide ``mlflow.set_tracking_uri``. Without
    one, MLflow 3 falls back to ``sqlite:///mlflow.db`` in the current directory: a
    second, empty store beside the project's. So MLflow is pointed at the store the CLI
    and the demo use (``default_tracking_uri``) before anything touches it; the CLI,
    the root API (``load_model``, ``score_file``, ``promote``, ``validation_report``),
    the notebooks and the Spark job all call this, so they agree without a set-up line.

    >>> import os, tempfile, mlflow
    >>> from village_credit.registry.store import resolve_store
    >>> from village_credit.registry.examples import mlflow_state_restored
    >>> with tempfile.TemporaryDirectory() as tmp, mlflow_state_restored():
    ...     mlflow.set_tracking_uri(f"sqlite:///{tmp}/mine.db")   # the user's choice wins
    ...     resolve_store().endswith("mine.db")
    True
    """
    env = os.environ.get("MLFLOW_TRACKING_URI")
    # the environment names the user's store (mlflow.set_tracking_uri writes it there too);
    # a process-wide setting that differs from it is a left-over, not the user's choice
    uri = env or (mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else default_tracking_uri())
    if mlflow.tracking._tracking_service.utils._tracking_uri != uri:
        mlflow.set_tracking_uri(uri)
    _registry_follows(uri)
    return uri


_pinned_registries: set[str] = set()
"""Registry URIs this module set, so that a registry the user chose is told apart."""


def _registry_follows(uri: str) -> None:
    """Point the registry at the tracking store unless the user chose another registry.

    ``mlflow.set_registry_uri`` is sticky (it also writes ``MLFLOW_REGISTRY_URI``), so a
    registry pinned by an earlier ``configure`` would keep reading the old store after
    the user moved tracking with ``mlflow.set_tracking_uri``: runs in one store, model
    versions looked up in another. Only a registry URI this module set moves.
    """
    current = mlflow.tracking._model_registry.utils._get_registry_uri_from_context()
    if current != uri and (current is None or current in _pinned_registries):
        _pin_registry(uri)


def _pin_registry(uri: str) -> None:
    mlflow.set_registry_uri(uri)
    _pinned_registries.add(uri)


def require_existing_store(uri: str) -> str:
    """``uri``, or a clear error when it names a sqlite store that does not exist.

    Reading from a store that is not there would make sqlite create an empty one (a
    stray ``mlflow.db``) and then fail with "Registered Model ... not found"; the
    real cause is that nothing was ever trained into this store.
    """
    db = _sqlite_path(uri)
    if db is not None and not db.exists():
        raise ConfigError(f"no MLflow store at {db}: train a model first (`make demo` or "
                          "`village-credit train`), or point MLFLOW_TRACKING_URI (or "
                          "--tracking-uri) at the store that holds it")
    return uri


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):])


def default_artifact_root(tracking_uri: str) -> str | None:
    """``<db folder>/artifacts`` (absolute) for sqlite stores; ``None`` otherwise.

    MLflow's default for a new sqlite experiment is ``./mlruns`` relative to the
    *current* directory, which scatters artifacts; we pin them next to the database.
    """
    db = _sqlite_path(tracking_uri)
    if db is None:
        return None
    return (db.resolve().parent / "artifacts").as_posix()


def configure(
    tracking_uri: str | None = None,
    artifact_root: str | Path | None = None,
    experiment_name: str = DEFAULT_EXPERIMENT,
) -> str:
    """Point MLflow tracking and registry at one store and make sure the experiment exists.

    Returns the experiment id. The experiment is also made the active one, so that
    ``mlflow.start_run()`` logs into it.

    >>> import tempfile
    >>> from village_credit.registry import configure, get_client
    >>> from village_credit.registry.examples import mlflow_state_restored
    >>> with tempfile.TemporaryDirectory() as tmp, mlflow_state_restored():
    ...     experiment_id = configure(f"sqlite:///{tmp}/mlflow.db")  # creates the store
    ...     print(get_client().get_experiment(experiment_id).name)
    village-credit
    """
    uri = check_tracking_uri(tracking_uri or resolve_store())
    db = _sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    point_at(uri)

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name(experiment_name)
    if exp is None:
        root = Path(artifact_root).resolve().as_posix() if artifact_root else None
        root = root or default_artifact_root(uri)
        if root is not None and "://" not in root:
            Path(root).mkdir(parents=True, exist_ok=True)
        try:
            exp_id = client.create_experiment(experiment_name, artifact_location=root)
        except Exception as exc:  # another process may have created it meanwhile
            exp = client.get_experiment_by_name(experiment_name)
            if exp is None:
                raise ConfigError(
                    f"cannot create MLflow experiment {experiment_name!r} at {uri}: {exc}"
                ) from exc
            exp_id = exp.experiment_id
    else:
        exp_id = exp.experiment_id
    mark_classical_ml(client, exp_id)
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def point_at(uri: str) -> None:
    """Point MLflow tracking and registry at ``uri``, one store for both whatever was set
    before (what :func:`configure` does before it opens the store; opens nothing)."""
    mlflow.set_tracking_uri(uri)
    _pin_registry(uri)


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""The experiment tag MLflow 3's UI reads to choose an experiment's default page."""
CLASSICAL_ML_KIND = "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"
EXPERIMENT_DESCRIPTION = (
    "village-credit: one run per training of the credit decision model (Jinxiang rule points "
    "blended with LightGBM), named after the experiment file and its start time. Each run "
    "holds the hold-out evidence, the fairness and validation reports and the gate table "
    "(gates/v1/gates.md for version 1); the registered versions say in their description whether the "
    "promotion gates passed. Validation and recalibration runs are named validate-... and "
    "recalibrate-...")


def mark_classical_ml(client: MlflowClient, experiment_id: str) -> None:
    """Tag the experiment as classical ML so the MLflow UI opens on its runs.

    Without the tag MLflow 3 infers the kind and, for an experiment without runs or
    traces yet, opens the GenAI overview (traces, token usage) that this toolkit
    never fills. The UI reads ``mlflow.experimentKind``: ``custom_model_development``
    selects the runs table. An existing value (set by a user in the UI) is kept.
    """
    exp = client.get_experiment(experiment_id)
    if EXPERIMENT_KIND_TAG not in (exp.tags or {}):
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, CLASSICAL_ML_KIND)
    if DESCRIPTION_TAG not in (exp.tags or {}):  # the UI's "Description"; a user's own is kept
        client.set_experiment_tag(experiment_id, DESCRIPTION_TAG, EXPERIMENT_DESCRIPTION)


UI_WORKFLOW = "workflowType=machine_learning"
"""MLflow 3.17's UI picks an experiment's first page from its GenAI / Model training
switch (top left), not from ``mlflow.experimentKind``, and starts on GenAI; this query
opens the experiment on its runs (tests/test_browser.py checks it in Chromium)."""


def ui_runs_url(server: str, experiment_id: str) -> str:
    """The MLflow UI page of an experiment's runs (not the GenAI overview).

    >>> from village_credit.registry.store import ui_runs_url
    >>> ui_runs_url("http://127.0.0.1:5000/", "1")
    'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning'
    """
    return f"{server.rstrip('/')}/#/experiments/{experiment_id}/runs?{UI_WORKFLOW}"


def get_client(tracking_uri: str | None = None) -> MlflowClient:
    """A client on ``tracking_uri`` (else the store ``resolve_store`` names), tracking and registry.

    >>> from village_credit.registry import get_client
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> client = get_client(store.uri)
    >>> sorted(e.name for e in client.search_experiments())
    ['Default', 'village-credit']
    >>> store.close()
    """
    if tracking_uri:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    uri = resolve_store()
    return MlflowClient(tracking_uri=uri, registry_uri=mlflow.get_registry_uri())


def model_name_from_config(config: dict | None = None) -> str:
    """Registered model name: ``config['registry']['model_name']``, else ``village-credit``."""
    if config:
        reg = config.get("registry") or {}
        if not isinstance(reg, dict):
            raise ConfigError(f"config key 'registry' must be a mapping, got {type(reg).__name__}")
        name = reg.get("model_name")
        if name:
            return str(name)
    return DEFAULT_MODEL_NAME
