"""Promotion and rollback of registered model versions through aliases.

Aliases, not the deprecated stages: ``@champion`` is what the credit center loads,
``@previous`` the champion before it (what ``rollback`` restores), ``@challenger`` a
candidate that failed its gates or was demoted.

Order of writes in :func:`promote`, chosen so that any crash leaves ``@champion`` on
a fully gated version:

1. evaluate the gates (pure; never raises on bad evidence);
2. write the evidence record (JSON artifact on the version's run), the gate table
   (``gates/v<N>/gates.md`` + ``gates.json`` on the same run), the model-version tags
   (verdict, failed gates, fingerprint, code version, time, override reason) and the
   version's description (what it is, its gate verdict);
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
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from village_credit.errors import VillageCreditError
from village_credit.registry.gates import DEFAULT_THRESHOLDS, GateReport, evaluate_gates
from village_credit.registry.loading import (
    TAG_DECISION,
    TAG_DIGEST,
    TAG_RECORD,
    TAG_RECORD_RUN,
    version_digest,
)
from village_credit.registry.pyfunc_model import input_columns_of
from village_credit.registry.store import DEFAULT_EXPERIMENT, DEFAULT_MODEL_NAME, get_client
from village_credit.registry.tracking import code_version
from village_credit.registry.verdict import (
    GATE_NAME as VERDICT_GATE,
)
from village_credit.registry.verdict import (
    GATE_RULE,
    GATE_VALUES,
    TAG_LAST_VERDICT,
    TAG_OVERRIDE_BY,
    TAG_OVERRIDE_UNTIL,
    TAG_SAMPLE_FP,
    TAG_TRAINING_FP,
    Override,
    find_validation_record,
    overridable,
    training_fingerprint,
    verdict_gate,
)

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"

EVIDENCE_ARTIFACT = "evidence/evidence.json"
#: Registered-model tags: the thresholds every version of the model is judged by.
TAG_THRESHOLDS = "gates.thresholds"
TAG_THRESHOLDS_REASON = "gates.thresholds_reason"
TAG_GATES_PASSED = "gates.passed"
TAG_OVERRIDE_REASON = "override_reason"
TAG_BY_OVERRIDE = "promoted_by_override"
TAG_GATE_TABLE = "gates.table"
GATES_DIR = "gates"


class RegistryError(VillageCreditError):
    """A registry operation could not be done (unknown model/version, no @previous, ...).

    >>> from village_credit.registry import RegistryError, rollback
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> try:
    ...     rollback("demo")
    ... except RegistryError as exc:
    ...     print(exc)
    model 'demo' has no @previous version to roll back to
    >>> store.close()
    """


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
    thresholds: dict[str, Any] = field(default_factory=dict)
    thresholds_source: str = ""
    evidence_source: str = ""
    artifact_digest: str | None = None
    override: Override | None = None
    validation: dict[str, Any] | None = None
    refused: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "version": self.version,
            "promoted": self.promoted,
            "refused": self.refused,
            "by_override": self.by_override,
            "override_reason": self.override_reason,
            "override": None if self.override is None else asdict(self.override),
            "validation": self.validation,
            "previous_champion": self.previous_champion,
            "record_artifact": self.record_artifact,
            "artifact_digest": self.artifact_digest,
            "thresholds": self.thresholds,
            "thresholds_source": self.thresholds_source,
            "evidence_source": self.evidence_source,
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
    return get_client()


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
    """Version number behind ``@champion``, or ``None`` when there is no champion.

    >>> from village_credit.registry import champion_version, promote
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> version = store.register("demo")
    >>> print(champion_version("demo"))
    None
    >>> _ = promote("demo", version, {}, override_reason="example",
    ...             override_by="A. Validator", override_until="2099-12-31")
    >>> champion_version("demo")
    '1'
    >>> store.close()
    """
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

    >>> from village_credit.registry import log_evidence, promote
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> version = store.register("demo")
    >>> run_id = store.client.get_model_version("demo", version).run_id  # its training run
    >>> log_evidence({"discrimination": {"auc": 0.8, "ks": 0.45}}, run_id)
    >>> result = promote("demo", version, None, override_reason="example",
    ...             override_by="A. Validator", override_until="2099-12-31")
    >>> result.evidence_source
    '...evidence/evidence.json...'
    >>> store.close()
    """
    _client(client).log_text(run_id, json.dumps(dict(evidence), indent=2, default=str,
                                                ensure_ascii=False), EVIDENCE_ARTIFACT)


