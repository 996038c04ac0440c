"""The one model loader: any MLflow model URI -> a verified ``DecisionModel``.

Every command that decides (``score`` on one machine or on Spark, ``validate``,
``recalibrate``, ``monitor``, the notebooks' helpers) loads its model here, so the
URI rules and the promotion check live in one place:

* **URIs**: ``models:/name@alias``, ``models:/name/N`` (or ``/latest``),
  ``models:/m-<logged model id>``, ``runs:/<run>/<path>`` and a local model folder.
  Each is resolved to the registered version behind it when there is one (an alias
  now, a version number, or the version registered from that logged model / run),
  and the artifacts are downloaded *by version*, so an alias that moves during the
  run cannot change what is scored.
* **Digest**: ``sha256`` over the downloaded files (:func:`artifact_digest`); the
  pyfunc is loaded from that very copy, so the bytes verified are the bytes run.
* **Gate at the point of use**: ``promote`` writes a promotion record binding the
  gate results, thresholds, evidence and the artifact digest. With
  ``require_gate`` the loader refuses (:class:`UngatedModelError`, exit code 2 on
  the CLI) a model that has no record, whose record rejected it, or whose
  artifacts no longer match the digest; the message names the version and the
  commands that promote it. ``allow_ungated`` loads it anyway and says so in
  :attr:`LoadedModel.gate`, which the scoring outputs carry.

Aliases set by hand (``MlflowClient().set_registered_model_alias`` or the MLflow
UI) therefore cannot put an ungated version into production: the alias moves, the
loader still refuses the version.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from village_credit._lazy import paused_gc
from village_credit.errors import VillageCreditError
from village_credit.models.saved_folder import DECISION_MODEL_ARTIFACT, find_saved_model
from village_credit.registry.decision_face import DecisionFace, DecisionPyfuncFace, _import_class
from village_credit.yaml_io import SAFE_LOADER, safe_load

# MLflow (and the store module, which imports it) is imported where the store is used:
# ``village-credit score``'s own process loads its model without it (``registry.store_process``)

__all__ = [
    "GateStatus", "LoadedModel", "ModelIdentity", "ModelLoadError", "UngatedModelError",
    "artifact_digest", "gate_status", "load_decision_model", "load_model", "parse_models_uri",
    "resolve_uri", "version_digest",
]

#: Model-version tags written by ``promote`` and read here.
TAG_RECORD = "promotion.record"
TAG_RECORD_RUN = "promotion.record_run_id"
TAG_DIGEST = "promotion.artifact_digest"
TAG_DECISION = "promotion.decision"

_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))?/?$")
_RUNS_URI = re.compile(r"^runs:/(?P<run>[^/]+)(?:/(?P<path>.+?))?/?$")
_DEFAULT_DECISION_CLASS = "village_credit.models.decision:DecisionModel"


class ModelLoadError(VillageCreditError):
    """The model URI cannot be resolved, downloaded or loaded as a decision model.

    >>> from village_credit.registry import ModelLoadError, load_model
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> try:
    ...     load_model("models:/no-such-model/1")
    ... except ModelLoadError as exc:
    ...     print(exc)
    cannot resolve model 'models:/no-such-model/1' in the registry at sqlite:///...: ...
    >>> store.close()
    """


class UngatedModelError(ModelLoadError):
    """The model has no valid promotion record (never gated, rejected, or altered).

    >>> from village_credit.registry import UngatedModelError, load_model
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> version = store.register("demo")  # logged, never promoted
    >>> try:
    ...     load_model(f"models:/demo/{version}")
    ... except UngatedModelError as exc:
    ...     print(exc)
    refusing models:/demo/1: model demo v1 has no promotion record: ... --allow-ungated ...
    >>> load_model(f"models:/demo/{version}", allow_ungated=True).gate.loaded_ungated
    True
    >>> store.close()
    """


@dataclass
class ModelIdentity:
    """What a URI points at: the registered version behind it when there is one."""

    uri: str
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None
    model_id: str | None = None
    local_path: str | None = None

    @property
    def registered(self) -> bool:
        return self.name is not None and self.version is not None

    @property
    def version_uri(self) -> str:
        """``models:/name/N`` for a registered version, else the URI itself."""
        return f"models:/{self.name}/{self.version}" if self.registered else self.uri

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}" if self.registered else self.uri


@dataclass
class GateStatus:
    """Whether the loaded artifacts are a promoted, unaltered version."""

    gated: bool
    reason: str
    record: str | None = None
    record_run_id: str | None = None
    decision: str | None = None
    by_override: bool = False
    expected_digest: str | None = None
    loaded_ungated: bool = False  # loaded anyway (``allow_ungated``)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    """A model as every deciding command gets it: identity, local copy, pyfunc, DecisionModel."""

    identity: ModelIdentity
    local_dir: Path
    decision_dir: Path
    decision_class: str
    pyfunc: Any
    decision_model: Any
    spec: dict[str, Any]
    artifact_sha256: str
    gate: GateStatus
    extra: dict[str, Any] = field(default_factory=dict)

    # --- the names the validation kit used (``ModelSource``): kept for its callers
    @property
    def uri(self) -> str:
        return self.identity.uri

    @property
    def name(self) -> str | None:
        return self.identity.name

    @property
    def version(self) -> str | None:
        return self.identity.version

    @property
    def run_id(self) -> str | None:
        return self.identity.run_id

    @property
    def registered(self) -> bool:
        return self.identity.registered

    @property
    def label(self) -> str:
        return self.identity.label

    @property
    def reference_profile(self) -> dict[str, Any] | None:
        prof = (self.spec.get("metadata") or {}).get("reference_profile")
        return prof if isinstance(prof, dict) and prof.get("columns") else None

    def identity_dict(self) -> dict[str, Any]:
        return {"model_uri": self.uri, "model_name": self.name, "model_version": self.version,
                "model_run_id": self.run_id, "decision_class": self.decision_class,
                "model_artifact_sha256": self.artifact_sha256,
                "model_gated": self.gate.gated, "model_gate": self.gate.reason}

    # the validation kit's historical name
    identity_record = identity_dict


# --------------------------------------------------------------------------- URIs


def parse_models_uri(uri: str) -> tuple[str | None, str | None, str | None]:
    """``(name, version, alias)`` of a ``models:/`` URI; ``(None, None, None)`` otherwise.

    A logged-model id ``models:/m-...`` parses as a bare name (no version, no alias).
    """
    m = _MODELS_URI.match(str(uri))
    if not m:
        return None, None, None
    return m.group("name"), m.group("version"), m.group("alias")


def _client(client: Any = None) -> Any:
    if client is not None:
        return client
    from village_credit.registry.store import (  # lazy: MLflow
        get_client,
        require_existing_store,
        resolve_store,
    )

    # reading never creates a store: a missing sqlite file is named, not made empty
    require_existing_store(resolve_store())
    return get_client()


def _versions_of_run(client: Any, run_id: str) -> list[Any]:
    try:
        return list(client.search_model_versions(f"run_id = '{run_id}'"))
    except Exception:  # noqa: BLE001 - a store without registry: nothing registered
        return []


def _model_id_of(mv: Any) -> str | None:
    """The logged-model id of a version (``model_id``, or its ``models:/m-...`` source)."""
    mid = getattr(mv, "model_id", None)
    if mid:
        return str(mid)
    name, version, alias = parse_models_uri(str(getattr(mv, "source", "") or ""))
    return name if name and version is None and alias is None else None


def _pick(versions: list[Any], uri: str) -> Any | None:
    if not versions:
        return None
    names = {v.name for v in versions}
    if len(names) > 1:
        raise ModelLoadError(f"{uri} is registered under several names ({sorted(names)}); "
                             "use models:/<name>/<version>")
    return max(versions, key=lambda v: int(v.version))


def resolve_uri(uri: str, client: Any = None) -> ModelIdentity:
    """The registered version (if any) behind any MLflow model URI or local folder."""
    from mlflow.exceptions import MlflowException  # lazy: MLflow

    uri = str(uri)
    ident = ModelIdentity(uri=uri)
    name, version, alias = parse_models_uri(uri)
    runs = _RUNS_URI.match(uri)
    if name is None and runs is None:
        path = Path(uri.removeprefix("file://"))
        if path.is_dir():
            ident.local_path = str(path.resolve())
            return ident
        if "://" not in uri and ":/" not in uri:
            raise ModelLoadError(f"model {uri!r}: not a model URI (models:/name@alias, "
                                 "models:/name/N, models:/m-<id>, runs:/<run>/model) "
                                 "and no such local model folder")
        return ident  # another scheme MLflow may know; downloaded as is, never registered
    c = _client(client)
    try:
        if name is not None and alias is not None:
            mv = c.get_model_version_by_alias(name, alias)
            ident.alias = alias
        elif name is not None and version is not None:
            if version == "latest":
                found = list(c.search_model_versions(f"name = '{name}'"))
                if not found:
                    raise ModelLoadError(f"model {name!r} has no versions")
                mv = max(found, key=lambda v: int(v.version))
            else:
                mv = c.get_model_version(name, version)
        elif name is not None:  # models:/m-<logged model id>
            logged = c.get_logged_model(name)
            ident.model_id, ident.run_id = logged.model_id, logged.source_run_id
            cands = [v for v in _versions_of_run(c, logged.source_run_id or "")
                     if _model_id_of(v) == logged.model_id]
            mv = _pick(cands, uri)
            if mv is None:
                return ident
        else:
            assert runs is not None
            run_id, path = runs.group("run"), (runs.group("path") or "").strip("/")
            ident.run_id = run_id
            cands = _versions_of_run(c, run_id)
            if path and len(cands) > 1:
                named = []
                for v in cands:
                    try:
                        mid = _model_id_of(v)
                        if mid and c.get_logged_model(mid).name == path:
                            named.append(v)
                    except MlflowException:
                        continue
                cands = named or cands
            mv = _pick(cands, uri)
            if mv is None:
                return ident
    except MlflowException as exc:
        raise ModelLoadError(f"cannot resolve model {uri!r} in the registry at "
                             f"{getattr(c, '_registry_uri', None) or c.tracking_uri}: "
                             f"{getattr(exc, 'message', exc)}") from exc
    ident.name, ident.version = str(mv.name), str(mv.version)
    ident.run_id = mv.run_id or ident.run_id
    ident.model_id = _model_id_of(mv) or ident.model_id
    return ident


# --------------------------------------------------------------------------- digest


def artifact_digest(directory: str | Path) -> str:
    """``sha256:<hex>`` over every file of ``directory``, in sorted relative-path order.

    Each file contributes its relative POSIX path, a NUL, its size and its bytes, so
    renaming or moving a file changes the digest as much as editing it does.
    """
    root = Path(directory)
    h = hashlib.sha256()
    for p in sorted(p for p in root.rglob("*") if p.is_file()):
        data = p.read_bytes()
        h.update(p.relative_to(root).as_posix().encode("utf-8") + b"\0"
                 + str(len(data)).encode() + b"\0")
        h.update(data)
    return f"sha256:{h.hexdigest()}"


_PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"


@contextmanager
def quiet_downloads() -> Iterator[None]:
    """MLflow's per-file "Downloading artifacts" bars off for the block, unless the user
    set ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR`` themselves: a model is ~100 files, and
    a script or notebook calling ``score_file``/``load_model`` would be flooded."""
    if _PROGRESS_BAR_ENV in os.environ:
        yield
        return
    os.environ[_PROGRESS_BAR_ENV] = "false"
    try:
        yield
    finally:
        os.environ.pop(_PROGRESS_BAR_ENV, None)


def _download(ident: ModelIdentity, dst: Path, client: Any = None) -> Path:
    """A local copy of the model's files (by version when registered), without progress bars."""
    if ident.local_path is not None:
        return Path(ident.local_path)
    import mlflow.artifacts  # lazy: MLflow
    from mlflow.exceptions import MlflowException  # lazy: MLflow

    c = _client(client)
    try:
        with quiet_downloads():
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=ident.version_uri, dst_path=str(dst), tracking_uri=c.tracking_uri,
                registry_uri=getattr(c, "_registry_uri", None) or c.tracking_uri)
    except (MlflowException, OSError) as exc:
        raise ModelLoadError(f"cannot download model {ident.uri!r}: {exc}") from exc
    return Path(local)


