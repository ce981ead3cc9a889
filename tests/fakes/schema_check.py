"""Checking a submit body against a model's published input schema (``schemas.json``).

The fakes turn each :class:`Problem` into the provider's own 422 shape; the data file says
where every schema came from.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_FILE", "Problem", "check", "models_of"]

SCHEMA_FILE = Path(__file__).with_name("schemas.json")


@dataclass(frozen=True)
class Problem:
    """One reason a body breaks a schema; ``kind`` is what the provider's error type names."""

    field: str
    kind: str  # missing | extra | type | enum | minimum | maximum | max_length | one_of
    expected: Any = None


@cache
def _all() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return data


def models_of(provider: str) -> dict[str, dict[str, Any]]:
    """A fresh copy of one provider's model schemas (a fake may tighten its own copy)."""
    models: dict[str, dict[str, Any]] = _all()[provider]["models"]
    return copy.deepcopy(models)


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "string_list":
        return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    raise ValueError(f"schemas.json: unknown type {kind!r}")


def _field_problems(name: str, spec: dict[str, Any], value: Any) -> list[Problem]:
    if not _type_ok(spec["type"], value):
        return [Problem(name, "type", spec["type"])]
    if "enum" in spec and value not in spec["enum"]:
        return [Problem(name, "enum", spec["enum"])]
    if "minimum" in spec and value < spec["minimum"]:
        return [Problem(name, "minimum", spec["minimum"])]
    if "maximum" in spec and value > spec["maximum"]:
        return [Problem(name, "maximum", spec["maximum"])]
    if "max_length" in spec and len(value) > spec["max_length"]:
        return [Problem(name, "max_length", spec["max_length"])]
    return []


def check(schema: dict[str, Any], payload: dict[str, Any]) -> list[Problem]:
    """Every way ``payload`` breaks ``schema``, missing fields first (as a reader wants them)."""
    properties: dict[str, dict[str, Any]] = schema["properties"]
    problems = [Problem(f, "missing") for f in schema.get("required", []) if f not in payload]
    for group in schema.get("one_of", []):
        present = [f for f in group if f in payload]
        if not present:
            # Neither spelling sent reads as "the first one is required".
            problems.append(Problem(group[0], "missing"))
        elif len(present) > 1:
            problems.append(Problem(present[1], "one_of", group))
    problems += [Problem(f, "extra") for f in payload if f not in properties]
    for name, value in payload.items():
        if name in properties:
            problems += _field_problems(name, properties[name], value)
    return problems