VALIDATION_EVIDENCE_ARTIFACT = "validation/evidence.json"


def validation_runs(model_name: str, version: str | int, *,
                    client: MlflowClient | None = None) -> list[Any]:
    """Validation runs of one version (``validate`` tags them), newest first.

    Each validation is its own run, so a second validation never overwrites the first.
    """
    c = _client(client)
    try:
        exp_ids = [e.experiment_id for e in c.search_experiments()]
        if not exp_ids:
            return []
        return list(c.search_runs(
            exp_ids, filter_string=(f"tags.validated_model_name = '{model_name}' and "
                                    f"tags.validated_model_version = '{version}'"),
            order_by=["attributes.start_time DESC"], max_results=100))
    except MlflowException:
        return []


def find_evidence(model_name: str, version: str | int, *, client: MlflowClient | None = None,
                  artifact_digest: str | None = None) -> tuple[dict[str, Any], str]:
    """``(evidence, where it came from)`` for a version, without files passed by hand.

    Newest first: the latest third-party validation run of this version whose model
    digest matches ``artifact_digest`` (when given), else the evidence the training
    pipeline logged on the version's run; ``({}, reason)`` when there is none (every
    gate then fails with "missing", which is the point).
    """
    c = _client(client)
    for run in validation_runs(model_name, version, client=c):
        sha = run.data.tags.get("model_artifact_sha256")
        if artifact_digest and sha and sha != artifact_digest:
            continue
        try:
            data = _download_json(c, run.info.run_id, VALIDATION_EVIDENCE_ARTIFACT)
        except (MlflowException, OSError, ValueError):
            continue
        if isinstance(data, dict) and data:
            return _with_training_support(c, model_name, str(version), data), (
                f"validation run {run.info.run_id} ({VALIDATION_EVIDENCE_ARTIFACT})")
    mv = _get_version(c, model_name, str(version))
    if mv.run_id:
        try:
            data = _download_json(c, mv.run_id, EVIDENCE_ARTIFACT)
        except (MlflowException, OSError, ValueError):
            data = None
        if isinstance(data, dict) and data:
            return data, f"training run {mv.run_id} ({EVIDENCE_ARTIFACT})"
    return {}, (f"none: no validation run of {model_name} v{version} and no "
                f"{EVIDENCE_ARTIFACT} on its run; run `village-credit validate --model "
                f"models:/{model_name}/{version} --input <labelled sample>`")


def _with_training_support(c: MlflowClient, model_name: str, version: str, evidence: dict[str, Any],
                           depth: int = 5) -> dict[str, Any]:
    """Add ``fairness.outcome_support`` from the training evidence when a validation lacks it.

    Which groups had observed outcomes is a fact of the *training* data, which a third
    party validating on its own sample cannot see: it is taken from the evidence logged
    on the version's run, or (a recalibrated version) its ``parent_version``'s, marked
    with where it came from. Nothing found: the evidence stays as it is (the
    ``outcome_support`` gate then says "missing").
    """
    fair = evidence.get("fairness")
    if not isinstance(fair, dict) or "outcome_support" in fair:
        return evidence
    v = version
    for _ in range(depth):
        try:
            mv = _get_version(c, model_name, v)
        except (MlflowException, VillageCreditError):
            break
        try:
            data = _download_json(c, mv.run_id, EVIDENCE_ARTIFACT) if mv.run_id else None
        except (MlflowException, OSError, ValueError):
            data = None  # a recalibration run logs no training evidence: its parent has it
        sup = ((data or {}).get("fairness") or {}).get("outcome_support") if isinstance(data, dict) else None
        if isinstance(sup, dict):
            return {**evidence, "fairness": {**fair, "outcome_support": {
                **sup, "source": f"training evidence of {model_name} v{v} (the validator has no training data)"}}}
        parent = (mv.tags or {}).get("parent_version")
        if not parent or parent == v:
            break
        v = str(parent)
    return evidence


