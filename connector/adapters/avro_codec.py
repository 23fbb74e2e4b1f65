"""Keys and values of the connector's topics as bytes: Avro, with or without a Schema Registry.

Two wire formats, one interface (``Codec``):

- ``SingleObjectCodec``: Avro single-object encoding, ``C3 01`` + the 8-byte little-endian
  CRC-64-AVRO fingerprint of the schema's parsing canonical form + the body. Any consumer holding
  ``schemas/`` decodes it with a plain Avro library.
- ``RegistryCodec``: the Confluent wire format, ``00`` + 4-byte big-endian schema id + the body,
  with TopicNameStrategy subjects ``<topic>-key`` / ``<topic>-value``.

Bodies are written and read with fastavro directly (the registry client only registers and looks
up schemas): it is several times faster than the serializer classes and gives the same bytes.
Checkpoint keys are plain UTF-8 stream ids in both formats. This is the only module that imports
``confluent_kafka.schema_registry``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from io import BytesIO
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from connector.adapters.avro_schemas import (
    CHANGE_EVENT,
    EVENT_KEY,
    SYNC_CHECKPOINT,
    load_schema,
    schema_json,
    strip_logical_types,
)
from connector.adapters.avro_writer import compile_writer, write_long, write_string, zigzag
from connector.core.mapping import event_id_of, from_calendar_event, to_calendar_event
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
from connector.errors import ConnectorError, RetriableError

try:
    from confluent_kafka.schema_registry import (
        ConfigCompatibilityLevel,
        Schema,
        SchemaRegistryClient,
        SchemaRegistryError,
        ServerConfig,
    )
except ImportError as _exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "confluent_kafka.schema_registry needs confluent-kafka[schemaregistry]"
    ) from _exc

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class DecodeError(ConnectorError):
    """Bytes on a topic that this codec cannot turn back into a record (``reason`` says why)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownSchemaError(DecodeError):
    """The record was written with a schema this codec does not know (``fingerprint`` or id)."""


class SchemaRegistrationError(ConnectorError):
    """The Schema Registry refused our schema (e.g. incompatible with the subject's history)."""

    def __init__(self, message: str, *, subject: str, status: int | None = None) -> None:
        super().__init__(message)
        self.subject = subject
        self.status = status


class Codec(Protocol):
    def encode_key(self, calendar_id: str, event_id: str | None) -> bytes: ...
    def decode_key(self, data: bytes) -> tuple[str, str | None]: ...
    def encode_change(self, change: ChangeEvent) -> bytes: ...
    def decode_change(self, data: bytes) -> ChangeEvent: ...
    def encode_checkpoint(self, checkpoint: Checkpoint) -> bytes: ...
    def decode_checkpoint(self, data: bytes) -> Checkpoint: ...


def encode_checkpoint_key(stream_id: str) -> bytes:
    return stream_id.encode("utf-8")


def decode_checkpoint_key(data: bytes) -> str:
    return data.decode("utf-8")


# --- records.py <-> Avro record dicts (pure) --------------------------------------------------


def change_to_record(change: ChangeEvent) -> dict[str, Any]:
    return {
        "op": change.op.value,
        "generation": change.generation,
        "stream_id": change.stream.stream_id,
        "account": change.stream.account,
        "calendar_id": change.stream.calendar_id,
        "event_id": change.event_id,
        "phase": change.phase.value,
        "trigger": change.trigger.value,
        "published_at": change.published_at_ms,
        "source_updated_at": change.source_updated_at_ms,
        "reason": None if change.reason is None else change.reason.value,
        "event_count": change.event_count,
        "event": None if change.event is None else to_calendar_event(change.event),
    }


