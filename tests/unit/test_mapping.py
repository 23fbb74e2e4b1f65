"""The Google Event <-> CalendarEvent mapping is lossless, through both wire formats."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.adapters.avro_codec import RegistryCodec, SingleObjectCodec, parse_schema
from connector.adapters.avro_fastpath import compile_reader, compile_writer
from connector.adapters.avro_schemas import (
    CALENDAR_EVENT,
    calendar_event_schema,
    discovery_document,
    discovery_node,
    load_schema,
    render_schema_files,
)
from connector.core.mapping import (
    ANY,
    BOOLEAN,
    EVENT_SPEC,
    LONG,
    STRING,
    Arr,
    Kind,
    Rec,
    StrMap,
    event_id_of,
    from_calendar_event,
    is_cancelled,
    is_instance_exception,
    source_updated_ms,
    to_calendar_event,
)
from connector.core.records import ChangeEvent, Op, Phase, StreamRef, Trigger
from connector.errors import UnmappableItemError

EVENTS_DIR = Path(__file__).resolve().parents[1] / "data" / "events"
GOLDEN = sorted(EVENTS_DIR.glob("*.json"))
STREAM = StreamRef("alice@example.com/alice@example.com", "alice@example.com", "alice@example.com")
SINGLE = SingleObjectCodec()
REGISTRY = RegistryCodec(
    SchemaRegistryClient.new_client({"url": "mock://test-mapping"}), "gcal.events", "gcal.ckpt"
)
PARSED_EVENT = parse_schema(load_schema(CALENDAR_EVENT))
WRITER = compile_writer()
READER = compile_reader()


def change_of(item: dict[str, Any]) -> ChangeEvent:
    return ChangeEvent(
        op=Op.CANCELLED if is_cancelled(item) else Op.CREATED,
        stream=STREAM,
        generation=3,
        phase=Phase.INCREMENTAL,
        trigger=Trigger.PUSH,
        published_at_ms=1_700_000_000_123,
        event_id=item["id"],
        event=item,
        source_updated_at_ms=source_updated_ms(item),
    )


def fastavro_bytes(item: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, PARSED_EVENT, to_calendar_event(item))
    return out.getvalue()


def assert_lossless(item: dict[str, Any]) -> None:
    record = to_calendar_event(item)
    assert from_calendar_event(record) == item
    body = fastavro_bytes(item)
    fast = bytearray()
    WRITER(item, fast)
    assert bytes(fast) == body  # the fused writer writes exactly what fastavro writes
    decoded = fastavro.schemaless_reader(io.BytesIO(body), PARSED_EVENT, None)
    assert from_calendar_event(decoded) == item
    assert READER(body, 0) == (item, len(body))  # the fused reader agrees with fastavro
    change = change_of(item)
    for codec in (SINGLE, REGISTRY):
        assert codec.decode_change(codec.encode_change(change)) == change


@pytest.mark.parametrize("path", GOLDEN, ids=[p.stem for p in GOLDEN])
def test_golden_google_events_round_trip_exactly(path: Path) -> None:
    assert_lossless(json.loads(path.read_text(encoding="utf-8")))


def test_golden_samples_cover_the_shapes_the_contract_names() -> None:
    names = {p.stem for p in GOLDEN}
    assert {"timed", "all_day", "recurring_master_exdate", "modified_exception"} <= names
    assert {"cancelled_exception", "deleted_tombstone", "conference_attachments_extended"} <= names


def test_typed_fields_are_typed_and_unknown_fields_empty_for_a_plain_event() -> None:
    item = json.loads((EVENTS_DIR / "timed.json").read_text(encoding="utf-8"))
    record = to_calendar_event(item)
    assert record["start"] == {"dateTime": "2021-02-10T10:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert record["sequence"] == 2
    assert record["attendees"][3]["additionalGuests"] == 1
    assert "unknown_fields" not in record


ODD_ITEMS = [
    {"id": "x1", "sequence": "3"},  # int as a string
    {"id": "x1", "start": ["2021-01-01"]},  # a list where an object is expected
    {"id": "x1", "attendees": {"email": "a@b"}},  # an object where a list is expected
    {"id": "x1", "attendees": [{"email": "a@b"}, "oops"]},  # a bad element
    {"id": "x1", "summary": None},  # JSON null is not "absent"
    {"id": "x1", "sequence": 2**70, "locked": 1, "anyoneCanAddSelf": "true"},
    {"id": "x1", "sequence": 1.0, "reminders": {"overrides": [{"minutes": 10.5}]}},
    {"id": "x1", "summary": "lone \ud800 surrogate", "recurrence": ["ok", "\udfff"]},
    {"id": "x1", "extendedProperties": {"private": {"n": 1}, "shared": {"\ud800": "v"}}},
    {"id": "x1", "futureField": {"deep": [1, {"x": None}]}, "start": {"date": "2021", "zz": 1}},
    {"id": "x1", "conferenceData": {"entryPoints": [{"uri": "u", "newThing": True}]}},
    {"id": "x1", "attendees": [], "recurrence": [], "extendedProperties": {"private": {}}},
    {"id": "x1", "workingLocationProperties": {"type": "homeOffice", "homeOffice": {}}},
    {"id": "x1", "workingLocationProperties": {"homeOffice": None}},
    {"id": "x1", "unknown_fields": "collides with our field name", "kind": "calendar#event"},
    {"id": "ünïcødé-😀", "summary": "日本語", "description": "\u0000nul"},
    {"id": "x1", "gadget": {"height": -5, "preferences": {"a": "b"}, "width": True}},
]


@pytest.mark.parametrize("item", ODD_ITEMS)
def test_type_oddities_and_unknown_fields_survive_at_any_depth(item: dict[str, Any]) -> None:
    assert_lossless(item)


def test_unknown_nested_field_is_kept_on_its_own_record() -> None:
    record = to_calendar_event({"id": "x1", "start": {"date": "2021-01-01", "zz": 1}})
    assert record["start"]["date"] == "2021-01-01"
    assert json.loads(record["start"]["unknown_fields"]) == {"zz": 1}


@pytest.mark.parametrize("item", [[], "x", 3, None, {"summary": "no id"}, {"id": 7}])
def test_only_non_objects_and_items_without_string_id_are_unmappable(item: Any) -> None:
    with pytest.raises(UnmappableItemError):
        to_calendar_event(item)
    if item is None:
        return  # a change without an event is a RESET marker, not an error
    with pytest.raises(UnmappableItemError):
        SINGLE.encode_change(
            ChangeEvent(Op.UPDATED, STREAM, 1, Phase.FULL, Trigger.POLL, 1, "e", item)
        )


def test_helpers() -> None:
    exception = json.loads((EVENTS_DIR / "cancelled_exception.json").read_text(encoding="utf-8"))
    assert event_id_of(exception) == "7sull595rv5apd9mr77a6g0s0h_20220211T170000Z"
    assert is_cancelled(exception) and is_instance_exception(exception)
    assert not is_instance_exception({"id": "a", "status": "cancelled"})
    assert not is_cancelled({"id": "a"})
    assert source_updated_ms({"updated": "2021-02-08T19:02:20.063Z"}) == 1612810940063
    assert source_updated_ms({"updated": "2021-02-08T20:02:20.063+01:00"}) == 1612810940063
    assert source_updated_ms({"updated": "1970-01-01T00:00:00.0005Z"}) == 0
    assert source_updated_ms({"updated": "garbage"}) is None
    assert source_updated_ms({}) is None
    with pytest.raises(UnmappableItemError):
        event_id_of({"summary": "x"})


# --- the spec against Google's discovery document -------------------------------------------


def _gaps(kind: Kind, node: Any, schemas: Any, path: str) -> list[str]:
    node = discovery_node(node, schemas)
    expected = {"string": STRING, "boolean": BOOLEAN, "integer": LONG, "any": ANY}
    if isinstance(kind, Rec):
        props = node.get("properties", {})
        known = dict(kind.fields)
        gaps = [f"{path}.{name}: not in EVENT_SPEC" for name in props if name not in known]
        gaps += [f"{path}.{name}: not in discovery" for name in known if name not in props]
        for name, sub in known.items():
            if name in props:
                gaps += _gaps(sub, props[name], schemas, f"{path}.{name}")
        return gaps
    if isinstance(kind, Arr):
        if node.get("type") != "array":
            return [f"{path}: discovery type {node.get('type')}, spec array"]
        return _gaps(kind.items, node["items"], schemas, f"{path}[]")
    if isinstance(kind, StrMap):
        ok = node.get("type") == "object" and node.get("additionalProperties", {}).get("type")
        return [] if ok == "string" else [f"{path}: not a map of strings in discovery"]
    if expected.get(node.get("type")) != kind:
        return [f"{path}: discovery type {node.get('type')}, spec {kind}"]
    return []


def test_event_spec_covers_every_field_of_googles_discovery_document() -> None:
    """Fails when Google adds a field to Event (at any depth): add it to EVENT_SPEC, regenerate."""
    discovery = discovery_document()
    schemas = discovery["schemas"]
    assert _gaps(EVENT_SPEC, schemas["Event"], schemas, "Event") == []


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_docs(v) for k, v in schema.items() if k != "doc"}
    if isinstance(schema, list):
        return [_without_docs(v) for v in schema]
    return schema


def test_checked_in_schemas_are_what_the_generator_produces() -> None:
    """Run ``python -m connector.adapters.avro_schemas`` after changing EVENT_SPEC."""
    for name, schema in render_schema_files(discovery_document()).items():
        assert _without_docs(load_schema(name)) == _without_docs(schema), name
    assert _without_docs(calendar_event_schema(None)) == _without_docs(load_schema(CALENDAR_EVENT))


# --- property test ------------------------------------------------------------------------------

_text = st.text(max_size=12)
_odd = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_unknown_keys = st.dictionaries(st.text(min_size=1, max_size=8), _odd, max_size=2)


def _strategy(kind: Kind) -> st.SearchStrategy[Any]:
    if isinstance(kind, Rec):
        return _record_strategy(kind)
    if isinstance(kind, Arr):
        return st.lists(_strategy(kind.items), max_size=3)
    if isinstance(kind, StrMap):
        return st.dictionaries(_text, _text, max_size=3)
    return {
        STRING: _text,
        BOOLEAN: st.booleans(),
        LONG: st.integers(min_value=-(2**63), max_value=2**63 - 1),
        ANY: _odd.filter(lambda v: v is not None),
    }[str(kind)]


def _record_strategy(rec: Rec) -> st.SearchStrategy[dict[str, Any]]:
    # Each field: absent, well typed, or an odd JSON value; plus some unknown keys.
    optional = {name: _strategy(kind) | _odd for name, kind in rec.fields}
    return st.builds(
        lambda known, extra: {**extra, **known},
        st.fixed_dictionaries({}, optional=optional),
        _unknown_keys,
    )


google_items = st.builds(
    lambda item, event_id: {**item, "id": event_id},
    st.deferred(lambda: _record_strategy(EVENT_SPEC)),
    _text,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(google_items)
def test_any_google_item_is_rebuilt_exactly_through_both_codecs(item: dict[str, Any]) -> None:
    assert_lossless(item)
