"""Promotion and rollback of registered model versions through aliases.

Aliases, not the deprecated stages: ``@champion`` is what the credit center loads,
``@previous`` the champion before it (what ``rollback`` restores), ``@challenger`` a
candidate that failed its gates or was demoted.

Order of writes in :func:`promote`, chosen so that any crash leaves ``@champion`` on
a fully gated version:

1. evaluate the gates (pure; never raises on bad evidence);
2. write the evidence record (JSON artifact on the version's run) and the
   model-version tags (each gate's value / threshold / pass; fingerprint; code
   version; time; override reason);
3. only if all gates passed (or an explicit override reason was given): point
   ``@previous`` at the old champion, then move ``@champion`` to the new version in
   **one** call. Readers of ``@champion`` see the old or the new version, never
   none and never an ungated one. A crash before step 3 changes no alias; a crash
   between ``@previous`` and ``@champion`` leaves ``@previous == @champion``.

Concurrent promotions of one model are not serialised (MLflow has no transactions
across calls): run one promotion at a time per registered model.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from village_credit.errors import VillageCreditError
from village_credit.registry.gates import GateReport, evaluate_gates
from village_credit.registry.pyfunc_model import input_columns_of
from village_credit.registry.store import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME
from village_credit.registry.tracking import code_version

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"

EVIDENCE_ARTIFACT = "evidence/evidence.json"
TAG_RECORD = "promotion.record"
TAG_RECORD_RUN = "promotion.record_run_id"
TAG_GATES_PASSED = "gates.passed"
TAG_OVERRIDE_REASON = "override_reason"
TAG_BY_OVERRIDE = "promoted_by_override"


class RegistryError(VillageCreditError):
    """A registry operation could not be done (unknown model/version, no @previous, ...)."""


@dataclass
class PromotionResult:
    """What ``promote`` did: the gate report, whether aliases moved, and why."""

    model_name: str
    version: str
    promoted: bool
    report: GateReport
    by_override: bool = False
    override_reason: str | None = None
    previous_champion: str | None = None
    record_artifact: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "promoted": self.promoted,
            "by_override": self.by_override,
            "override_reason": self.override_reason,
            "previous_champion": self.previous_champion,
            "record_artifact": self.record_artifact,
            "gates": self.report.to_dict(),
        }


@dataclass
class RollbackResult:
    model_name: str
    champion: str
    demoted: str | None


def _client(client: MlflowClient | None) -> MlflowClient:
    if client is not None:
        return client
    uri = mlflow.get_tracking_uri()
    return MlflowClient(tracking_uri=uri, registry_uri=mlflow.get_registry_uri() or uri)


def _is_not_found(exc: MlflowException) -> bool:
    return getattr(exc, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"} or (
        "not found" in str(exc).lower() or "does not exist" in str(exc).lower()
    )


def _version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if _is_not_found(exc):
            return None
        raise


def champion_version(model_name: str = DEFAULT_MODEL_NAME, *,
                     client: MlflowClient | None = None) -> str | None:
    """Version number behind ``@champion``, or ``None`` when there is no champion."""
    mv = _version_by_alias(_client(client), model_name, CHAMPION)
    return None if mv is None else str(mv.version)


def _get_version(client: MlflowClient, name: str, version: str) -> ModelVersion:
    try:
        return client.get_model_version(name, version)
    except MlflowException as exc:
        raise RegistryError(f"model {name!r} version {version!r} not found: {exc}") from exc


def _download_json(client: MlflowClient, run_id: str, path: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        local = client.download_artifacts(run_id, path, tmp)
        return json.loads(Path(local).read_text(encoding="utf-8"))


def log_evidence(evidence: Mapping[str, Any], run_id: str, *,
                 client: MlflowClient | None = None) -> None:
    """Store a version's gate evidence on its training run (``evidence/evidence.json``).

    The pipeline calls this after validation and the fairness audit, so that
    ``village-credit promote --version N`` finds the evidence without extra files.
    """
    _client(client).log_text(run_id, json.dumps(dict(evidence), indent=2, default=str,
                                                ensure_ascii=False), EVIDENCE_ARTIFACT)


def load_evidence(model_name: str, version: str | int, *,
                  client: MlflowClient | None = None) -> dict[str, Any]:
    """Evidence logged by :func:`log_evidence` on the version's run; ``{}`` when absent.

    An empty dict makes every gate fail with "missing", which is the point.
    """
    c = _client(client)
    mv = _get_version(c, model_name, str(version))
    if not mv.run_id:
        return {}
    try:
        data = _download_json(c, mv.run_id, EVIDENCE_ARTIFACT)
    except (MlflowException, OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _signature_schema(client: MlflowClient, name: str, version: str) -> list[dict] | None:
    """Named input columns and types from the version's MLmodel signature."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{name}/{version}/MLmodel", dst_path=tmp,
                tracking_uri=client.tracking_uri, registry_uri=client._registry_uri,
            )
            cols = input_columns_of(Model.load(local))  # signature, else the metadata contract
    except (MlflowException, OSError):
        return None
    return None if cols is None else [{"name": c["name"], "type": c.get("type")} for c in cols]


