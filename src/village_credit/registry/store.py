"""Where the MLflow tracking store and model registry live.

The default is a sqlite database plus an artifact folder under ``mlruns/`` of the
repository (or the current directory when not inside one): MLflow 3 has no file
store for the registry, and sqlite keeps one self-contained folder that
``mlflow ui`` can open. ``MLFLOW_TRACKING_URI`` overrides it (e.g. a tracking
server). Tests pass explicit temporary paths instead.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import sqlite3
import uuid
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from village_credit.errors import ConfigError
from village_credit.registry.preflight import check_tracking_uri

_log = logging.getLogger(__name__)

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
        seed_new_store(db)
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


TEMPLATE_FOLDER = "empty-mlflow-stores"
"""Folder of the empty-store templates under ``$XDG_CACHE_HOME/village-credit`` (else
``~/.cache/village-credit``); deleting it is always safe (the next new store rebuilds it)."""


def template_cache_dir() -> Path:
    """Where the empty, migrated MLflow stores are kept: ``$XDG_CACHE_HOME`` (else
    ``~/.cache``) ``/village-credit/empty-mlflow-stores``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "village-credit" / TEMPLATE_FOLDER


@functools.cache
def _schema_head() -> str:
    """The Alembic revision MLflow's newest schema carries (what it verifies on open).

    A private MLflow helper: should a later MLflow move it, :func:`empty_store_template`
    gives up the template and MLflow migrates every new store itself, as before.
    """
    # lazy: sqlalchemy and alembic (~1 CPU s), only for a new sqlite store
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


def _template_problem(db: Path, head: str) -> str | None:
    """Why ``db`` cannot serve as an empty store of schema ``head``; ``None`` when it can.

    A template copied into a user's store must be MLflow's schema at the head revision
    MLflow will verify, intact, and empty: a damaged file, an older MLflow's schema or
    a store that holds runs or models would otherwise be copied into every new store.
    """
    try:
        con = sqlite3.connect(f"file:{db.as_posix()}?mode=ro", uri=True)
        try:
            if con.execute("PRAGMA quick_check").fetchone() != ("ok",):
                return "fails sqlite's integrity check"
            versions = [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
            if versions != [head]:
                return f"schema revision {versions} is not MLflow's {head}"
            for table in ("experiments", "runs", "registered_models", "model_versions"):
                if con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]:  # fixed names, not input
                    return f"table {table} is not empty"
        finally:
            con.close()
    except sqlite3.Error as exc:
        return f"unreadable: {exc}"
    return None


def _build_template(path: Path, head: str) -> None:
    """Let MLflow create and migrate an empty store, check it, then move it to ``path``.

    Built under a private temporary name and published with ``os.replace``, so a second
    process (another pytest worker, a parallel CLI run) sees either no template or a
    whole one; two builders racing both publish identical files.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _private_name(path)
    try:
        # lazy: as in _schema_head, only when the template is (re)built
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

        # the registry store migrates the whole schema and, unlike the tracking store,
        # adds no "Default" experiment (whose artifact folder would name this cache);
        # made directly (not through a client) so no cached engine keeps the file open
        store = SqlAlchemyStore(f"sqlite:///{tmp.as_posix()}")
        store.engine.dispose()
        problem = _template_problem(tmp, head)
        if problem:
            raise RuntimeError(f"the store MLflow just created {problem}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _private_name(path: Path) -> Path:
    """A temporary name beside ``path`` that no other process or thread uses."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")


def empty_store_template() -> Path | None:
    """The cached empty store for this MLflow version and schema, built when missing or
    unfit; ``None`` when the cache folder cannot be used (MLflow then migrates as usual)."""
    try:
        head = _schema_head()
    except (ImportError, AttributeError) as exc:  # MLflow's private helper moved: no template
        _log.warning("no empty MLflow store template (%s): MLflow migrates the new store itself", exc)
        return None
    path = template_cache_dir() / f"mlflow-{mlflow.__version__}-{head}.db"
    try:
        if path.exists():
            problem = _template_problem(path, head)
            if problem is None:
                return path
            _log.warning("empty MLflow store template %s %s: rebuilding it", path, problem)
        _build_template(path, head)
        return path
    except (OSError, RuntimeError, sqlite3.Error, ImportError) as exc:
        _log.warning("no empty MLflow store template at %s (%s): MLflow migrates the new "
                     "store itself", path, exc)
        return None


def seed_new_store(db: Path) -> bool:
    """Start a sqlite store that does not exist yet as a copy of the empty template.

    Why: MLflow runs every Alembic migration on a new database (~1.5 CPU s, several
    seconds of fsyncs); a copy of an empty, migrated database that MLflow itself made
    costs ~0.05 s, and MLflow still verifies its schema revision when it opens it. The
    copy is linked into place only if ``db`` still does not exist, so a store another
    process created meanwhile is never overwritten. Returns whether ``db`` was seeded.
    """
    if db.exists() or "?" in db.name:
        return False
    template = empty_store_template()
    if template is None:
        return False
    tmp = _private_name(db)
    try:
        shutil.copyfile(template, tmp)  # created with the umask's mode, as sqlite would
        os.link(tmp, db)  # fails if db appeared meanwhile: that store is kept
        return True
    except OSError:  # db exists now, folder read-only, no hard links: MLflow creates it
        return False
    finally:
        tmp.unlink(missing_ok=True)


def seed_store_of(uri: str) -> bool:
    """:func:`seed_new_store` for the sqlite database a tracking URI names (others: no-op),
    for code that opens a store with its own ``MlflowClient`` rather than ``configure``."""
    db = _sqlite_path(uri)
    return db is not None and db.parent.is_dir() and seed_new_store(db)


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