def version_digest(name: str, version: str, client: Any = None) -> str:
    """The artifact digest of a registered version, as the loader computes it."""
    with tempfile.TemporaryDirectory(prefix="vc-digest-") as tmp:
        ident = ModelIdentity(uri=f"models:/{name}/{version}", name=name, version=str(version))
        return artifact_digest(_download(ident, Path(tmp), client))


# --------------------------------------------------------------------------- gate


def _promote_hint(ident: ModelIdentity) -> str:
    if not ident.registered:
        return ("register it (village-credit train, or mlflow.register_model), validate and "
                "promote it, then load it as models:/<name>@champion")
    return (f"validate and promote it: `village-credit validate --model {ident.version_uri} "
            f"--input <labelled sample>` then `village-credit promote --model-name {ident.name} "
            f"--version {ident.version}`")


def gate_status(ident: ModelIdentity, digest: str, client: Any = None) -> GateStatus:
    """Check the promotion record of ``ident`` against the loaded ``digest``."""
    if not ident.registered:
        return GateStatus(False, f"{ident.uri} is not a registered model version, so it has "
                                 "no promotion record")
    from mlflow.exceptions import MlflowException  # lazy: MLflow

    c = _client(client)
    try:
        tags = dict(c.get_model_version(ident.name, ident.version).tags or {})
    except MlflowException as exc:
        raise ModelLoadError(f"cannot read model {ident.label}: {exc}") from exc
    path, run_id = tags.get(TAG_RECORD), tags.get(TAG_RECORD_RUN)
    if not path or not run_id:
        return GateStatus(False, f"model {ident.label} has no promotion record: it never "
                                 "went through the promotion gates")
    try:
        with tempfile.TemporaryDirectory(prefix="vc-record-") as tmp, quiet_downloads():
            local = c.download_artifacts(run_id, path, tmp)
            record = json.loads(Path(local).read_text(encoding="utf-8"))
    except (MlflowException, OSError, ValueError) as exc:
        return GateStatus(False, f"model {ident.label}: its promotion record {path} on run "
                                 f"{run_id} cannot be read ({exc})", record=path,
                          record_run_id=run_id)
    status = GateStatus(False, "", record=path, record_run_id=run_id,
                        decision=record.get("decision"),
                        by_override=bool(record.get("override_reason")),
                        expected_digest=record.get("artifact_digest"))
    if str(record.get("model_name")) != ident.name or str(record.get("version")) != ident.version:
        status.reason = (f"model {ident.label}: its promotion record belongs to "
                         f"{record.get('model_name')} v{record.get('version')}")
    elif record.get("decision") != "promote":
        failed = ", ".join((record.get("report") or {}).get("failed", []) or []) or "see record"
        status.reason = f"model {ident.label} failed its promotion gates ({failed})"
    elif not status.expected_digest:
        status.reason = (f"model {ident.label}: its promotion record has no artifact digest "
                         "(promoted by an older toolkit); promote it again")
    elif status.expected_digest != digest:
        status.reason = (f"model {ident.label}: its artifacts changed since promotion "
                         f"(digest {digest[:19]}... != recorded {status.expected_digest[:19]}...)")
    else:
        status.gated = True
        status.reason = "promoted" + (" by override" if status.by_override else "")
    return status


