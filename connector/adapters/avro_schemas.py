"""The Avro schemas in ``schemas/*.avsc``: loading them, and generating ``CalendarEvent``.

Every file is one self-contained schema (named types are inlined where they are used), so a
consumer can parse any of them alone with a plain Avro library, and each is the exact string we
register under its Schema Registry subject.

``CalendarEvent`` is generated from ``connector.core.mapping.EVENT_SPEC`` with the field docs of
Google's discovery document; ``ChangeEvent.avsc`` inlines it. Regenerate both after changing the
spec with ``python -m connector.adapters.avro_schemas`` (``--check`` only compares).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from connector.core.mapping import ANY, EVENT_SPEC, UNKNOWN_FIELDS, Arr, Kind, Rec, StrMap

NAMESPACE = "gcal_kafka.v1"
EVENT_KEY = "EventKey"
CHANGE_EVENT = "ChangeEvent"
CALENDAR_EVENT = "CalendarEvent"
SYNC_CHECKPOINT = "SyncCheckpoint"
SCHEMA_NAMES = (EVENT_KEY, CHANGE_EVENT, CALENDAR_EVENT, SYNC_CHECKPOINT)

_UNKNOWN_DOC = (
    "Fields of this JSON object that the schema does not know, or whose JSON value has an"
    " unexpected type, as one JSON object; null if there are none."
)


def schemas_dir() -> Path:
    """``connector/schemas`` in an installed wheel, else ``schemas/`` of the source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "schemas"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "schemas"


@cache
def _load_text(name: str) -> str:
    return (schemas_dir() / f"{name}.avsc").read_text(encoding="utf-8")


def load_schema(name: str) -> dict[str, Any]:
    """The schema ``schemas/<name>.avsc`` as a JSON dict (a fresh copy each call)."""
    loaded: dict[str, Any] = json.loads(_load_text(name))
    return loaded


def schema_json(name: str) -> str:
    """The compact JSON string of a schema: what is registered under its subject."""
    return json.dumps(load_schema(name), separators=(",", ":"))


def strip_logical_types(schema: Any) -> Any:
    """A copy without ``logicalType`` annotations: same binary encoding, plain ints on read."""
    if isinstance(schema, dict):
        return {k: strip_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [strip_logical_types(v) for v in schema]
    return schema


# --- generating CalendarEvent from the mapping spec -------------------------------------------


def discovery_document() -> dict[str, Any]:
    """The Calendar v3 discovery document shipped with google-api-python-client."""
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("google-api-python-client is not installed")
    path = Path(spec.origin).parent / "discovery_cache" / "documents" / "calendar.v3.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def discovery_node(node: Mapping[str, Any], schemas: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a discovery ``$ref`` to its schema."""
    ref = node.get("$ref")
    return schemas[ref] if isinstance(ref, str) else node


def _first_paragraph(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def _field_doc(prop: Mapping[str, Any] | None, kind: Kind) -> str:
    doc = _first_paragraph(str(prop.get("description", ""))) if prop else ""
    if kind == ANY:
        doc = (doc + " " if doc else "") + "Any JSON value, carried as its JSON text."
    return doc


def _avro_type(
    kind: Kind, node: Mapping[str, Any] | None, schemas: Mapping[str, Any], defined: set[str]
) -> Any:
    if isinstance(kind, Rec):
        return _avro_record(kind, node, schemas, defined)
    if isinstance(kind, Arr):
        items = discovery_node(node["items"], schemas) if node and "items" in node else None
        return {"type": "array", "items": _avro_type(kind.items, items, schemas, defined)}
    if isinstance(kind, StrMap):
        return {"type": "map", "values": "string"}
    return "string" if kind == ANY else kind


def _avro_record(
    rec: Rec, node: Mapping[str, Any] | None, schemas: Mapping[str, Any], defined: set[str]
) -> Any:
    if rec.name in defined:
        return rec.name
    defined.add(rec.name)
    props: Mapping[str, Any] = node.get("properties", {}) if node else {}
    fields: list[dict[str, Any]] = []
    for name, kind in rec.fields:
        prop = props.get(name)
        sub = discovery_node(prop, schemas) if prop else None
        field: dict[str, Any] = {
            "name": name,
            "type": ["null", _avro_type(kind, sub, schemas, defined)],
            "default": None,
        }
        doc = _field_doc(prop, kind)
        if doc:
            field["doc"] = doc
        fields.append(field)
    fields.append(
        {"name": UNKNOWN_FIELDS, "type": ["null", "string"], "default": None, "doc": _UNKNOWN_DOC}
    )
    record: dict[str, Any] = {"type": "record", "name": rec.name}
    if node and node.get("description"):
        record["doc"] = _first_paragraph(str(node["description"]))
    record["fields"] = fields
    return record


def calendar_event_schema(discovery: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``CalendarEvent`` Avro schema built from ``EVENT_SPEC`` (docs from ``discovery``)."""
    schemas: Mapping[str, Any] = discovery["schemas"] if discovery else {}
    event_node = schemas.get("Event") if schemas else None
    record: dict[str, Any] = _avro_record(EVENT_SPEC, event_node, schemas, set())
    return {
        "type": "record",
        "name": record["name"],
        "namespace": NAMESPACE,
        "doc": (
            "The Google Calendar Event resource (Calendar API v3), losslessly: null means the"
            " field was absent in Google's JSON, unknown_fields keeps what the schema does not"
            " know."
        ),
        "fields": record["fields"],
    }


def render_schema_files(discovery: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """The generated files: ``CalendarEvent`` and ``ChangeEvent`` with it inlined."""
    event = calendar_event_schema(discovery)
    change = load_schema(CHANGE_EVENT)
    for field in change["fields"]:
        if field["name"] == "event":
            inlined = copy.deepcopy(event)
            del inlined["namespace"]  # inherited from the enclosing ChangeEvent
            field["type"] = ["null", inlined]
    return {CALENDAR_EVENT: event, CHANGE_EVENT: change}


def dump_schema(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    stale = []
    for name, schema in render_schema_files(discovery_document()).items():
        path = schemas_dir() / f"{name}.avsc"
        text = dump_schema(schema)
        if path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                path.write_text(text, encoding="utf-8")
    if stale:
        print(("out of date: " if check else "rewrote: ") + ", ".join(stale))
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
