"""Experiment configs and feature specs: declared models, errors naming file and key, JSON Schemas.

The models in ``config.py`` and ``models/features.py`` check a file at load; the same
models give ``schemas/*.schema.json`` (committed for editors). These tests keep the
committed schemas equal to the models, check that every shipped file validates against
both the model and the schema, and that each kind of mistake is named by file and key.
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from village_credit.cli import app
from village_credit.config import ExperimentConfig, load_config
from village_credit.errors import ConfigError
from village_credit.file_formats import validate_document
from village_credit.models.features import FeatureSpecFile, load_feature_specs
from village_credit.schemas import FILE_FORMATS, write_schemas

if TYPE_CHECKING:  # imported by the tests that use it: its format checkers' grammars cost
    import jsonschema  # ~1.5-3 CPU s at collection on every worker (docs/benchmarks.md)

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
FEATURE_SPECS = [ROOT / "data" / "german_credit" / "feature_spec.yaml"]


def _yaml_file(tmp_path: Path, raw: Any, name: str = "exp.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return p


def _nested(dotted: str, value: Any) -> dict[str, Any]:
    *parents, leaf = dotted.split(".")
    out: dict[str, Any] = {leaf: value}
    for p in reversed(parents):
        out = {p: out}
    return out


# ----------------------------------------------------------------------------- committed schemas
def test_committed_schemas_equal_the_generated_ones(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert [p.name for p in written] == [f"{n}.schema.json" for n in sorted(FILE_FORMATS)]
    for p in written:
        committed = ROOT / "schemas" / p.name
        assert committed.exists(), f"{committed} missing: run `make schemas`"
        assert committed.read_text(encoding="utf-8") == p.read_text(encoding="utf-8"), (
            f"{committed} is stale: run `make schemas`")


@pytest.mark.parametrize("name", sorted(FILE_FORMATS))
def test_each_schema_is_valid_draft_2020_12_with_its_id(name: str) -> None:
    import jsonschema

    schema = FILE_FORMATS[name]()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://village-credit.org/schemas/{name}.schema.json"
    # a typo in a key is flagged in the editor too (a policy is a full file or an overlay)
    tops = [schema] if "if" not in schema else [
        schema["$defs"][schema[branch]["$ref"].rpartition("/")[2]] for branch in ("then", "else")]
    assert all(top["additionalProperties"] is False for top in tops)


class _Yaml12Validator:
    """The committed schema applied as an editor applies it: its YAML 1.2 reader keeps an
    unquoted ``2025-06-30`` as text, where PyYAML (YAML 1.1) makes a ``date``."""

    def __init__(self, name: str) -> None:
        import jsonschema

        schema = json.loads((ROOT / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8"))
        self._v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())

    def iter_errors(self, raw: Any) -> list[jsonschema.ValidationError]:
        return list(self._v.iter_errors(_dates_as_text(raw)))


def _dates_as_text(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _dates_as_text(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_dates_as_text(v) for v in raw]
    return raw.isoformat() if isinstance(raw, datetime.date) else raw


def _schema_validator(name: str) -> _Yaml12Validator:
    return _Yaml12Validator(name)


def _described(schema: dict[str, Any]) -> list[str]:
    """Dotted paths of properties without a description (an editor would show nothing).

    A section (``$ref`` to a definition) is described by its definition's description.
    """
    missing = []
    defs = schema.get("$defs", {})

    def walk(node: dict[str, Any], path: str) -> None:
        for key, prop in node.get("properties", {}).items():
            ref = defs.get(prop.get("$ref", "").rpartition("/")[2], {})
            if not (prop.get("description") or ref.get("description")):
                missing.append(f"{path}{key}")

    walk(schema, "")
    for name, sub in defs.items():
        walk(sub, f"{name}.")
    return missing


@pytest.mark.parametrize("name", sorted(FILE_FORMATS))
def test_every_key_is_described_for_the_editor(name: str) -> None:
    assert _described(FILE_FORMATS[name]()) == []


# ----------------------------------------------------------------------------- shipped files
@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_shipped_experiments_validate_against_model_and_schema(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/experiment.schema.json"
    assert (path.parent / "../schemas/experiment.schema.json").resolve().exists()
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert list(_schema_validator("experiment").iter_errors(raw)) == []
    validate_document(ExperimentConfig, raw, source=path)  # the model alone (no files needed)


@pytest.mark.parametrize("path", [p for p in EXPERIMENTS if p.name != "byod_example.yaml"], ids=lambda p: p.name)
def test_shipped_experiments_load(path: Path) -> None:
    """byod_example.yaml points at the user's own file (not shipped): the model check above covers it."""
    assert isinstance(load_config(path), ExperimentConfig)