# --------------------------------------------------------------------------- load


_log = logging.getLogger(__name__)


def _installed_version(name: str) -> str:
    """The installed version of distribution ``name``; MLflow's as ``mlflow.__version__`` says
    (also with only ``mlflow-skinny`` installed), read without importing MLflow when it is not."""
    if name != "mlflow":
        return importlib.metadata.version(name)
    if "mlflow" in sys.modules:
        return str(sys.modules["mlflow"].__version__)
    for dist in ("mlflow", "mlflow-skinny"):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise importlib.metadata.PackageNotFoundError(name)


def _environment_mismatches(local: Path, pyfunc_conf: Mapping[str, Any]) -> list[str]:
    """What MLflow's loader warns about, checked by name: requirements the installed
    packages do not satisfy, and another Python major.minor than the model's.

    Why not MLflow's own check: it maps every installed distribution to its modules
    (``packages_distributions``) before looking at the model's ~10 requirements, which
    costs a fresh scoring process more than loading the model does. Here each
    requirement's version is read by name; a requirement that is a path or URL is
    skipped, as MLflow skips it.
    """
    out = []
    req_file = local / "requirements.txt"
    lines = req_file.read_text(encoding="utf-8").splitlines() if req_file.is_file() else []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker and not req.marker.evaluate():
            continue
        try:
            have = _installed_version(req.name)
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{req.name} (current: uninstalled, required: {line})")
            continue
        if req.specifier and not req.specifier.contains(have, prereleases=True):
            out.append(f"{req.name} (current: {have}, required: {line})")
    model_py = str(pyfunc_conf.get("python_version") or "")
    if model_py and model_py.split(".")[:2] != [str(sys.version_info.major), str(sys.version_info.minor)]:
        out.append(f"python (current: {sys.version.split()[0]}, model saved with: {model_py})")
    return out