def load_evidence(model_name: str, version: str | int, *,
                  client: MlflowClient | None = None) -> dict[str, Any]:
    """Evidence for a version (see :func:`find_evidence`); ``{}`` when absent."""
    return find_evidence(model_name, version, client=client)[0]


def model_thresholds(model_name: str, *, client: MlflowClient | None = None
                     ) -> tuple[dict[str, Any], str]:
    """``(thresholds, source)`` recorded for the registered model, else the backstop.

    The backstop is the toolkit's :data:`DEFAULT_THRESHOLDS`, used only when nothing
    was recorded for the model, and said so in ``source``.
    """
    c = _client(client)
    try:
        tags = dict(c.get_registered_model(model_name).tags or {})
    except MlflowException as exc:
        raise RegistryError(f"registered model {model_name!r} not found: {exc}") from exc
    raw = tags.get(TAG_THRESHOLDS)
    if raw:
        try:
            th = json.loads(raw)
        except ValueError as exc:
            raise RegistryError(f"registered model {model_name!r}: tag {TAG_THRESHOLDS} "
                                f"is not JSON: {exc}") from exc
        reason = tags.get(TAG_THRESHOLDS_REASON, "")
        return {**DEFAULT_THRESHOLDS, **th}, (
            f"recorded for registered model {model_name!r}" + (f" ({reason})" if reason else ""))
    return dict(DEFAULT_THRESHOLDS), (
        f"toolkit defaults (backstop): no thresholds recorded for registered model "
        f"{model_name!r}; record them with `village-credit promote --thresholds FILE`")


def record_thresholds(model_name: str, thresholds: Mapping[str, Any], reason: str, *,
                      client: MlflowClient | None = None) -> dict[str, Any]:
    """Record the thresholds every later version of ``model_name`` is judged by."""
    c = _client(client)
    full = {**DEFAULT_THRESHOLDS, **dict(thresholds)}
    # the public call checks that the name is no prompt (a read of the whole registered
    # model); the second tag, a moment later on the same model, goes straight to the
    # registry client (see set_version_tags)
    c.set_registered_model_tag(model_name, TAG_THRESHOLDS, json.dumps(full, sort_keys=True,
                                                                      default=str))
    registry = getattr(c, "_get_registry_client", None)
    (registry().set_registered_model_tag if registry is not None
     else c.set_registered_model_tag)(model_name, TAG_THRESHOLDS_REASON, reason)
    return full


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
    """The evidence a version was promoted with (its promotion record), or ``None``.

    >>> from village_credit.registry import promote, recorded_evidence
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> version = store.register("demo")
    >>> print(recorded_evidence("demo", version))  # never promoted: no record
    None
    >>> _ = promote("demo", version, {"discrimination": {"auc": 0.8, "ks": 0.45}},
    ...             override_reason="example",
    ...             override_by="A. Validator", override_until="2099-12-31")
    >>> recorded_evidence("demo", version)["discrimination"]
    {'auc': 0.8, 'ks': 0.45}
    >>> store.close()
    """
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


def _num(x: Any) -> str:
    """Fixed decimals for the gate table (``0.780``, ``0.0008``), never scientific notation."""
    if x is None:
        return "missing"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if x != x:  # NaN
        return "missing"
    return f"{x:,.0f}" if abs(x) >= 1000 else (f"{x:.4f}" if abs(x) < 0.01 else f"{x:.3f}")


def gate_table_markdown(report: GateReport, title: str = "Promotion gates") -> str:
    """The gates as one Markdown table (what a reviewer reads on the version's run)."""
    verdict = "PASSED" if report.passed else f"FAILED ({', '.join(g.name for g in report.failed)})"
    lines = [f"# {title}: {verdict}", "",
             f"Champion at evaluation: {report.champion_version or 'none'}", "",
             "| gate | value | rule | result | detail |", "| --- | ---: | --- | --- | --- |"]
    for g in report.gates:
        rule = f"{g.comparator} {_num(g.threshold)}" if g.threshold is not None else g.comparator
        value = _num(g.value)
        if g.name == VERDICT_GATE:  # a verdict, not a number: say it in words
            rule, value = GATE_RULE, GATE_VALUES.get(g.value, "no record") if g.value is not None else "no record"
        detail = (g.detail or "").replace("|", "/").replace("\n", " ")
        lines.append(f"| {g.name} | {value} | {rule} | {'pass' if g.passed else '**FAIL**'} | {detail} |")
    return "\n".join(lines) + "\n"