def _enum(kind: Callable[[str], Any], value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise DecodeError(
            f"symbol {value!r} is unknown to this version", reason="unknown-symbol"
        ) from None


def record_to_change(rec: Mapping[str, Any]) -> ChangeEvent:
    reason = rec.get("reason")
    event = rec.get("event")
    return ChangeEvent(
        op=_enum(Op, rec["op"]),
        stream=StreamRef(rec["stream_id"], rec["account"], rec["calendar_id"]),
        generation=rec["generation"],
        phase=_enum(Phase, rec["phase"]),
        trigger=_enum(Trigger, rec["trigger"]),
        published_at_ms=rec["published_at"],
        event_id=rec.get("event_id"),
        event=None if event is None else from_calendar_event(event),
        source_updated_at_ms=rec.get("source_updated_at"),
        reason=None if reason is None else _enum(ResetReason, reason),
        event_count=rec.get("event_count"),
    )


def checkpoint_to_record(cp: Checkpoint) -> dict[str, Any]:
    channel = cp.channel
    return {
        "stream_id": cp.stream.stream_id,
        "account": cp.stream.account,
        "calendar_id": cp.stream.calendar_id,
        "generation": cp.generation,
        "phase": cp.phase.value,
        "query_fingerprint": cp.query_fingerprint,
        "sync_token": cp.sync_token,
        "page_token": cp.page_token,
        "reset_reason": None if cp.reset_reason is None else cp.reset_reason.value,
        "published_count": cp.published_count,
        "last_attempt_at": cp.last_attempt_at_ms,
        "last_success_at": cp.last_success_at_ms,
        "channel": None
        if channel is None
        else {
            "id": channel.id,
            "resource_id": channel.resource_id,
            "expiration": channel.expiration_ms,
        },
        "extra": dict(cp.extra),
    }


def record_to_checkpoint(rec: Mapping[str, Any]) -> Checkpoint:
    reason = rec.get("reset_reason")
    channel = rec.get("channel")
    return Checkpoint(
        stream=StreamRef(rec["stream_id"], rec["account"], rec["calendar_id"]),
        generation=rec["generation"],
        phase=_enum(Phase, rec["phase"]),
        query_fingerprint=rec["query_fingerprint"],
        sync_token=rec.get("sync_token"),
        page_token=rec.get("page_token"),
        reset_reason=None if reason is None else _enum(ResetReason, reason),
        published_count=rec.get("published_count", 0),
        last_attempt_at_ms=rec.get("last_attempt_at"),
        last_success_at_ms=rec.get("last_success_at"),
        channel=None
        if channel is None
        else Channel(channel["id"], channel["resource_id"], channel["expiration"]),
        extra=dict(rec.get("extra") or {}),
    )


_ENVELOPE = (
    "op",
    "generation",
    "stream_id",
    "account",
    "calendar_id",
    "event_id",
    "phase",
    "trigger",
    "published_at",
    "source_updated_at",
    "reason",
    "event_count",
    "event",
)


class ChangeWriter:
    """Writes a ``ChangeEvent`` body without fastavro (see ``avro_writer``), for our schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        if tuple(fields) != _ENVELOPE:
            raise ValueError("ChangeEvent schema fields differ from what ChangeWriter writes")
        self._op = _symbols(fields["op"])
        self._phase = _symbols(fields["phase"])
        self._trigger = _symbols(fields["trigger"])
        self._reason = _symbols(fields["reason"][1])
        self._event = compile_writer()

    def __call__(self, change: ChangeEvent, out: bytearray) -> None:
        stream = change.stream
        out += self._op[change.op]
        write_long(out, change.generation)
        write_string(out, stream.stream_id)
        write_string(out, stream.account)
        write_string(out, stream.calendar_id)
        _optional_string(out, change.event_id)
        out += self._phase[change.phase]
        out += self._trigger[change.trigger]
        write_long(out, change.published_at_ms)
        _optional_long(out, change.source_updated_at_ms)
        if change.reason is None:
            out += b"\x00"
        else:
            out += b"\x02" + self._reason[change.reason]
        _optional_long(out, change.event_count)
        event = change.event
        if event is None:
            out += b"\x00"
        else:
            event_id_of(event)  # the same check to_calendar_event makes
            out += b"\x02"
            self._event(event, out)


def _symbols(enum_schema: Mapping[str, Any]) -> dict[str, bytes]:
    return {symbol: zigzag(i) for i, symbol in enumerate(enum_schema["symbols"])}


def _optional_string(out: bytearray, value: str | None) -> None:
    if value is None:
        out += b"\x00"
    else:
        out += b"\x02"
        write_string(out, value)


def _optional_long(out: bytearray, value: int | None) -> None:
    if value is None:
        out += b"\x00"
    else:
        out += b"\x02"
        write_long(out, value)


# --- fastavro plumbing ------------------------------------------------------------------------


def parse_schema(schema: Any) -> Any:
    """fastavro's parsed form without logical types (timestamps stay epoch-millisecond ints)."""
    return fastavro.parse_schema(strip_logical_types(schema), named_schemas={})


def schema_fingerprint(schema: Any) -> bytes:
    """The 8 bytes single-object encoding puts after ``C3 01``: CRC-64-AVRO, little-endian."""
    canonical = to_parsing_canonical_form(fastavro.parse_schema(schema, named_schemas={}))
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def _write(prefix: bytes, parsed: Any, record: Mapping[str, Any]) -> bytes:
    out = BytesIO()
    out.write(prefix)
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


def _read(data: bytes, start: int, writer: Any, reader: Any | None) -> Any:
    try:
        return fastavro.schemaless_reader(BytesIO(data[start:]), writer, reader)
    except (EOFError, ValueError, UnicodeDecodeError, IndexError, KeyError) as exc:
        raise DecodeError(f"malformed Avro body: {exc}", reason="malformed") from exc
    except fastavro.read.SchemaResolutionError as exc:
        raise DecodeError(f"cannot resolve schemas: {exc}", reason="resolution") from exc


class SingleObjectCodec:
    """Avro single-object encoding against the schemas shipped in ``schemas/``.

    ``older_schemas`` (name -> list of schema dicts) lets it read records written with earlier
    releases: they are resolved to the current schema by fingerprint.
    """

    def __init__(self, older_schemas: Mapping[str, list[Mapping[str, Any]]] | None = None) -> None:
        self._parsed: dict[str, Any] = {}
        self._prefix: dict[str, bytes] = {}
        self._readers: dict[str, dict[bytes, Any]] = {}
        for name in (EVENT_KEY, CHANGE_EVENT, SYNC_CHECKPOINT):
            schema = load_schema(name)
            fp = schema_fingerprint(schema)
            self._parsed[name] = parse_schema(schema)
            self._prefix[name] = SINGLE_OBJECT_MARKER + fp
            self._readers[name] = {fp: None}
            for old in (older_schemas or {}).get(name, []):
                self._readers[name].setdefault(schema_fingerprint(old), parse_schema(old))
        self._change_writer = ChangeWriter(load_schema(CHANGE_EVENT))

    def _encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        return _write(self._prefix[name], self._parsed[name], record)

    def _decode(self, name: str, data: bytes) -> Any:
        if data[:2] != SINGLE_OBJECT_MARKER or len(data) < 10:
            raise DecodeError("not Avro single-object encoded", reason="bad-marker")
        fp = bytes(data[2:10])
        readers = self._readers[name]
        if fp not in readers:
            raise UnknownSchemaError(
                f"{name}: unknown schema fingerprint {fp.hex()}", reason="unknown-schema"
            )
        writer = readers[fp]
        if writer is None:
            return _read(data, 10, self._parsed[name], None)
        return _read(data, 10, writer, self._parsed[name])

    def encode_key(self, calendar_id: str, event_id: str | None) -> bytes:
        return self._encode(EVENT_KEY, {"calendar_id": calendar_id, "event_id": event_id})

    def decode_key(self, data: bytes) -> tuple[str, str | None]:
        rec = self._decode(EVENT_KEY, data)
        return rec["calendar_id"], rec["event_id"]

    def encode_change(self, change: ChangeEvent) -> bytes:
        out = bytearray(self._prefix[CHANGE_EVENT])
        self._change_writer(change, out)
        return bytes(out)

    def decode_change(self, data: bytes) -> ChangeEvent:
        return record_to_change(self._decode(CHANGE_EVENT, data))

    def encode_checkpoint(self, checkpoint: Checkpoint) -> bytes:
        return self._encode(SYNC_CHECKPOINT, checkpoint_to_record(checkpoint))

    def decode_checkpoint(self, data: bytes) -> Checkpoint:
        return record_to_checkpoint(self._decode(SYNC_CHECKPOINT, data))


class RegistryCodec:
    """The Confluent wire format with TopicNameStrategy subjects; talks to the registry lazily.

    ``auto_register`` registers our schema on first use (a new subject is set to BACKWARD
    compatibility); otherwise the schema must already be registered (``lookup``). With
    ``use_latest_version`` records are written with the subject's latest schema instead. Records
    written with other schema ids are resolved to ours, so newer writers stay readable.
    """

    def __init__(
        self,
        client: SchemaRegistryClient,
        events_topic: str,
        checkpoints_topic: str,
        *,
        auto_register: bool = True,
        use_latest_version: bool = False,
    ) -> None:
        self._client = client
        self._auto_register = auto_register
        self._use_latest = use_latest_version
        self._subjects = {
            EVENT_KEY: f"{events_topic}-key",
            CHANGE_EVENT: f"{events_topic}-value",
            SYNC_CHECKPOINT: f"{checkpoints_topic}-value",
        }
        self._ours = {name: parse_schema(load_schema(name)) for name in self._subjects}
        self._writers: dict[str, tuple[bytes, Any]] = {}  # name -> (prefix, parsed writer)
        self._by_id: dict[tuple[str, int], Any] = {}  # (name, id) -> parsed writer or None
        self._change_writer = ChangeWriter(load_schema(CHANGE_EVENT))

    @property
    def subjects(self) -> Mapping[str, str]:
        """Schema name -> registry subject."""
        return dict(self._subjects)

    def _writer(self, name: str) -> tuple[bytes, Any]:
        found = self._writers.get(name)
        if found is None:
            found = self._writers[name] = self._resolve_writer(name)
        return found

    def _resolve_writer(self, name: str) -> tuple[bytes, Any]:
        subject = self._subjects[name]
        schema = Schema(schema_json(name), "AVRO")
        try:
            if self._use_latest:
                latest = self._client.get_latest_version(subject)
                schema_id = latest.schema_id
                parsed = parse_schema(json.loads(latest.schema.schema_str or "null"))
                if _same_schema(parsed, self._ours[name]):
                    parsed = self._ours[name]
            elif self._auto_register:
                if self._is_new_subject(subject):
                    backward = ServerConfig(compatibility=ConfigCompatibilityLevel.BACKWARD)
                    self._client.set_config(subject, backward)
                schema_id = self._client.register_schema(subject, schema)
                parsed = self._ours[name]
            else:
                schema_id = self._client.lookup_schema(subject, schema).schema_id
                parsed = self._ours[name]
        except SchemaRegistryError as exc:
            raise _translate(exc, subject) from exc
        if schema_id is None:
            raise SchemaRegistrationError(f"no schema id for {subject}", subject=subject)
        self._by_id[(name, schema_id)] = None if parsed is self._ours[name] else parsed
        return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big"), parsed

    def _is_new_subject(self, subject: str) -> bool:
        try:
            return not self._client.get_versions(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return True
            raise

    def _reader_for(self, name: str, schema_id: int) -> Any:
        key = (name, schema_id)
        if key not in self._by_id:
            subject = self._subjects[name]
            try:
                registered = self._client.get_schema(schema_id)
            except SchemaRegistryError as exc:
                raise _translate(exc, subject) from exc
            writer = parse_schema(json.loads(registered.schema_str or "null"))
            ours = self._ours[name]
            self._by_id[key] = None if _same_schema(writer, ours) else writer
        return self._by_id[key]

    def _encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        prefix, parsed = self._writer(name)
        return _write(prefix, parsed, record)

    def _decode(self, name: str, data: bytes) -> Any:
        if data[:1] != CONFLUENT_MAGIC or len(data) < 5:
            raise DecodeError("not in the Confluent wire format", reason="bad-marker")
        writer = self._reader_for(name, int.from_bytes(data[1:5], "big"))
        if writer is None:
            return _read(data, 5, self._ours[name], None)
        return _read(data, 5, writer, self._ours[name])

    def encode_key(self, calendar_id: str, event_id: str | None) -> bytes:
        return self._encode(EVENT_KEY, {"calendar_id": calendar_id, "event_id": event_id})

    def decode_key(self, data: bytes) -> tuple[str, str | None]:
        rec = self._decode(EVENT_KEY, data)
        return rec["calendar_id"], rec["event_id"]

    def encode_change(self, change: ChangeEvent) -> bytes:
        prefix, parsed = self._writer(CHANGE_EVENT)
        if parsed is not self._ours[CHANGE_EVENT]:  # use_latest_version gave another schema
            return _write(prefix, parsed, change_to_record(change))
        out = bytearray(prefix)
        self._change_writer(change, out)
        return bytes(out)

    def decode_change(self, data: bytes) -> ChangeEvent:
        return record_to_change(self._decode(CHANGE_EVENT, data))

    def encode_checkpoint(self, checkpoint: Checkpoint) -> bytes:
        return self._encode(SYNC_CHECKPOINT, checkpoint_to_record(checkpoint))

    def decode_checkpoint(self, data: bytes) -> Checkpoint:
        return record_to_checkpoint(self._decode(SYNC_CHECKPOINT, data))


def _same_schema(a: Any, b: Any) -> bool:
    return bool(to_parsing_canonical_form(a) == to_parsing_canonical_form(b))


def _translate(exc: SchemaRegistryError, subject: str) -> ConnectorError:
    """Registry errors: unreachable or 5xx is retriable, anything else is a refusal."""
    status = exc.http_status_code
    if status is None or status < 0 or status >= 500 or status == 429:
        return RetriableError(f"schema registry: {exc.error_message}", status=status)
    return SchemaRegistrationError(
        f"schema registry refused {subject}: {exc.error_message}", subject=subject, status=status
    )


def make_codec(
    schema_registry_url: str | None,
    conf: Mapping[str, str],
    events_topic: str,
    checkpoints_topic: str,
) -> Codec:
    """The codec the configuration asks for: single-object encoding without a registry URL.

    ``conf`` goes to the registry client, except the serializer options
    ``auto.register.schemas`` (default true) and ``use.latest.version`` (default false).
    """
    if not schema_registry_url:
        return SingleObjectCodec()
    options: dict[str, Any] = dict(conf)
    auto = str(options.pop("auto.register.schemas", "true")).lower() == "true"
    latest = str(options.pop("use.latest.version", "false")).lower() == "true"
    options["url"] = schema_registry_url
    client = SchemaRegistryClient.new_client(options)
    return RegistryCodec(
        client,
        events_topic,
        checkpoints_topic,
        auto_register=auto,
        use_latest_version=latest,
    )
