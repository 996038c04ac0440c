"""The validator's verdict as a promotion gate: validation records and overrides.

A version may become ``@champion`` only on a **validation record of its own**: a
validation run linked to that version (tags ``validated_model_name`` /
``validated_model_version``), of the very artifacts being promoted (its
``model_artifact_sha256`` equals the version's digest), on a sample that is not the
training data (its fingerprint differs from the training run's), signed by a
validator. The verdict of the newest such record decides:

* ``pass`` promotes (when the other gates pass);
* ``conditional`` promotes only with a recorded :class:`Override` (who, why, until);
* ``fail`` never promotes, override or not: recalibrate or retrain, then validate again;
* no record: the gate fails; only the full override carries a version past it (a
  throwaway store, a model validated outside MLflow), recorded and shown like any.

Both the validate command (:mod:`village_credit.validation.kit`) and the training
pipeline write records through :func:`record_validation`; :func:`find_validation_record`
reads them back and :func:`verdict_gate` turns one into a gate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from mlflow.exceptions import MlflowException

from village_credit.errors import VillageCreditError
from village_credit.registry.gates import Gate

VERDICTS = ("pass", "conditional", "fail")
#: run tags of a validation run (the link to the version and what it was judged on)
TAG_NAME = "validated_model_name"
TAG_VERSION = "validated_model_version"
TAG_SHA = "model_artifact_sha256"
TAG_VERDICT = "validation.verdict"
TAG_VALIDATOR = "validation.validator"
TAG_REASONS = "validation.reasons"
#: the two fingerprints, each labelled by what it is a fingerprint of
TAG_TRAINING_FP = "training_data_fingerprint"
TAG_SAMPLE_FP = "validation_sample_fingerprint"
#: model-version tags: the newest validation's verdict, run and validator
TAG_LAST_VERDICT = "validation.last_verdict"
TAG_LAST_RUN = "validation.last_run"
TAG_LAST_VALIDATOR = "validation.last_validator"
#: model-version tags of an override
TAG_OVERRIDE_BY = "override.by"
TAG_OVERRIDE_UNTIL = "override.until"
GATE_NAME = "validation_verdict"
GATE_RULE = "pass; conditional only with an override; fail never"
"""The verdict gate's rule in words (its numeric form, value <= 0, reads as nothing)."""
GATE_VALUES = {0.0: "pass", 1.0: "conditional", 2.0: "fail"}
"""The verdict gate's values in words (2 also: validated on its own training data)."""


class OverrideError(VillageCreditError, ValueError):
    """An override that cannot be recorded: who, why or until-when missing, or expired.

    >>> from village_credit.registry.verdict import Override, OverrideError
    >>> try:
    ...     Override.build(by="", reason="board decision 12", until="2030-01-01")
    ... except OverrideError as exc:
    ...     print(exc)
    an override needs who (override_by), why (override_reason) and until when (override_until, YYYY-MM-DD): who is missing
    """