def recorded_evidence(model_name: str, version: str, *,
                      client: MlflowClient | None = None) -> dict[str, Any] | None:
    """The evidence a version was promoted with (its promotion record), or ``None``."""
    c = _client(client)
    mv = _get_version(c, model_name, str(version))
    path, run_id = mv.tags.get(TAG_RECORD), mv.tags.get(TAG_RECORD_RUN)
    if not path or not run_id:
        return None
    try:
        rec = _download_json(c, run_id, path)
    except (MlflowException, OSError, ValueError):
        return None
    ev = rec.get("evidence") if isinstance(rec, dict) else None
    return ev if isinstance(ev, dict) else None


def _record_run(client: MlflowClient, mv: ModelVersion, name: str) -> str:
    """The version's own run; a dedicated promotion run when the model was logged run-less."""
    if mv.run_id:
        return mv.run_id
    exp = client.get_experiment_by_name(DEFAULT_EXPERIMENT)
    exp_id = exp.experiment_id if exp is not None else "0"
    run = client.create_run(exp_id, tags={"mlflow.runName": f"promotion-{name}-v{mv.version}"})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _fmt(x: Any) -> str:
    return "" if x is None else (f"{x:.6g}" if isinstance(x, float) else str(x))


def promote(
    model_name: str,
    version: str | int,
    evidence: Mapping[str, Any] | None,
    thresholds: Mapping[str, Any] | None = None,
    *,
    override_reason: str | None = None,
    client: MlflowClient | None = None,
    champion_evidence: Mapping[str, Any] | None = None,
    set_challenger: bool = True,
) -> PromotionResult:
    """Gate ``version`` and, only if every gate passes, make it ``@champion``.

    ``override_reason`` (non-blank) promotes a failing version; the reason is
    recorded on the version with ``promoted_by_override=true``. The relative gates
    use ``champion_evidence`` if given, else the champion's own promotion record.
    A failing version gets ``@challenger`` (when ``set_challenger``), never ``@champion``.
    """
    c = _client(client)
    version = str(version)
    mv = _get_version(c, model_name, version)
    reason = (override_reason or "").strip() or None

    champ_mv = _version_by_alias(c, model_name, CHAMPION)
    champ_v = None if champ_mv is None else str(champ_mv.version)
    if champ_v == version:
        raise RegistryError(f"model {model_name!r} version {version} is already @champion")

    ev: dict[str, Any] = dict(evidence or {})
    if "schema" not in ev:
        schema = _signature_schema(c, model_name, version)
        if schema is not None:
            ev["schema"] = schema
    champ_ev: dict[str, Any] | None = None
    if champ_v is not None:
        champ_ev = dict(champion_evidence) if champion_evidence is not None else (
            recorded_evidence(model_name, champ_v, client=c) or {}
        )
        if "schema" not in champ_ev:
            schema = _signature_schema(c, model_name, champ_v)
            if schema is not None:
                champ_ev["schema"] = schema

    report = evaluate_gates(ev, thresholds, champ_ev)
    report.champion_version = champ_v
    will_promote = report.passed or reason is not None

    now = datetime.now(timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    record_path = f"promotion/v{version}/{stamp}.json"
    record = {
        "model_name": model_name,
        "version": version,
        "time": now.isoformat(),
        "code_version": code_version(),
        "champion_version_at_evaluation": champ_v,
        "thresholds": dict(thresholds or {}),
        "evidence": ev,
        "champion_evidence": champ_ev,
        "report": report.to_dict(),
        "override_reason": reason,
        "decision": "promote" if will_promote else "reject",
    }
    run_id = _record_run(c, mv, model_name)
    c.log_text(run_id, json.dumps(record, indent=2, default=str, ensure_ascii=False),
               record_path)

    tags: dict[str, str] = {}
    for g in report.gates:
        tags[f"gate.{g.name}.value"] = _fmt(g.value)
        tags[f"gate.{g.name}.threshold"] = f"{g.comparator} {_fmt(g.threshold)}"
        tags[f"gate.{g.name}.passed"] = str(g.passed).lower()
    tags[TAG_GATES_PASSED] = str(report.passed).lower()
    tags["gates.failed"] = ",".join(g.name for g in report.failed)
    tags["data_fingerprint"] = str(ev.get("data_fingerprint") or _run_tag(c, mv, "data_fingerprint")
                                   or "unknown")
    tags["code_version"] = record["code_version"]
    tags["promotion.time"] = now.isoformat()
    tags["promotion.champion_at_evaluation"] = champ_v or "none"
    tags[TAG_RECORD] = record_path
    tags[TAG_RECORD_RUN] = run_id
    if reason is not None:
        tags[TAG_OVERRIDE_REASON] = reason
        tags[TAG_BY_OVERRIDE] = str(not report.passed).lower()
    for k, v in tags.items():
        c.set_model_version_tag(model_name, version, k, v)

    result = PromotionResult(model_name, version, False, report,
                             by_override=reason is not None and not report.passed,
                             override_reason=reason, previous_champion=champ_v,
                             record_artifact=f"runs:/{run_id}/{record_path}", tags=tags)
    if not will_promote:
        if set_challenger:
            c.set_registered_model_alias(model_name, CHALLENGER, version)
        return result

    if champ_v is not None:
        c.set_registered_model_alias(model_name, PREVIOUS, champ_v)
    c.set_registered_model_alias(model_name, CHAMPION, version)  # the one atomic switch
    result.promoted = True
    # Housekeeping after the switch: failures here cannot un-gate the champion.
    challenger = _version_by_alias(c, model_name, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        c.delete_registered_model_alias(model_name, CHALLENGER)
    return result


def _run_tag(client: MlflowClient, mv: ModelVersion, key: str) -> str | None:
    if not mv.run_id:
        return None
    try:
        return client.get_run(mv.run_id).data.tags.get(key)
    except MlflowException:
        return None


def rollback(model_name: str = DEFAULT_MODEL_NAME, *, client: MlflowClient | None = None,
             reason: str | None = None) -> RollbackResult:
    """Make ``@previous`` the champion again; the demoted version becomes ``@challenger``.

    ``@previous`` is then removed, so a second rollback fails loudly instead of
    flipping back to the version just demoted.
    """
    c = _client(client)
    prev = _version_by_alias(c, model_name, PREVIOUS)
    if prev is None:
        raise RegistryError(f"model {model_name!r} has no @previous version to roll back to")
    cur = _version_by_alias(c, model_name, CHAMPION)
    prev_v = str(prev.version)
    cur_v = None if cur is None else str(cur.version)
    c.set_registered_model_alias(model_name, CHAMPION, prev_v)
    now = datetime.now(timezone.utc).isoformat()
    c.set_model_version_tag(model_name, prev_v, "rollback.restored_at", now)
    if cur_v is not None and cur_v != prev_v:
        c.set_registered_model_alias(model_name, CHALLENGER, cur_v)
        c.set_model_version_tag(model_name, cur_v, "rollback.demoted_at", now)
        if reason:
            c.set_model_version_tag(model_name, cur_v, "rollback.reason", reason)
    c.delete_registered_model_alias(model_name, PREVIOUS)
    return RollbackResult(model_name, prev_v, cur_v if cur_v != prev_v else None)


def list_versions(model_name: str = DEFAULT_MODEL_NAME, *,
                  client: MlflowClient | None = None) -> list[dict[str, Any]]:
    """Every version with its aliases and recorded gate outcome, newest first."""
    c = _client(client)
    try:
        versions = c.search_model_versions(f"name = '{model_name}'")
    except MlflowException as exc:
        raise RegistryError(f"cannot list versions of {model_name!r}: {exc}") from exc
    try:
        by_version: dict[str, list[str]] = {}
        for alias, v in (c.get_registered_model(model_name).aliases or {}).items():
            by_version.setdefault(str(v), []).append(alias)
    except MlflowException:
        by_version = {}
    rows = []
    for mv in sorted(versions, key=lambda m: int(m.version), reverse=True):
        tags = dict(mv.tags or {})
        rows.append({
            "version": str(mv.version),
            "aliases": sorted(by_version.get(str(mv.version), [])),
            "gates_passed": tags.get(TAG_GATES_PASSED, "not evaluated"),
            "failed_gates": tags.get("gates.failed", ""),
            "override_reason": tags.get(TAG_OVERRIDE_REASON, ""),
            "data_fingerprint": tags.get("data_fingerprint", ""),
            "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, timezone.utc)
            .isoformat(timespec="seconds") if mv.creation_timestamp else "",
            "run_id": mv.run_id or "",
        })
    return rows