@contextmanager
def _libyaml_safe_load() -> Iterator[None]:
    """``yaml.safe_load`` parses with libyaml for the block (MLflow's parses of ``MLmodel``).

    Why: ``mlflow.pyfunc.load_model`` reads the model's 20 kB ``MLmodel`` three times, and
    the model's policy file once, with PyYAML's pure-Python parser: ~0.25 CPU s of a
    fresh process's model load, ~0.03 s with libyaml (the same ``SafeConstructor`` and
    resolver, so the same documents; only the wording of a syntax error differs).
    Loads that overlap in threads share one switch: the first in sets it, the last out
    puts back what it found. Without libyaml nothing changes.
    """
    global _YAML_DEPTH, _YAML_BEFORE
    if SAFE_LOADER is yaml.SafeLoader:
        yield
        return
    with _YAML_LOCK:
        if _YAML_DEPTH == 0:
            _YAML_BEFORE = yaml.safe_load
            yaml.safe_load = safe_load
        _YAML_DEPTH += 1
    try:
        yield
    finally:
        with _YAML_LOCK:
            _YAML_DEPTH -= 1
            if _YAML_DEPTH == 0 and _YAML_BEFORE is not None:
                yaml.safe_load = _YAML_BEFORE
                _YAML_BEFORE = None