def log_gate_results(client: MlflowClient, run_id: str, report: GateReport, version: str) -> str:
    """Log the gate results as ``gates/v<version>/gates.md`` (table) and ``gates.json``.

    One readable artifact instead of a tag per gate value, threshold and result;
    returns the Markdown file's artifact path (recorded in the ``gates.table`` tag).
    """
    base = f"{GATES_DIR}/v{version}"
    client.log_text(run_id, gate_table_markdown(report, f"Promotion gates, version {version}"),
                    f"{base}/gates.md")
    client.log_text(run_id, report.to_json(), f"{base}/gates.json")
    return f"{base}/gates.md"


def describe_version(client: MlflowClient, model_name: str, version: str, report: GateReport,
                     override: Override | None, *, run_id: str | None, fingerprint: str,
                     gate_table: str, promoted: bool = False, validation: Mapping[str, Any] | None = None,
                     artifact_digest: str | None = None, sample_fingerprint: str | None = None) -> str:
    """Write the version's description: what it is, the validator's verdict, its gate
    verdict and any override (shown on its UI page)."""
    if report.passed:
        verdict = "all promotion gates passed"
    else:
        verdict = f"promotion gates FAILED: {', '.join(g.name for g in report.failed)}"
    verdict += ("; promoted to @champion" if promoted else "; not promoted")
    if override is not None:
        verdict += f" ({override.text()})"
    val = dict(validation or {})
    val_line = (f"Validator's verdict: {str(val.get('verdict')).upper()} by {val.get('validator') or 'unknown'} "
                f"(validation run {val.get('run_id')})" if val else "Validator's verdict: no validation record")
    text = (f"{model_name} version {version}: credit decision model (PD, points, grade, credit line "
            f"and reason codes per row).\n\n"
            f"{val_line}.\nGate verdict: {verdict}.\n\n"
            f"Training run: {run_id or 'none'}; model artifacts sha256: {artifact_digest or 'unknown'}; "
            f"training data fingerprint: {fingerprint}; validation sample fingerprint: "
            f"{sample_fingerprint or 'none'}.\n"
            f"Gate table: artifact {gate_table} of the run.")
    client.update_model_version(model_name, version, description=text)
    return text


