"""Both wire formats: what a consumer with only schemas/ (or a registry) can decode."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.adapters.avro_codec import (
    Codec,
    DecodeError,
    RegistryCodec,
    SchemaRegistrationError,
    SingleObjectCodec,
    UnknownSchemaError,
    decode_checkpoint_key,
    encode_checkpoint_key,
    make_codec,
    schema_fingerprint,
)
from connector.adapters.avro_schemas import CHANGE_EVENT, load_schema, schemas_dir
from connector.core.mapping import from_calendar_event
from connector.core.records import (
    ChangeEvent,
    Channel,
    Checkpoint,
    Op,
    Phase,
    ResetReason,
    StreamRef,
    Trigger,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
EVENT = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "events" / "timed.json").read_text("utf-8")
)
STREAM = StreamRef("acct/cal", "alice@example.com", "alice@example.com")
CREATED = ChangeEvent(
    Op.CREATED,
    STREAM,
    1,
    Phase.FULL,
    Trigger.STARTUP,
    1_700_000_000_000,
    EVENT["id"],
    EVENT,
    1_612_810_940_063,
)
RESET_BEGIN = ChangeEvent(
    Op.RESET_BEGIN,
    STREAM,
    2,
    Phase.FULL,
    Trigger.RESET,
    1_700_000_000_001,
    reason=ResetReason.TOKEN_INVALIDATED,
)
RESET_END = ChangeEvent(
    Op.RESET_END, STREAM, 2, Phase.FULL, Trigger.RESET, 1_700_000_000_002, event_count=42
)
CHECKPOINT = Checkpoint(
    stream=STREAM,
    generation=2,
    phase=Phase.FULL,
    query_fingerprint="sha256:abc",
    page_token="pt-1",
    reset_reason=ResetReason.QUERY_CHANGED,
    published_count=17,
    last_attempt_at_ms=1_700_000_000_000,
    channel=Channel("ch-1", "res-1", 1_700_086_400_000),
    extra={"k": "v"},
)
MINIMAL_CHECKPOINT = Checkpoint(STREAM, 1, Phase.INCREMENTAL, "fp", sync_token="st-1")


def crc64_avro(data: bytes) -> int:
    """The Avro specification's reference Rabin fingerprint, written independently here."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def registry_codec(name: str, **kwargs: Any) -> tuple[RegistryCodec, SchemaRegistryClient]:
    client = SchemaRegistryClient.new_client({"url": f"mock://{name}"})
    return RegistryCodec(client, "gcal.events", "gcal.checkpoints", **kwargs), client


def codecs() -> list[Codec]:
    return [SingleObjectCodec(), registry_codec("codecs")[0]]


@pytest.mark.parametrize("codec", codecs(), ids=["single-object", "registry"])
@pytest.mark.parametrize("change", [CREATED, RESET_BEGIN, RESET_END], ids=["created", "b", "e"])
def test_changes_round_trip(codec: Codec, change: ChangeEvent) -> None:
    assert codec.decode_change(codec.encode_change(change)) == change


@pytest.mark.parametrize("codec", codecs(), ids=["single-object", "registry"])
def test_keys_and_checkpoints_round_trip(codec: Codec) -> None:
    assert codec.decode_key(codec.encode_key("cal@x", "ev1")) == ("cal@x", "ev1")
    assert codec.decode_key(codec.encode_key("cal@x", None)) == ("cal@x", None)
    for checkpoint in (CHECKPOINT, MINIMAL_CHECKPOINT):
        assert codec.decode_checkpoint(codec.encode_checkpoint(checkpoint)) == checkpoint
    assert decode_checkpoint_key(encode_checkpoint_key("acct/cal")) == "acct/cal"


def test_single_object_header_is_marker_plus_crc64_of_the_canonical_form() -> None:
    assert crc64_avro(b'"int"') == 0x7275D51A3F395C8F  # fastavro and Java agree on this one
    data = SingleObjectCodec().encode_change(CREATED)
    canonical = fastavro.schema.to_parsing_canonical_form(load_schema(CHANGE_EVENT))
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == crc64_avro(canonical.encode()).to_bytes(8, "little")


def test_a_consumer_with_only_the_schemas_folder_decodes_with_plain_fastavro() -> None:
    data = SingleObjectCodec().encode_change(CREATED)
    schema = fastavro.schema.load_schema(str(SCHEMAS / "ChangeEvent.avsc"))
    record = fastavro.schemaless_reader(io.BytesIO(data[10:]), schema, None)
    assert record["op"] == "CREATED"
    assert record["event"]["summary"] == EVENT["summary"]
    assert from_calendar_event(record["event"]) == EVENT
    key = SingleObjectCodec().encode_key("cal@x", "ev1")
    key_schema = fastavro.schema.load_schema(str(SCHEMAS / "EventKey.avsc"))
    assert fastavro.schemaless_reader(io.BytesIO(key[10:]), key_schema, None) == {
        "calendar_id": "cal@x",
        "event_id": "ev1",
    }


def test_shipped_schemas_are_the_ones_the_codec_uses() -> None:
    assert schemas_dir() == SCHEMAS


def test_single_object_refuses_foreign_bytes_and_unknown_fingerprints() -> None:
    codec = SingleObjectCodec()
    data = codec.encode_change(CREATED)
    with pytest.raises(DecodeError) as bad_marker:
        codec.decode_change(b"\x00" + data[1:])
    assert bad_marker.value.reason == "bad-marker"
    with pytest.raises(UnknownSchemaError):
        codec.decode_change(data[:2] + b"\x00" * 8 + data[10:])
    with pytest.raises(DecodeError):
        codec.decode_change(data[:20])  # truncated body


