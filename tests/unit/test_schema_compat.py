"""Every released schema can still be read by the current one (Avro BACKWARD compatibility).

``tests/data/schemas-released/<version>/`` holds the schemas exactly as released. For each, random
records are written with the released schema and read with the current one as reader schema, and
the rules that keep evolution safe are checked: every enum has a default symbol, no symbol is
removed, every added field has a default. The checker is shown to fail on broken schemas.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.adapters.avro_schemas import SCHEMA_NAMES, load_schema, strip_logical_types

RELEASED = Path(__file__).resolve().parents[1] / "data" / "schemas-released"
BASELINES = sorted((path.parent.name, path.stem, path) for path in RELEASED.glob("*/*.avsc"))
PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def named_types(schema: Any, found: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Every record and enum in a schema by name (names are unique per file)."""
    found = {} if found is None else found
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, found)
    elif isinstance(schema, dict):
        kind = schema.get("type")
        if kind in ("record", "enum"):
            found[schema["name"]] = schema
        for field in schema.get("fields", []):
            named_types(field["type"], found)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], found)
        if isinstance(kind, dict | list):
            named_types(kind, found)
    return found


def rule_problems(old: Any, new: Any) -> list[str]:
    problems = []
    old_types, new_types = named_types(old), named_types(new)
    for name, schema in new_types.items():
        if schema["type"] == "enum" and schema.get("default") not in schema["symbols"]:
            problems.append(f"enum {name} has no default symbol")
    for name, was in old_types.items():
        now = new_types.get(name)
        if now is None:
            continue  # a renamed or dropped type fails the data check below
        if was["type"] == "enum":
            removed = set(was["symbols"]) - set(now.get("symbols", []))
            if removed:
                problems.append(f"enum {name} lost symbols {sorted(removed)}")
        elif was["type"] == "record":
            old_fields = {f["name"] for f in was["fields"]}
            for field in now.get("fields", []):
                if field["name"] not in old_fields and "default" not in field:
                    problems.append(f"{name}.{field['name']} was added without a default")
    return problems


def avro_values(schema: Any, names: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Hypothesis strategy of Python values valid for an Avro schema (as fastavro writes them)."""
    if isinstance(schema, list):
        return st.one_of([avro_values(branch, names, depth) for branch in schema])
    if isinstance(schema, str):
        if schema in PRIMITIVES:
            return {
                "null": st.none(),
                "boolean": st.booleans(),
                "int": st.integers(-(2**31), 2**31 - 1),
                "long": st.integers(-(2**63), 2**63 - 1),
                "float": st.floats(width=32, allow_nan=False),
                "double": st.floats(allow_nan=False),
                "bytes": st.binary(max_size=8),
                "string": st.text(max_size=8),
            }[schema]
        return avro_values(names[schema.rsplit(".", 1)[-1]], names, depth)
    kind = schema["type"]
    if isinstance(kind, dict | list) or kind in PRIMITIVES:
        return avro_values(kind, names, depth)
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        size = 2 if depth < 3 else 0
        return st.lists(avro_values(schema["items"], names, depth + 1), max_size=size)
    if kind == "map":
        return st.dictionaries(
            st.text(max_size=4), avro_values(schema["values"], names, depth + 1), max_size=2
        )
    # A record: big records keep only some fields, the rest take their defaults (null).
    fields = {
        f["name"]: avro_values(f["type"], names, depth + 1)
        for f in schema["fields"]
        if depth < 4 or "default" not in f
    }
    required = {f["name"] for f in schema["fields"] if "default" not in f}
    return st.fixed_dictionaries(
        {k: v for k, v in fields.items() if k in required},
        optional={k: v for k, v in fields.items() if k not in required},
    )


def check_backward(old: Any, new: Any, examples: int = 40) -> list[str]:
    """Problems that stop ``new`` from reading data written with ``old`` (empty if none)."""
    problems = rule_problems(old, new)
    failures: list[str] = []
    try:  # logical types do not change the binary form; plain longs avoid datetime overflow
        writer = fastavro.parse_schema(strip_logical_types(old), named_schemas={})
        reader = fastavro.parse_schema(strip_logical_types(new), named_schemas={})
    except Exception as exc:  # an unparsable schema is a finding
        return [*problems, f"schema does not parse: {exc}"]

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(avro_values(old, named_types(old)))
    def data_is_readable(record: Any) -> None:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, writer, record)
        body.seek(0)
        try:
            fastavro.schemaless_reader(body, writer, reader)
        except Exception as exc:  # any failure to resolve is a finding
            failures.append(f"{type(exc).__name__}: {exc}")
            raise

    try:
        data_is_readable()
    except Exception:  # hypothesis re-raises the minimal failing example
        problems.append(f"data written with the old schema is unreadable: {failures[-1]}")
    return problems


def test_every_current_schema_has_a_released_baseline() -> None:
    released = {name for _, name, _ in BASELINES}
    assert released == set(SCHEMA_NAMES)


@pytest.mark.parametrize(
    ("version", "name", "path"), BASELINES, ids=[f"{v}/{n}" for v, n, _ in BASELINES]
)
def test_current_schema_reads_what_the_release_wrote(version: str, name: str, path: Path) -> None:
    old = json.loads(path.read_text(encoding="utf-8"))
    assert check_backward(old, load_schema(name)) == []


def _mutate(schema: dict[str, Any], change: str) -> dict[str, Any]:
    new = copy.deepcopy(schema)
    if change == "field without default":
        new["fields"].append({"name": "mandatory", "type": "string"})
    elif change == "removed enum symbol":
        new["fields"][0]["type"]["symbols"].remove("CANCELLED")
    elif change == "enum without default":
        del new["fields"][0]["type"]["default"]
    elif change == "changed type":
        new["fields"][1]["type"] = "string"  # generation: long -> string
    return new


@pytest.mark.parametrize(
    "change",
    ["field without default", "removed enum symbol", "enum without default", "changed type"],
)
def test_the_check_catches_incompatible_changes(change: str) -> None:
    old = load_schema("ChangeEvent")
    assert check_backward(old, _mutate(old, change), examples=15) != []


def test_compatible_evolution_passes_the_check() -> None:
    old = load_schema("ChangeEvent")
    new = copy.deepcopy(old)
    new["fields"][0]["type"]["symbols"].insert(-1, "PAUSED")
    new["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    assert check_backward(old, new, examples=15) == []