def promote(
    model_name: str,
    version: str | int,
    evidence: Mapping[str, Any] | None,
    thresholds: Mapping[str, Any] | None = None,
    *,
    override_reason: str | None = None,
    override_by: str | None = None,
    override_until: str | None = None,
    client: MlflowClient | None = None,
    champion_evidence: Mapping[str, Any] | None = None,
    set_challenger: bool = True,
    thresholds_reason: str | None = None,
    evidence_source: str | None = None,
) -> PromotionResult:
    """Gate ``version`` and, only if every gate passes, make it ``@champion``.

    The first gate is the validator's verdict (:mod:`village_credit.registry.verdict`):
    the newest validation record of this version's artifacts. ``pass`` lets the other
    gates decide; ``conditional`` needs an override; ``fail`` is never promoted.

    An override is who (``override_by``), why (``override_reason``) and until when
    (``override_until``, YYYY-MM-DD), all three or none; it promotes past failed gates
    except a FAIL verdict, and is recorded on the version (tags, description, gate
    table, promotion record) with ``promoted_by_override=true``. The schema gate uses
    ``champion_evidence`` if given, else the champion's own promotion record.
    A failing version gets ``@challenger`` (when ``set_challenger``), never ``@champion``.

    ``evidence=None``: found with the version (:func:`find_evidence`). ``thresholds``
    given: recorded for the registered model (with ``thresholds_reason``) and used for
    this and every later version; ``None``: the model's recorded thresholds, or the
    toolkit backstop (:func:`model_thresholds`). The promotion record binds gate
    results, thresholds, evidence and the digest of the version's artifacts, which
    the loader (:mod:`village_credit.registry.loading`) checks before any decision.

    >>> from village_credit.registry import champion_version, promote
    >>> from village_credit.registry.examples import ExampleStore, passing_evidence
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> version = store.register("demo")  # a tiny model, logged but not yet gated
    >>> result = promote("demo", version, {})  # no evidence: the gates fail
    >>> result.promoted, champion_version("demo")
    (False, None)
    >>> evidence = passing_evidence()  # figures within every gate, see evaluate_gates
    >>> result = promote("demo", version, evidence)  # but nobody has validated it
    >>> result.promoted, [g.name for g in result.report.failed]
    (False, ['validation_verdict'])
    >>> store.validate("demo", version, "pass")  # a validator's record of its own
    >>> result = promote("demo", version, evidence)  # the schema comes from the model itself
    >>> result.promoted, result.report.passed, champion_version("demo")
    (True, True, '1')
    >>> store.close()
    """
    c = _client(client)
    version = str(version)
    mv = _get_version(c, model_name, version)
    override = Override.build(override_by, override_reason, override_until)
    reason = None if override is None else override.reason

    champ_mv = _version_by_alias(c, model_name, CHAMPION)
    champ_v = None if champ_mv is None else str(champ_mv.version)
    if champ_v == version:
        raise RegistryError(f"model {model_name!r} version {version} is already @champion")

    digest = version_digest(model_name, version, client=c)
    if evidence is None:
        evidence, ev_source = find_evidence(model_name, version, client=c, artifact_digest=digest)
    else:
        ev_source = evidence_source or "given by the caller"
    thresholds, th_source = _thresholds_for(c, model_name, thresholds, thresholds_reason)
    ev = _with_schema(c, model_name, version, evidence or {})
    champ_ev: dict[str, Any] | None = None
    if champ_v is not None:
        champ_ev = _with_schema(c, model_name, champ_v, champion_evidence if champion_evidence is not None
                                else recorded_evidence(model_name, champ_v, client=c) or {})

    training_fp = training_fingerprint(c, mv.run_id)
    record_v = find_validation_record(c, model_name, version, artifact_digest=digest)
    vgate = verdict_gate(record_v, override, model_name=model_name, version=version,
                         training_fingerprint=training_fp)
    report = evaluate_gates(ev, thresholds, champ_ev, champion_version=champ_v)
    report.gates.insert(0, vgate)
    report.champion_version = champ_v
    refused = ""
    if not vgate.passed and not overridable(vgate):
        refused = f"the validator's verdict refuses promotion: {vgate.detail}"
    will_promote = not refused and (report.passed or override is not None)
    # promoted on the strength of the override: past a failed gate or a conditional verdict
    by_override = will_promote and override is not None and (not report.passed or vgate.value == 1.0)
    validation = None if record_v is None else record_v.to_dict()

    now = datetime.now(UTC)
    record_path = f"promotion/v{version}/{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"
    record = {
        "model_name": model_name,
        "version": version,
        "time": now.isoformat(),
        "code_version": code_version(),
        "champion_version_at_evaluation": champ_v,
        "thresholds": dict(thresholds or {}),
        "thresholds_source": th_source,
        "evidence": ev,
        "evidence_source": ev_source,
        "artifact_digest": digest,
        "champion_evidence": champ_ev,
        "report": report.to_dict(),
        "override_reason": reason,
        "override": None if override is None else asdict(override),
        "validation": validation,
        "training_data_fingerprint": training_fp,
        "decision": "promote" if will_promote else "reject",
        "by_override": by_override,
        "refused": refused,
    }
    run_id = _record_run(c, mv, model_name)
    c.log_text(run_id, json.dumps(record, indent=2, default=str, ensure_ascii=False),
               record_path)
    tags = _tag_version(c, mv, report, record, record_path, run_id, override, will_promote)

    result = PromotionResult(model_name, version, False, report,
                             by_override=by_override,
                             override_reason=reason, previous_champion=champ_v,
                             record_artifact=f"runs:/{run_id}/{record_path}", tags=tags,
                             thresholds=dict(thresholds), thresholds_source=th_source,
                             evidence_source=ev_source, artifact_digest=digest,
                             override=override, validation=validation, refused=refused)
    if not will_promote:
        if set_challenger:
            c.set_registered_model_alias(model_name, CHALLENGER, version)
        return result
    _make_champion(c, model_name, version, champ_v)
    result.promoted = True
    return result