def _with_extra_op_symbol() -> dict[str, Any]:
    newer = load_schema(CHANGE_EVENT)
    op = newer["fields"][0]["type"]
    op["symbols"].insert(-1, "PAUSED")
    newer["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    return newer


def test_single_object_reads_older_or_newer_writers_it_is_given() -> None:
    newer = _with_extra_op_symbol()
    writer = fastavro.parse_schema(newer, named_schemas={})
    body = io.BytesIO()
    record = SingleObjectCodec().encode_change(RESET_END)  # reuse a valid record via decode
    plain = fastavro.schemaless_reader(
        io.BytesIO(record[10:]), fastavro.parse_schema(load_schema(CHANGE_EVENT)), None
    )
    fastavro.schemaless_writer(body, writer, {**plain, "note": "hi"})
    data = b"\xc3\x01" + schema_fingerprint(newer) + body.getvalue()
    with pytest.raises(UnknownSchemaError):
        SingleObjectCodec().decode_change(data)
    codec = SingleObjectCodec(older_schemas={CHANGE_EVENT: [newer]})
    assert codec.decode_change(data) == RESET_END


def test_registry_uses_the_confluent_wire_format_and_topic_name_subjects() -> None:
    codec, client = registry_codec("wire")
    value = codec.encode_change(CREATED)
    key = codec.encode_key("cal@x", "ev1")
    checkpoint = codec.encode_checkpoint(CHECKPOINT)
    assert sorted(client.get_subjects()) == [
        "gcal.checkpoints-value",
        "gcal.events-key",
        "gcal.events-value",
    ]
    for data, subject in [
        (value, "gcal.events-value"),
        (key, "gcal.events-key"),
        (checkpoint, "gcal.checkpoints-value"),
    ]:
        assert data[:1] == b"\x00"
        assert int.from_bytes(data[1:5], "big") == client.get_latest_version(subject).schema_id
    # The body is plain Avro of the registered schema.
    registered = client.get_latest_version("gcal.events-value").schema.schema_str
    record = fastavro.schemaless_reader(
        io.BytesIO(value[5:]), fastavro.parse_schema(json.loads(registered)), None
    )
    assert from_calendar_event(record["event"]) == EVENT


def test_registry_decodes_records_of_a_newer_writer_and_flags_unknown_symbols() -> None:
    codec, client = registry_codec("newer")
    newer = _with_extra_op_symbol()
    codec.encode_change(RESET_END)  # registers ours
    newer_id = client.register_schema("gcal.events-value", Schema(json.dumps(newer), "AVRO"))
    writer = fastavro.parse_schema(newer, named_schemas={})
    base = fastavro.schemaless_reader(
        io.BytesIO(codec.encode_change(RESET_END)[5:]),
        fastavro.parse_schema(load_schema(CHANGE_EVENT), named_schemas={}),
        None,
    )

    def write(record: dict[str, Any]) -> bytes:
        body = io.BytesIO()
        fastavro.schemaless_writer(body, writer, record)
        return b"\x00" + newer_id.to_bytes(4, "big") + body.getvalue()

    assert codec.decode_change(write({**base, "note": "x"})) == RESET_END
    with pytest.raises(DecodeError) as unknown:
        codec.decode_change(write({**base, "op": "PAUSED"}))
    assert unknown.value.reason == "unknown-symbol"


def test_registry_without_auto_register_needs_the_schema_registered() -> None:
    codec, client = registry_codec("no-auto", auto_register=False)
    with pytest.raises(SchemaRegistrationError) as refused:
        codec.encode_change(CREATED)
    assert refused.value.subject == "gcal.events-value"
    RegistryCodec(client, "gcal.events", "gcal.checkpoints").encode_change(CREATED)
    assert codec.decode_change(codec.encode_change(CREATED)) == CREATED


def test_registry_use_latest_version_writes_with_the_latest_schema() -> None:
    codec, client = registry_codec("latest", use_latest_version=True)
    latest_id = client.register_schema(
        "gcal.events-value", Schema(json.dumps(_with_extra_op_symbol()), "AVRO")
    )
    client.register_schema("gcal.events-key", Schema(json.dumps(load_schema("EventKey")), "AVRO"))
    data = codec.encode_change(CREATED)
    assert int.from_bytes(data[1:5], "big") == latest_id
    assert codec.decode_change(data) == CREATED


def test_make_codec_picks_the_format_from_the_configuration() -> None:
    assert isinstance(make_codec(None, {}, "e", "c"), SingleObjectCodec)
    codec = make_codec("mock://factory", {"auto.register.schemas": "true"}, "e", "c")
    assert isinstance(codec, RegistryCodec)
    assert codec.subjects == {
        "EventKey": "e-key",
        "ChangeEvent": "e-value",
        "SyncCheckpoint": "c-value",
    }
    assert codec.decode_change(codec.encode_change(CREATED)) == CREATED


FUZZ_CODEC = SingleObjectCodec()
VALID_CREATED = FUZZ_CODEC.encode_change(CREATED)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=10, max_value=400))
def test_damaged_bytes_give_a_decode_error_never_a_crash(noise: bytes, cut: int) -> None:
    damaged = VALID_CREATED[:cut] + noise
    with contextlib.suppress(DecodeError):  # any other exception fails the test
        FUZZ_CODEC.decode_change(damaged)


def test_a_record_with_a_schema_id_the_registry_does_not_know_is_flagged() -> None:
    codec, _ = registry_codec("unknown-id")
    data = codec.encode_change(RESET_END)
    with pytest.raises(UnknownSchemaError):
        codec.decode_change(b"\x00" + (999).to_bytes(4, "big") + data[5:])
    with pytest.raises(DecodeError) as bad:
        codec.decode_change(b"\xc3\x01" + data)
    assert bad.value.reason == "bad-marker"