def test_byod_example_names_its_missing_data_file() -> None:
    with pytest.raises(ConfigError, match=r"byod_example\.yaml: data\.source '.*loans\.csv': file not found"):
        load_config(ROOT / "experiments" / "byod_example.yaml")


@pytest.mark.parametrize("path", FEATURE_SPECS, ids=lambda p: p.parent.name)
def test_shipped_feature_specs_validate_against_model_and_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    rel = "../../schemas/feature_spec.schema.json"
    assert text.splitlines()[0] == f"# yaml-language-server: $schema={rel}"
    assert (path.parent / rel).resolve().exists()
    raw = yaml.safe_load(text)
    assert list(_schema_validator("feature_spec").iter_errors(raw)) == []
    spec = load_feature_specs(path)
    assert spec["target"] == "creditability"
    assert spec["features"][0] == {"name": "duration_in_month", "label_en": "Loan duration",
                                   "label_zh": "贷款期限", "unit": "months", "monotone": 1,
                                   "group": "capacity"}


def _yaml_blocks(md: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", md.read_text(encoding="utf-8"), re.DOTALL)


MODELS = {"experiment": ExperimentConfig, "feature_spec": FeatureSpecFile}
MODELINE = re.compile(r"^# yaml-language-server: \$schema=\S*/([a-z_]+)\.schema\.json$", re.MULTILINE)


def test_documented_examples_validate() -> None:
    """The YAML examples in docs/file-formats.md (each names its schema on its first line)
    and the BYOD guide's feature spec are files the loaders and the schemas accept."""
    checked = []
    for text in _yaml_blocks(ROOT / "docs" / "file-formats.md"):
        m = MODELINE.match(text)
        if m is None or m.group(1) not in MODELS:  # other sections' formats are theirs to test
            continue
        raw = yaml.safe_load(text)
        if raw is None:  # the modeline shown on its own (how to name a schema), not an example
            continue
        validate_document(MODELS[m.group(1)], raw, source=f"docs example ({m.group(1)})")
        assert _schema_validator(m.group(1)).iter_errors(raw) == []
        checked.append(m.group(1))
    for text in _yaml_blocks(ROOT / "data" / "byod_example" / "README.md"):
        raw = yaml.safe_load(text)
        validate_document(FeatureSpecFile, raw, source="data/byod_example/README.md")
        assert _schema_validator("feature_spec").iter_errors(raw) == []
        checked.append("feature_spec")
    assert sorted(set(checked)) == ["experiment", "feature_spec"] and len(checked) >= 3


# ----------------------------------------------------------------------------- experiment errors
@pytest.mark.parametrize(("key", "value", "says"), [
    ("seed", -1, "seed: Input should be greater than or equal to 0, got -1"),
    ("top_k", 2.5, "top_k: Input should be a valid integer, got a number with a fractional part, got 2.5"),
    ("output_dir", "  ", "output_dir: must not be empty, got '  '"),
    ("data.n_households", 499, "data.n_households: must be at least 500 for village-grouped splits, got 499"),
    ("data.target_default_rate", 1.0, "data.target_default_rate: Input should be less than 1, got 1.0"),
    ("data.exploration_share", 1.5, "data.exploration_share: Input should be less than or equal to 1, got 1.5"),
    ("data.exploration_share_over_age", -0.1,
     "data.exploration_share_over_age: Input should be greater than or equal to 0, got -0.1"),
    ("data.snapshot_date", "30/06/2025", "data.snapshot_date: not a date (expected YYYY-MM-DD), got '30/06/2025'"),
    ("data.second_vintage", "maybe", "data.second_vintage: Input should be a valid boolean"),
    ("split.holdout_share", 0.75, "split.holdout_share: calibration_share + holdout_share must be below 0.9"),
    ("split.reject_inference", "magic", ("split.reject_inference: Input should be 'none', 'reweighting', "
                                        "'fuzzy_augmentation' or 'parcelling', got 'magic'")),
    ("model.strategy", "boost", ("model.strategy: Input should be 'stacking', 'boost_from_rules', "
                                "'additive_points' or 'gbm_only', got 'boost'")),
    ("model.calibration", "beta", "model.calibration: Input should be 'auto', 'platt' or 'isotonic', got 'beta'"),
    ("model.gbm", {"learning_rate": 0}, "model.gbm.learning_rate: Input should be greater than 0, got 0"),
    ("model.gbm", {"num_leaves": "eight"}, "model.gbm.num_leaves: Input should be a valid integer"),
    ("model.tuning.cv_folds", 1, "model.tuning.cv_folds: Input should be greater than or equal to 2, got 1"),
    ("model.tuning.timeout_s", 0, "model.tuning.timeout_s: Input should be greater than 0, got 0"),
    ("registry.model_name", "", "registry.model_name: must not be empty, got ''"),
    ("registry.gates.auc_min", 1.2, "registry.gates.auc_min: Input should be less than or equal to 1, got 1.2"),
    ("registry.gates.schema_mode", "loose", "registry.gates.schema_mode: Input should be 'exact' or 'superset'"),
    ("fairness.lgd", 0, "fairness.lgd: Input should be greater than 0, got 0"),
    ("fairness.group_recalibration", "all", ("fairness.group_recalibration: Input should be 'none', "
                                            "'calibration' or 'observed', got 'all'")),
    ("stages.shapp", True, "stages.shapp: unknown key (allowed: shap, reports, mlflow)"),
    ("policy", "no_such_policy", "policy 'no_such_policy': no_such_policy: no such policy"),
])
def test_each_mistake_is_named_by_file_and_key(key: str, value: Any, says: str, tmp_path: Path) -> None:
    exp = _yaml_file(tmp_path, _nested(key, value))
    with pytest.raises(ConfigError) as info:
        load_config(exp)
    assert f"{exp}: {says}" in str(info.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    exp = _yaml_file(tmp_path, {"seed": -1, "data": {"n_townships": 0}, "fairness": {"n_boot": -5}})
    with pytest.raises(ConfigError) as info:
        load_config(exp)
    lines = str(info.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == ["seed", "data.n_townships", "fairness.n_boot"]
    assert all(line.startswith(f"{exp}: ") for line in lines)


def test_lossless_conversions_and_empty_sections(tmp_path: Path) -> None:
    """2000.0 -> 2000, '1e-3' (YAML text) -> 0.001, an unquoted date, ``data:`` left empty -> defaults."""
    exp = tmp_path / "exp.yaml"
    exp.write_text("data:\nsplit:\n  holdout_share: 1e-1\nmodel:\n  gbm: {n_estimators: 50.0, subsample: 0.8}\n"
                   "eval_date: 2025-06-30\n", encoding="utf-8")
    cfg = load_config(exp, {"data.n_households": 2000.0})
    assert cfg.data.n_households == 2000 and isinstance(cfg.data.n_households, int)
    assert cfg.split.holdout_share == pytest.approx(0.1)
    assert cfg.model.gbm == {"n_estimators": 50, "subsample": 0.8}  # other LightGBM keys pass through
    assert cfg.eval_date == "2025-06-30"
    assert cfg.data.n_townships == 8  # the empty section kept its defaults


def test_feature_spec_errors_surface_at_config_load(tmp_path: Path) -> None:
    (tmp_path / "loans.csv").write_text("a,target\n1,0\n", encoding="utf-8")
    (tmp_path / "spec.yaml").write_text("features:\n  - {name: a, group: wealth}\n", encoding="utf-8")
    exp = _yaml_file(tmp_path, {"data": {"source": "loans.csv", "feature_spec": "spec.yaml"}})
    with pytest.raises(ConfigError) as info:
        load_config(exp)
    said = str(info.value)
    assert said.startswith(f"{exp}: data.feature_spec: {tmp_path / 'spec.yaml'}: features[0].group: ")
    assert "'behaviour', 'capacity', 'profile', 'protected' or 'rules', got 'wealth'" in said


@settings(max_examples=30, deadline=None)
@given(cal=st.floats(0.01, 0.89), hold=st.floats(0.01, 0.89))
def test_split_shares_leave_training_rows(cal: float, hold: float) -> None:
    """Accepted exactly when the two shares leave more than 10 % for training."""
    try:
        cfg = load_config(None, {"split.calibration_share": cal, "split.holdout_share": hold})
    except ConfigError as exc:
        assert cal + hold >= 0.9 and "split.holdout_share" in str(exc)
    else:
        assert cfg.split.calibration_share + cfg.split.holdout_share < 0.9


def test_config_round_trips_through_yaml(tmp_path: Path) -> None:
    """What a run logs (``to_dict``) is itself a valid experiment file giving the same config."""
    cfg = load_config(None, {"seed": 7, "model.gbm": {"n_estimators": 20}, "eval_date": "2025-01-31"})
    again = load_config(_yaml_file(tmp_path, cfg.to_dict()))
    assert again == cfg
    assert list(_schema_validator("experiment").iter_errors(cfg.to_dict())) == []


# ----------------------------------------------------------------------------- feature spec errors
@pytest.mark.parametrize(("text", "says"), [
    ("features:\n  - {label_en: Age}\n", "features[0].name: Field required"),
    ("features:\n  - {name: age, monotone: 2}\n", "features[0].monotone: Input should be -1, 0 or 1, got 2"),
    ("features:\n  - {name: age, kind: text}\n", "features[0].kind: Input should be 'numeric' or 'categorical'"),
    ("features:\n  - {name: age, colour: red}\n", "features[0].colour: unknown key (allowed: name, label_en"),
    ("features:\n  - {name: age}\n  - {name: age}\n", "features: column(s) listed twice: age"),
    ("protected: age\n", "protected: Input should be a valid list"),
    ("feature: []\n", "feature: unknown key (allowed: target, exclude, protected, features)"),
    ("- a\n- b\n", "(top level): Input should be a valid dictionary"),
])
def test_feature_spec_mistakes_name_file_and_key(text: str, says: str, tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_feature_specs(p)
    assert f"{p}: {says}" in str(info.value)


def test_feature_spec_json_and_bad_syntax(tmp_path: Path) -> None:
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"target": "bad", "features": [{"name": "x", "categories": [1, 2]}]}), encoding="utf-8")
    assert load_feature_specs(p) == {"target": "bad", "features": [{"name": "x", "categories": [1, 2]}]}
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"spec\.json: feature spec is not valid JSON"):
        load_feature_specs(p)