@dataclass(frozen=True)
class Override:
    """Who let a version past a gate, why, and until when (an ISO date)."""

    by: str
    reason: str
    until: str

    @classmethod
    def build(cls, by: str | None, reason: str | None, until: str | date | None, *,
              today: date | None = None) -> Override | None:
        """An override from its three parts; ``None`` when none is given at all.

        >>> from datetime import date
        >>> from village_credit.registry.verdict import Override
        >>> Override.build("A. Validator", "pilot county", "2030-06-30", today=date(2026, 1, 1))
        Override(by='A. Validator', reason='pilot county', until='2030-06-30')
        >>> Override.build(None, None, None) is None
        True
        """
        parts = {"who": (by or "").strip(), "why": (reason or "").strip(),
                 "until": str(until or "").strip()}
        if not any(parts.values()):
            return None
        missing = [k for k, v in parts.items() if not v]
        if missing:
            raise OverrideError("an override needs who (override_by), why (override_reason) and "
                                "until when (override_until, YYYY-MM-DD): "
                                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing")
        try:
            end = date.fromisoformat(parts["until"])
        except ValueError as exc:
            raise OverrideError(f"override_until {parts['until']!r} is not a date (YYYY-MM-DD)") from exc
        now = today or datetime.now(UTC).date()
        if end < now:
            raise OverrideError(f"override_until {end.isoformat()} is in the past (today {now.isoformat()})")
        return cls(parts["who"], parts["why"], end.isoformat())

    def text(self) -> str:
        return f"override by {self.by} until {self.until}: {self.reason}"


@dataclass(frozen=True)
class ValidationRecord:
    """One validation run of one version: its verdict and what it was judged on."""

    run_id: str
    verdict: str
    validator: str
    reasons: list[str]
    artifact_sha256: str
    sample_fingerprint: str
    training_fingerprint: str
    purpose: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_tags(model_name: str, version: str, *, model_uri: str, artifact_sha256: str | None,
             validator: str | None, sample_fingerprint: str | None,
             training_fingerprint: str | None, purpose: str) -> dict[str, str]:
    """The tags that make a run the validation record of ``model_name`` v``version``.

    >>> from village_credit.registry.verdict import run_tags
    >>> tags = run_tags("vc", "2", model_uri="models:/vc/2", artifact_sha256="sha256:ab",
    ...                 validator="A. Validator", sample_fingerprint="vc-fp-1:s",
    ...                 training_fingerprint="vc-fp-1:t", purpose="third-party validation")
    >>> tags["validated_model_version"], tags["validation.validator"], tags["validation_sample_fingerprint"]
    ('2', 'A. Validator', 'vc-fp-1:s')
    """
    return {TAG_NAME: str(model_name), TAG_VERSION: str(version), "validated_model_uri": model_uri,
            TAG_SHA: str(artifact_sha256 or ""), TAG_VALIDATOR: str(validator or ""),
            TAG_SAMPLE_FP: str(sample_fingerprint or ""), TAG_TRAINING_FP: str(training_fingerprint or ""),
            "purpose": purpose}


def record_validation(client: Any, run_id: str, model_name: str, version: str,
                      verdict: Mapping[str, Any], *, validator: str | None = None) -> dict[str, str]:
    """Write a validation's verdict on its run and on the model version; returns the version tags.

    ``verdict`` is :func:`village_credit.validation.report.overall_verdict`'s dict. The
    run must already carry :func:`run_tags`. Refuses an unknown verdict or an empty
    validator: a record that can promote is signed.
    """
    v = str(verdict.get("verdict"))
    if v not in VERDICTS:
        raise VillageCreditError(f"verdict {v!r} is not one of {VERDICTS}")
    who = (validator or "").strip()
    if not who:
        raise VillageCreditError("a validation that can promote needs a validator identity "
                                 "(--validator NAME or registry.validator in the config)")
    reasons = [str(r) for r in verdict.get("reasons") or []]
    client.set_tag(run_id, TAG_VERDICT, v)
    client.set_tag(run_id, TAG_VALIDATOR, who)
    client.set_tag(run_id, TAG_REASONS, json.dumps(reasons, ensure_ascii=False)[:4900])
    tags = {TAG_LAST_VERDICT: v, TAG_LAST_RUN: run_id, TAG_LAST_VALIDATOR: who,
            f"validation.{run_id}.verdict": v}
    for k, val in tags.items():
        client.set_model_version_tag(model_name, str(version), k, val)
    return tags


def find_validation_record(client: Any, model_name: str, version: str | int, *,
                           artifact_digest: str | None = None) -> ValidationRecord | None:
    """The newest validation record of this version (of these artifacts), or ``None``."""
    try:
        exp_ids = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(
            exp_ids, filter_string=(f"tags.{TAG_NAME} = '{model_name}' and "
                                    f"tags.{TAG_VERSION} = '{version}'"),
            order_by=["attributes.start_time DESC"], max_results=100) if exp_ids else []
    except MlflowException:
        return None
    for run in runs:
        t = run.data.tags
        verdict = t.get(TAG_VERDICT)
        if verdict not in VERDICTS:
            continue
        sha = t.get(TAG_SHA) or ""
        if artifact_digest and sha != artifact_digest:
            continue  # a validation of other bytes is not this version's record
        try:
            reasons = list(json.loads(t.get(TAG_REASONS) or "[]"))
        except ValueError:
            reasons = []
        return ValidationRecord(run.info.run_id, verdict, t.get(TAG_VALIDATOR, ""), reasons, sha,
                                t.get(TAG_SAMPLE_FP, ""), t.get(TAG_TRAINING_FP, ""),
                                t.get("purpose", ""))
    return None


def verdict_gate(record: ValidationRecord | None, override: Override | None, *,
                 model_name: str, version: str, training_fingerprint: str | None = None) -> Gate:
    """The gate ``validation_verdict``: value 0 pass, 1 conditional, 2 fail (rule ``<= 0``).

    ``conditional`` passes with an override (recorded in the detail); ``fail``, a record
    of the training data itself and a missing record fail here (which of them an
    override may still carry past: :func:`overridable`).

    >>> from village_credit.registry.verdict import ValidationRecord, verdict_gate
    >>> rec = ValidationRecord("r1", "fail", "A. Validator", ["calibration in the large p = 0.006 < 0.01"],
    ...                        "sha256:ab", "vc-fp-1:s", "vc-fp-1:t", "third-party validation")
    >>> gate = verdict_gate(rec, None, model_name="vc", version="2")
    >>> gate.passed, gate.value
    (False, 2.0)
    >>> print(gate.detail)
    validator A. Validator (run r1): FAIL - calibration in the large p = 0.006 < 0.01; a FAIL is never overridden: recalibrate or retrain, then validate again
    """
    name = GATE_NAME
    if record is None:
        return Gate(name, None, 0.0, "<=", False,
                    f"no validation record of its own: validate it on a labelled sample the "
                    f"training never saw (`village-credit validate --model models:/{model_name}/"
                    f"{version} --input <labelled sample> --validator <name>`)")
    who = f"validator {record.validator or 'unknown'} (run {record.run_id})"
    if training_fingerprint and record.sample_fingerprint == training_fingerprint:
        return Gate(name, 2.0, 0.0, "<=", False,
                    f"{who}: validated on its own training data (fingerprint {training_fingerprint}); "
                    "a verdict needs a sample the training never saw")
    why = "; ".join(record.reasons) or "every check passed"
    if record.verdict == "pass":
        return Gate(name, 0.0, 0.0, "<=", True, f"{who}: PASS")
    if record.verdict == "conditional":
        if override is not None:
            return Gate(name, 1.0, 0.0, "<=", True, f"{who}: CONDITIONAL - {why}; {override.text()}")
        return Gate(name, 1.0, 0.0, "<=", False,
                    f"{who}: CONDITIONAL - {why}; promotes only with an override (who, why, until)")
    return Gate(name, 2.0, 0.0, "<=", False,
                f"{who}: FAIL - {why}; a FAIL is never overridden: recalibrate or retrain, "
                "then validate again")


def overridable(gate: Gate) -> bool:
    """Whether an override may carry a version past this failed verdict gate.

    Never past a FAIL or a "validation" on the training data itself (value 2). A
    conditional verdict (1) and a version with no record at all (``None``: a throwaway
    store, a model validated outside MLflow) need the full override, recorded and shown
    with the version.
    """
    return gate.value is None or gate.value == 1.0


def training_fingerprint(client: Any, run_id: str | None) -> str | None:
    """The fingerprint of the data a version was fitted on, from its run: the training
    rows (``data_fingerprint``) or, for a recalibrated version, the recalibration sample."""
    if not run_id:
        return None
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        return None
    return tags.get("data_fingerprint") or tags.get("sample_fingerprint") or None
