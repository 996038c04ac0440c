"""Declared file formats: one pydantic model per file a user writes by hand.

Why: policies, experiment configs and feature specs are YAML that people edit. A
declared model checks them at load (types, ranges, choices, unknown keys) with one
set of rules, and the same model generates the JSON Schema an editor uses to
complete and check the file as it is typed (``schemas/*.schema.json``).

Every format subclasses :class:`FileFormat` (unknown keys are refused, so a typo never
passes as a default) and is read through :func:`validate_document`, which turns
pydantic's errors into the toolkit's: the file, the dotted key and the reason.

>>> class Limits(FileFormat):
...     age_max: int = 60
>>> validate_document(Limits, {"age_max": 65}, source="p.yaml").age_max
65
>>> validate_document(Limits, {"age_mx": 65}, source="p.yaml")
Traceback (most recent call last):
...
village_credit.errors.ConfigError: p.yaml: age_mx: unknown key (allowed: age_max)
"""

from __future__ import annotations

import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, ConfigDict

from village_credit.errors import ConfigError, VillageCreditError

__all__ = ["FileFormat", "error_lines", "json_schema", "validate_document", "write_json_schema"]

M = TypeVar("M", bound=BaseModel)


class FileFormat(BaseModel):
    """Base of every hand-written file format: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _dotted(loc: tuple[Any, ...]) -> str:
    """``('items', 2, 'points')`` -> ``items[2].points`` (the key as a user finds it)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def error_lines(exc: pydantic.ValidationError, model: type[BaseModel] | None = None) -> list[str]:
    """One ``key: reason`` line per problem, in the order pydantic found them."""
    lines = []
    for err in exc.errors(include_url=False):
        # a union tries each branch; its tag ('function-after[...]', 'str') is not a key
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS)))
        key = _dotted(loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1]) if model is not None else []
            reason = "unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        else:
            reason = err["msg"]
            if "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], Mapping):
                reason += f", got {err['input']!r}"
        lines.append(f"{key}: {reason}")
    return lines


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the (nested) model at ``loc`` declares, for an 'unknown key' message.

    Follows model fields, list items and the named entries of a mapping
    (``bonuses.party`` -> the model of one bonus family).
    """
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        else:  # inside list[X] / dict[str, X] / X | None: the part is an index or a name
            current = _container_item(current)
            if current is None:
                return []
    current = _inner_model(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]
    return []


def _container_item(annotation: Any) -> Any:
    """The item type of ``list[X]`` or ``dict[K, X]`` (through ``| None``), else None."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    for arg in args:  # Optional / Union / Annotated
        item = _container_item(arg)
        if item is not None:
            return item
    return None


def _inner_model(annotation: Any) -> Any:
    """The BaseModel inside ``X | None`` or ``Annotated[X, ...]``, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _inner_model(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def validate_document(model: type[M], data: Any, *, source: str | Path,
                      error: type[VillageCreditError] = ConfigError) -> M:
    """``data`` (parsed YAML/JSON) checked against ``model``; ``error`` names file, key, reason.

    All problems are reported at once, one per line, so a user fixes a file in one pass.
    """
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        lines = error_lines(exc, model)
        head = f"{source}: {lines[0]}"
        rest = "".join(f"\n{source}: {line}" for line in lines[1:])
        raise error(head + rest) from None


def json_schema(model: type[BaseModel], *, title: str, schema_id: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``model``, titled, with a stable ``$id``."""
    schema = model.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id,
            **schema, "title": title}


def write_json_schema(schema: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``schema`` as sorted, indented JSON with a final newline (stable diffs)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return p