_YAML_LOCK = threading.Lock()
_YAML_DEPTH = 0
_YAML_BEFORE: Any = None


_LOADED: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
"""Pyfunc models loaded in this process, by artifact digest, while someone holds them.

Why: a process that loads a model and then scores with ``score_file`` (which loads
it again, as every command does) deserialised the same artifacts twice. The download,
digest and promotion check still run on every load; only when the downloaded bytes
hash to the digest of a model this process has already loaded, and still holds, is
that model handed on instead of parsed again (the bytes verified are the bytes run).
"""


def _read_mlmodel(local: Path) -> dict[str, Any]:
    """The parsed ``MLmodel`` of a model folder."""
    mlmodel = local / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"{local}: no MLmodel file: not an MLflow model")
    return safe_load(mlmodel.read_text(encoding="utf-8")) or {}


def _find_decision_dir(local: Path, conf: Mapping[str, Any]) -> tuple[Path, str, dict[str, Any]]:
    """The ``decision_model`` artifact folder, ``decision_class`` and python_function
    configuration of a pyfunc folder whose parsed ``MLmodel`` is ``conf``."""
    pyfunc_conf = (conf.get("flavors") or {}).get("python_function") or {}
    arts = pyfunc_conf.get("artifacts") or {}
    art = arts.get(DECISION_MODEL_ARTIFACT)
    declared = art.get("path") if isinstance(art, Mapping) else None
    found = find_saved_model(local, declared)
    if found is not None:
        # MLflow writes a models-from-code model's ``model_config`` under ``config``
        model_config = pyfunc_conf.get("config") or pyfunc_conf.get("model_config") or {}
        return found, str(model_config.get("decision_class", _DEFAULT_DECISION_CLASS)), pyfunc_conf
    raise ModelLoadError(f"{local}: the logged model has no decision_model artifact "
                         "(model.json); is it a village-credit decision model?")


