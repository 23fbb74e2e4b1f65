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
from collections.abc import Mapping
from io import BytesIO
from typing import Any, Protocol

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from connector.adapters.avro_fastpath import write_string, zigzag
from connector.adapters.avro_records import (
    ChangeReader,
    ChangeWriter,
    DecodeError,
    UnknownSchemaError,
    change_to_record,
    checkpoint_to_record,
    record_to_change,
    record_to_checkpoint,
)
from connector.adapters.avro_schemas import (
    CHANGE_EVENT,
    EVENT_KEY,
    SYNC_CHECKPOINT,
    load_schema,
    schema_json,
    strip_logical_types,
)
from connector.core.records import ChangeEvent, Checkpoint
from connector.errors import ConnectorError, RetriableError

try:
    from confluent_kafka.schema_registry import (
        ConfigCompatibilityLevel,
        Schema,
        SchemaRegistryClient,
        SchemaRegistryError,
        ServerConfig,
    )
    from httpx2 import TransportError  # the registry client's HTTP transport
except ImportError as _exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "confluent_kafka.schema_registry needs confluent-kafka[schemaregistry]"
    ) from _exc

_REGISTRY_ERRORS = (SchemaRegistryError, TransportError)

SINGLE_OBJECT_MARKER = b"\xc3\x01"
# The union's string branch (b"\x02") and a short string's length.
_SMALL_UNION = tuple(b"\x02" + zigzag(n) for n in range(4096))
CONFLUENT_MAGIC = b"\x00"


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
        self._change_reader = ChangeReader(load_schema(CHANGE_EVENT))
        self._key_heads: dict[str, bytes] = {}

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
        # EventKey written directly (fastavro costs ~4 us a key); the marker and calendar_id
        # part is the same for every key of a calendar.
        head = self._key_heads.get(calendar_id)
        if head is None:
            out = bytearray(self._prefix[EVENT_KEY])
            write_string(out, calendar_id)
            head = self._key_heads[calendar_id] = bytes(out)
        if event_id is None:
            return head + b"\x00"
        body = event_id.encode()
        n = len(body)
        return head + (_SMALL_UNION[n] if n < 4096 else b"\x02" + zigzag(n)) + body

    def decode_key(self, data: bytes) -> tuple[str, str | None]:
        rec = self._decode(EVENT_KEY, data)
        return rec["calendar_id"], rec["event_id"]

    def encode_change(self, change: ChangeEvent) -> bytes:
        out = bytearray(self._prefix[CHANGE_EVENT])
        self._change_writer(change, out)
        return bytes(out)

    def decode_change(self, data: bytes) -> ChangeEvent:
        if data[2:10] == self._prefix[CHANGE_EVENT][2:] and data[:2] == SINGLE_OBJECT_MARKER:
            return self._change_reader(data, 10)
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
        self._change_reader = ChangeReader(load_schema(CHANGE_EVENT))

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
        except _REGISTRY_ERRORS as exc:
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
                if exc.http_status_code == 404:
                    raise UnknownSchemaError(
                        f"{subject}: schema id {schema_id} is not in the registry",
                        reason="unknown-schema",
                    ) from exc
                raise _translate(exc, subject) from exc
            except TransportError as exc:
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
        if data[:1] == CONFLUENT_MAGIC and len(data) >= 5:
            schema_id = int.from_bytes(data[1:5], "big")
            if self._reader_for(CHANGE_EVENT, schema_id) is None:  # written with our schema
                return self._change_reader(data, 5)
        return record_to_change(self._decode(CHANGE_EVENT, data))

    def encode_checkpoint(self, checkpoint: Checkpoint) -> bytes:
        return self._encode(SYNC_CHECKPOINT, checkpoint_to_record(checkpoint))

    def decode_checkpoint(self, data: bytes) -> Checkpoint:
        return record_to_checkpoint(self._decode(SYNC_CHECKPOINT, data))


def _same_schema(a: Any, b: Any) -> bool:
    return bool(to_parsing_canonical_form(a) == to_parsing_canonical_form(b))


def _translate(exc: SchemaRegistryError | TransportError, subject: str) -> ConnectorError:
    """Registry errors: unreachable, 429 or 5xx is retriable, anything else is a refusal."""
    if isinstance(exc, TransportError):
        return RetriableError(f"schema registry unreachable: {exc}")
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