def _thresholds_for(c: MlflowClient, model_name: str, thresholds: Mapping[str, Any] | None,
                    thresholds_reason: str | None) -> tuple[dict[str, Any], str]:
    """Thresholds given (then recorded for the registered model) or the model's recorded
    ones; ``(thresholds, where they come from)``."""
    if thresholds is None:
        return model_thresholds(model_name, client=c)
    th_full = record_thresholds(model_name, thresholds,
                                thresholds_reason or "thresholds passed to promote()", client=c)
    return th_full, (f"given, now recorded for registered model {model_name!r}"
                     + (f" ({thresholds_reason})" if thresholds_reason else ""))


def _with_schema(c: MlflowClient, model_name: str, version: str, evidence: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """A copy of ``evidence`` with the version's signature schema when it carries none."""
    ev = dict(evidence)
    if "schema" not in ev:
        schema = _signature_schema(c, model_name, version)
        if schema is not None:
            ev["schema"] = schema
    return ev


def _tag_version(c: MlflowClient, mv: ModelVersion, report: GateReport, record: Mapping[str, Any],
                 record_path: str, run_id: str, override: Override | None,
                 will_promote: bool) -> dict[str, str]:
    """Set the gate results, the record's location and the decision as version tags; returns them."""
    model_name, version, ev = record["model_name"], record["version"], record["evidence"]
    tags: dict[str, str] = {TAG_GATE_TABLE: log_gate_results(c, run_id, report, version)}
    tags[TAG_GATES_PASSED] = str(report.passed).lower()
    tags["gates.failed"] = ",".join(g.name for g in report.failed)
    # one fingerprint per data set, labelled, the same as on the run and in the reports
    tags["data_fingerprint"] = str(record.get("training_data_fingerprint") or ev.get("data_fingerprint")
                                   or "unknown")
    tags[TAG_TRAINING_FP] = tags["data_fingerprint"]
    val = record.get("validation") or {}
    if val:
        tags[TAG_SAMPLE_FP] = str(val.get("sample_fingerprint") or "unknown")
        tags[TAG_LAST_VERDICT] = str(val.get("verdict"))
    tags["code_version"] = record["code_version"]
    tags["promotion.time"] = record["time"]
    tags["promotion.champion_at_evaluation"] = record["champion_version_at_evaluation"] or "none"
    tags[TAG_RECORD] = record_path
    tags[TAG_RECORD_RUN] = run_id
    tags[TAG_DIGEST] = record["artifact_digest"]
    tags[TAG_DECISION] = record["decision"]
    if override is not None:
        tags[TAG_OVERRIDE_REASON] = override.reason
        tags[TAG_OVERRIDE_BY] = override.by
        tags[TAG_OVERRIDE_UNTIL] = override.until
        tags[TAG_BY_OVERRIDE] = str(bool(record["by_override"])).lower()
    # each tag is a store transaction; an equal one changes nothing
    set_version_tags(c, model_name, version, {k: v for k, v in tags.items() if (mv.tags or {}).get(k) != v})
    describe_version(c, model_name, version, report, override, run_id=mv.run_id,
                     fingerprint=tags["data_fingerprint"], gate_table=tags[TAG_GATE_TABLE],
                     promoted=will_promote, validation=val, artifact_digest=record["artifact_digest"],
                     sample_fingerprint=tags.get(TAG_SAMPLE_FP))
    return tags


def set_version_tags(c: MlflowClient, model_name: str, version: str, tags: Mapping[str, str]) -> None:
    """Set ``tags`` on a model version that :func:`_get_version` has just read.

    MLflow has no batch call for model-version tags (nor a way to add them to an existing
    version in one transaction: ``create_model_version(tags=...)`` is for a new version).
    ``MlflowClient.set_model_version_tag`` first reads the whole registered model to refuse
    a prompt of that name, then writes the tag: two store sessions per tag, the read
    growing with the model's versions (12 tags: ~0.15 s CPU of ``train``'s promotion on
    German credit). The version was read through ``MlflowClient.get_model_version``, which
    refuses a prompt by the same tag, so here each tag goes straight to MLflow's registry
    client (the store's own ``set_model_version_tag``, the call the public method ends in);
    a client without one gets the public method.
    """
    registry = getattr(c, "_get_registry_client", None)
    write = registry().set_model_version_tag if registry is not None else c.set_model_version_tag
    for k, v in tags.items():
        write(model_name, version, k, v)


def _make_champion(c: MlflowClient, model_name: str, version: str, champ_v: str | None) -> None:
    """The old champion becomes @previous, ``version`` @champion (the one atomic switch)."""
    if champ_v is not None:
        c.set_registered_model_alias(model_name, PREVIOUS, champ_v)
    c.set_registered_model_alias(model_name, CHAMPION, version)  # the one atomic switch
    # Housekeeping after the switch: failures here cannot un-gate the champion.
    challenger = _version_by_alias(c, model_name, CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        c.delete_registered_model_alias(model_name, CHALLENGER)


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

    >>> from village_credit.registry import champion_version, promote, rollback
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> for _ in range(2):
    ...     _ = promote("demo", store.register("demo"), {}, override_reason="example",
    ...             override_by="A. Validator", override_until="2099-12-31")
    >>> champion_version("demo")
    '2'
    >>> rollback("demo", reason="example")
    RollbackResult(model_name='demo', champion='1', demoted='2')
    >>> champion_version("demo")
    '1'
    >>> store.close()
    """
    c = _client(client)
    prev = _version_by_alias(c, model_name, PREVIOUS)
    if prev is None:
        raise RegistryError(f"model {model_name!r} has no @previous version to roll back to")
    cur = _version_by_alias(c, model_name, CHAMPION)
    prev_v = str(prev.version)
    cur_v = None if cur is None else str(cur.version)
    c.set_registered_model_alias(model_name, CHAMPION, prev_v)
    now = datetime.now(UTC).isoformat()
    c.set_model_version_tag(model_name, prev_v, "rollback.restored_at", now)
    if cur_v is not None and cur_v != prev_v:
        c.set_registered_model_alias(model_name, CHALLENGER, cur_v)
        c.set_model_version_tag(model_name, cur_v, "rollback.demoted_at", now)
        if reason:
            c.set_model_version_tag(model_name, cur_v, "rollback.reason", reason)
    c.delete_registered_model_alias(model_name, PREVIOUS)
    return RollbackResult(model_name, prev_v, cur_v if cur_v != prev_v else None)


def _gate_state(tags: Mapping[str, str], aliases: list[str]) -> str:
    """One phrase: where the version stands at the gates (what ``models`` shows)."""
    if TAG_GATES_PASSED not in tags:
        return "not evaluated"
    if tags.get(TAG_DECISION) == "promote":
        how = ("promoted by override" if tags.get(TAG_BY_OVERRIDE) == "true" else "promoted")
        return how + ("" if CHAMPION in aliases else " (no longer champion)")
    return "refused"


def list_versions(model_name: str = DEFAULT_MODEL_NAME, *,
                  client: MlflowClient | None = None) -> list[dict[str, Any]]:
    """Every version with its aliases and recorded gate outcome, newest first.

    >>> from village_credit.registry import list_versions, promote
    >>> from village_credit.registry.examples import ExampleStore
    >>> store = ExampleStore()  # a throwaway sqlite store in a temporary folder
    >>> first, second = store.register("demo"), store.register("demo")
    >>> _ = promote("demo", first, {}, override_reason="example",
    ...             override_by="A. Validator", override_until="2099-12-31")
    >>> [(v["version"], v["aliases"], v["gates_passed"]) for v in list_versions("demo")]
    [('2', [], 'not evaluated'), ('1', ['champion'], 'false')]
    >>> store.close()
    """
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
            "verdict": tags.get(TAG_LAST_VERDICT, "not validated"),
            "gate_state": _gate_state(tags, by_version.get(str(mv.version), [])),
            "override_reason": tags.get(TAG_OVERRIDE_REASON, ""),
            "override_by": tags.get(TAG_OVERRIDE_BY, ""),
            "override_until": tags.get(TAG_OVERRIDE_UNTIL, ""),
            "data_fingerprint": tags.get("data_fingerprint", ""),
            "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC)
            .isoformat(timespec="seconds") if mv.creation_timestamp else "",
            "run_id": mv.run_id or "",
        })
    return rows