def load_model(uri: str, dst_dir: str | Path | None = None, *, require_gate: bool = True,
               allow_ungated: bool = False, client: Any = None) -> LoadedModel:
    """Resolve, download, hash, verify and load the decision model behind ``uri``.

    ``require_gate`` (default): refuse a model without a valid promotion record
    (:class:`UngatedModelError`) unless ``allow_ungated``, which loads it and marks
    ``gate.loaded_ungated``. ``require_gate=False`` is for the calibrator's own
    commands (validate, recalibrate, monitor), which judge a model before promotion;
    the gate status is still reported. Without ``dst_dir`` the download goes to a
    temporary folder, removed when the loaded decision model is garbage-collected or at
    the latest when the process exits (MLflow keeps a models-from-code model alive).

    >>> from village_credit.registry import load_model
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> store.champion("demo")  # a tiny model, registered and promoted
    '1'
    >>> loaded = load_model("models:/demo@champion", store.root / "download")
    >>> loaded.version, loaded.gate.gated, loaded.artifact_sha256[:7]
    ('1', True, 'sha256:')
    >>> store.close()
    """
    if dst_dir is None and client is None and uri in _STORE_SIDE:
        fetched, dst = _STORE_SIDE.pop(uri)()  # done by the store process (``registry.store_process``)
        if fetched is not None:
            return _owned_download(dst, lambda: _load_fetched(uri, fetched, require_gate, allow_ungated,
                                                              without_mlflow=True))
    ident = resolve_uri(uri, client)
    if dst_dir is not None:
        dst = Path(dst_dir)
        dst.mkdir(parents=True, exist_ok=True)
        return _load_into(uri, ident, dst, require_gate, allow_ungated, client)
    # a download of our own: removed with the model it loaded (no vc-model-* folders pile up)
    dst = Path(tempfile.mkdtemp(prefix="vc-model-"))
    return _owned_download(dst, lambda: _load_into(uri, ident, dst, require_gate, allow_ungated, client))


def _owned_download(dst: Path, load: Callable[[], LoadedModel]) -> LoadedModel:
    """``load()``, whose download in ``dst`` is removed when it fails, else when its decision
    model is garbage-collected (at the latest when the process exits: MLflow keeps a
    models-from-code model alive)."""
    try:
        loaded = load()
    except BaseException:
        shutil.rmtree(dst, ignore_errors=True)
        raise
    weakref.finalize(loaded.decision_model, shutil.rmtree, dst, ignore_errors=True)
    return loaded


@dataclass
class FetchedModel:
    """The store's side of a load: the version behind the URI, its downloaded copy, the
    copy's digest and its promotion record, checked. Plain data, so that another process
    (``registry.store_process``) can hand it over."""

    ident: ModelIdentity
    local: Path
    digest: str
    gate: GateStatus


def fetch_model(uri: str, dst: Path, client: Any = None) -> FetchedModel:
    """Resolve ``uri``, download it into ``dst``, hash the copy and check its promotion record."""
    ident = resolve_uri(uri, client)
    local = _download(ident, dst, client)
    digest = artifact_digest(local)
    return FetchedModel(ident, local, digest, gate_status(ident, digest, client))


_STORE_SIDE: dict[str, Callable[[], tuple[FetchedModel | None, Path]]] = {}
"""Model URIs whose store side another process is doing: the call waits for its
:class:`FetchedModel` and download folder (``None``: do it here, as usual). Taken by the
first :func:`load_model` of that URI; set only by ``registry.store_process``."""