# ----------------------------------------------------------------------------- the command
def test_schemas_command_writes_every_schema_and_prints_the_paths(tmp_path: Path) -> None:
    out = tmp_path / "editor-schemas"
    res = CliRunner().invoke(app, ["schemas", "-o", str(out)])
    assert res.exit_code == 0, res.output
    expected = [out / f"{n}.schema.json" for n in sorted(FILE_FORMATS)]
    assert res.output.split() == [str(p) for p in expected]
    for p in expected:
        assert p.read_text(encoding="utf-8") == (ROOT / "schemas" / p.name).read_text(encoding="utf-8")


def test_schemas_command_refuses_a_file_as_folder(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x", encoding="utf-8")
    res = CliRunner().invoke(app, ["schemas", "--output", str(f)])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_the_schemas_flag_what_the_loaders_refuse() -> None:
    """The editor's check is not vacuous: a typo, a range and a choice are flagged by the schema too."""
    exp = _schema_validator("experiment").iter_errors(
        {"seed": -1, "dta": {}, "model": {"strategy": "boost"}, "eval_date": "2025-13-45"})
    # eval_date is "a date or null": its bad format shows as the anyOf failing
    assert sorted(e.validator for e in exp) == ["additionalProperties", "anyOf", "enum", "minimum"]
    spec = _schema_validator("feature_spec").iter_errors({"features": [{"name": "a", "monotone": 2}]})
    assert [e.validator for e in spec] == ["enum"]