def _load_into(uri: str, ident: ModelIdentity, dst: Path, require_gate: bool, allow_ungated: bool,
               client: Any) -> LoadedModel:
    """Download into ``dst``, hash, check the promotion record and load (``load_model``'s body)."""
    local = _download(ident, dst, client)
    digest = artifact_digest(local)
    return _load_fetched(uri, FetchedModel(ident, local, digest, gate_status(ident, digest, client)),
                         require_gate, allow_ungated)


def _load_fetched(uri: str, fetched: FetchedModel, require_gate: bool, allow_ungated: bool, *,
                  without_mlflow: bool = False) -> LoadedModel:
    """Refuse an ungated copy (unless ``allow_ungated``), else load the pyfunc from it; no store access.

    ``without_mlflow`` (a model the store process fetched: ``village-credit score``'s own
    process, which never imports MLflow): a model :func:`_mlflow_free_pyfunc` accepts is
    loaded as MLflow would load it, by the same script's code, without MLflow; any other
    model through ``mlflow.pyfunc.load_model`` as always.
    """
    ident, local, digest, gate = fetched.ident, fetched.local, fetched.digest, fetched.gate
    if require_gate and not gate.gated:
        if not allow_ungated:
            raise UngatedModelError(f"refusing {ident.uri}: {gate.reason}. To use it, "
                                    f"{_promote_hint(ident)}; or pass --allow-ungated to use "
                                    "it anyway (recorded in the outputs)")
        gate.loaded_ungated = True
    conf = _read_mlmodel(local)  # read once: the decision folder and the MLflow-free load use it
    decision_dir, decision_class, pyfunc_conf = _find_decision_dir(local, conf)
    try:
        spec = json.loads((decision_dir / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {decision_dir / 'model.json'}: {exc}") from exc
    mismatches = _environment_mismatches(local, pyfunc_conf)
    if mismatches:  # MLflow's warning, from a check by name (its own scans every installed package)
        _log.warning("Detected one or more mismatches between the model's dependencies and the current "
                     "Python environment:\n - %s", "\n - ".join(mismatches))
    pyfunc = _mlflow_free_pyfunc(uri, local, conf) if without_mlflow else None
    if pyfunc is None:
        pyfunc = _LOADED.get(digest)  # the same bytes already loaded in this process, and still in use
    if pyfunc is None:
        try:
            with _libyaml_safe_load(), paused_gc():  # imports MLflow and the model's code (LightGBM -> SciPy)
                import mlflow.pyfunc  # lazy: MLflow

                pyfunc = mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
        except Exception as exc:
            raise ModelLoadError(f"cannot load model {uri!r} as a pyfunc: {exc}") from exc
        _LOADED[digest] = pyfunc
    try:
        dm = getattr(pyfunc.unwrap_python_model(), "model", None)
    except Exception:  # noqa: BLE001 - not a python_model pyfunc: fall back to the artifact
        dm = None
    if dm is None:
        dm = _import_class(decision_class).load(str(decision_dir))
    return LoadedModel(identity=ident, local_dir=local, decision_dir=decision_dir,
                       decision_class=decision_class, pyfunc=pyfunc, decision_model=dm,
                       spec=spec, artifact_sha256=digest, gate=gate)


MODEL_CODE = (_DEFAULT_DECISION_CLASS.split(":", 1)[0],)
"""What loading a model the toolkit logs imports in ``village-credit score``'s process: the
default decision class (LightGBM -> scikit-learn -> SciPy); not MLflow's pyfunc, which
that process does not load (:func:`_mlflow_free_pyfunc`); see :func:`import_model_code`."""


_DECISION_PYFUNC = Path(__file__).with_name("decision_pyfunc.py")
_CODE_MODEL_LOADER = "mlflow.pyfunc.loaders.code_model"


class _ScoringFace(DecisionFace):
    """The script's ``DecisionPyfunc`` without MLflow's base class: the same error for absent
    required columns, MLflow imported only to raise it."""

    def _missing_inputs(self, missing: list[str]) -> Exception:
        from village_credit.registry.decision_pyfunc import MissingInputsError  # lazy: MLflow only on this error

        return MissingInputsError(missing)


def _mlflow_free_pyfunc(uri: str, local: Path, conf: Mapping[str, Any] | None = None
                        ) -> DecisionPyfuncFace | None:
    """The decision pyfunc of ``local`` loaded as ``mlflow.pyfunc.load_model`` would load it,
    without importing MLflow; ``None`` (load it through MLflow) unless it is sure to be the same.

    Why: MLflow's import is ~1.2 CPU s of ``village-credit score``'s serial start-up; the
    store process, on the other core, does the store's side (docs/benchmarks.md, "CLI fixed
    cost (issue 31 item 4), seventh pass"). Taken only for a model whose pyfunc is this
    toolkit's models-from-code script byte for byte (so its class is
    ``DecisionFace`` under MLflow's base class: the same code runs), with no input
    signature (MLflow's ``predict`` enforces none), no ``data`` folder, no other predict
    function, and no ``MLFLOW_PYFUNC_INFERENCE_CONFIG`` override of its configuration.
    Then this does what MLflow's load does for it: the model's ``code`` folder first on
    ``sys.path``, the script's ``load_context`` (:meth:`DecisionFace.configure`) with the
    MLmodel's ``config`` and its artifacts' paths. The requirements check is
    :func:`_environment_mismatches`, done for both paths. ``conf``: the parsed
    ``MLmodel``, when the caller has read it already.
    """
    if os.environ.get("MLFLOW_PYFUNC_INFERENCE_CONFIG"):
        return None
    conf = _read_mlmodel(local) if conf is None else conf
    pyfunc_conf = (conf.get("flavors") or {}).get("python_function") or {}
    script = Path(str(pyfunc_conf.get("model_code_path") or "")).name
    signature = conf.get("signature") or {}
    if (pyfunc_conf.get("loader_module") != _CODE_MODEL_LOADER or script != _DECISION_PYFUNC.name
            or "data" in pyfunc_conf or pyfunc_conf.get("predict_fn", "predict") != "predict"
            or pyfunc_conf.get("streamable") or signature.get("inputs") is not None
            or not (local / script).is_file()
            or (local / script).read_bytes() != _DECISION_PYFUNC.read_bytes()):
        return None
    if pyfunc_conf.get("code"):  # as MLflow's load does
        sys.path = [os.path.join(local, pyfunc_conf["code"]), *sys.path]
    artifacts = {name: os.path.join(local, info["path"])
                 for name, info in (pyfunc_conf.get("artifacts") or {}).items()}
    try:
        with paused_gc():  # imports the model's code if not yet (LightGBM -> SciPy)
            return DecisionPyfuncFace(local, _ScoringFace(), pyfunc_conf.get("config") or {}, artifacts,
                                      conf.get("metadata"))
    except Exception as exc:
        raise ModelLoadError(f"cannot load model {uri!r} as a pyfunc: {exc}") from exc


def import_model_code() -> None:
    """Import :data:`MODEL_CODE` now, with the collector paused, as the pyfunc load would.

    Why: ``village-credit score`` imports it while the store process opens the store and
    fetches the model (``registry.store_process``): ~1 CPU s that used to come after it.
    """
    with paused_gc():
        for module in MODEL_CODE:
            try:
                importlib.import_module(module)
            except ImportError:  # the load fails where it always did, with its own message
                return


def load_decision_model(uri: str, *, allow_ungated: bool = False, client: Any = None) -> Any:
    """The verified ``DecisionModel`` behind ``uri`` (for notebooks and the Python API).

    >>> from village_credit.data.generator import GeneratorConfig, generate_households
    >>> from village_credit.registry import load_decision_model
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> store.champion("demo")  # a tiny model, registered and promoted
    '1'
    >>> model = load_decision_model("models:/demo@champion")
    >>> decisions = model.decide(generate_households(GeneratorConfig(n_households=3, seed=1)))
    >>> decisions[["household_id", "status"]]
      household_id  status
    0   HH00000001  scored
    1   HH00000002  scored
    2   HH00000003  scored
    >>> store.close()
    """
    return load_model(uri, allow_ungated=allow_ungated, client=client).decision_model
