"""``connector.core.records`` <-> Avro: record dicts for fastavro, and fast ChangeEvent bodies.

The record dicts are used where fastavro writes or reads the bodies (checkpoints, keys, records
of other schema versions). ``ChangeWriter`` / ``ChangeReader`` write and read ``ChangeEvent``
bodies of our own schema directly (see ``avro_shapes`` and ``avro_fastpath``), several times
faster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connector.adapters.avro_fastpath import (
    MalformedAvroError,
    compile_reader,
    read_long,
    read_string,
    write_long,
    write_string,
    zigzag,
)
from connector.adapters.avro_shapes import SparseWriter
from connector.adapters.page_decoder import PreparedEvent
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
from connector.errors import ConnectorError


class DecodeError(ConnectorError):
    """Bytes on a topic that this codec cannot turn back into a record (``reason`` says why)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UnknownSchemaError(DecodeError):
    """The record was written with a schema this codec does not know (``fingerprint`` or id)."""


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


def to_enum(kind: Callable[[str], Any], value: str) -> Any:
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
        op=to_enum(Op, rec["op"]),
        stream=StreamRef(rec["stream_id"], rec["account"], rec["calendar_id"]),
        generation=rec["generation"],
        phase=to_enum(Phase, rec["phase"]),
        trigger=to_enum(Trigger, rec["trigger"]),
        published_at_ms=rec["published_at"],
        event_id=rec.get("event_id"),
        event=None if event is None else from_calendar_event(event),
        source_updated_at_ms=rec.get("source_updated_at"),
        reason=None if reason is None else to_enum(ResetReason, reason),
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
        phase=to_enum(Phase, rec["phase"]),
        query_fingerprint=rec["query_fingerprint"],
        sync_token=rec.get("sync_token"),
        page_token=rec.get("page_token"),
        reset_reason=None if reason is None else to_enum(ResetReason, reason),
        published_count=rec.get("published_count", 0),
        last_attempt_at_ms=rec.get("last_attempt_at"),
        last_success_at_ms=rec.get("last_success_at"),
        channel=None
        if channel is None
        else Channel(channel["id"], channel["resource_id"], channel["expiration"]),
        extra=dict(rec.get("extra") or {}),
    )


# --- fast ChangeEvent bodies ----------------------------------------------------------------

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
    """Writes a ``ChangeEvent`` body without fastavro, for our schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        if tuple(fields) != _ENVELOPE:
            raise ValueError("ChangeEvent schema fields differ from what ChangeWriter writes")
        self._op = _symbols(fields["op"])
        self._phase = _symbols(fields["phase"])
        self._trigger = _symbols(fields["trigger"])
        self._reason = _symbols(fields["reason"][1])
        self._event = SparseWriter().write  # the event body: code per shape of its records
        # The stream's three strings and the page's publish time repeat on every record of a
        # page: written once, reused (about 2 us a record).
        self._streams: dict[StreamRef, bytes] = {}
        self._published_at: tuple[int, bytes] = (-1, b"")

    def _stream(self, stream: StreamRef) -> bytes:
        found = self._streams.get(stream)
        if found is None:
            out = bytearray()
            write_string(out, stream.stream_id)
            write_string(out, stream.account)
            write_string(out, stream.calendar_id)
            found = bytes(out)
            if len(self._streams) >= 10_000:
                self._streams.clear()
            self._streams[stream] = found
        return found

    def __call__(self, change: ChangeEvent, out: bytearray) -> None:
        out += self._op[change.op]
        write_long(out, change.generation)
        out += self._stream(change.stream)
        _optional_string(out, change.event_id)
        out += self._phase[change.phase]
        out += self._trigger[change.trigger]
        at, at_bytes = self._published_at
        if at != change.published_at_ms:
            at = change.published_at_ms
            at_bytes = zigzag(at)
            self._published_at = (at, at_bytes)
        out += at_bytes
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
            if type(event) is PreparedEvent:
                out += event.avro_body  # written by a decoding process (page_decoder)
            else:
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


class ChangeReader:
    """Reads a ``ChangeEvent`` body of our own schema straight into a ``ChangeEvent``."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        fields = {f["name"]: f["type"] for f in schema["fields"]}
        if tuple(fields) != _ENVELOPE:
            raise ValueError("ChangeEvent schema fields differ from what ChangeReader reads")
        self._op = [to_enum_or_none(Op, s) for s in fields["op"]["symbols"]]
        self._phase = [to_enum_or_none(Phase, s) for s in fields["phase"]["symbols"]]
        self._trigger = [to_enum_or_none(Trigger, s) for s in fields["trigger"]["symbols"]]
        self._reason = [to_enum_or_none(ResetReason, s) for s in fields["reason"][1]["symbols"]]
        self._event = compile_reader()

    def __call__(self, d: bytes, p: int) -> ChangeEvent:
        """Decode ``d[p:]``; raises DecodeError if it is not exactly one body."""
        try:
            change, end = self._read(d, p)
        except (MalformedAvroError, IndexError, UnicodeDecodeError, ValueError) as exc:
            raise DecodeError(f"malformed Avro body: {exc}", reason="malformed") from exc
        if end != len(d):
            raise DecodeError("trailing bytes after the Avro body", reason="malformed")
        return change

    def _read(self, d: bytes, p: int) -> tuple[ChangeEvent, int]:
        op_index, p = read_long(d, p)
        generation, p = read_long(d, p)
        stream_id, p = read_string(d, p)
        account, p = read_string(d, p)
        calendar_id, p = read_string(d, p)
        event_id, p = _read_optional(d, p, read_string)
        phase_index, p = read_long(d, p)
        trigger_index, p = read_long(d, p)
        published_at, p = read_long(d, p)
        source_updated_at, p = _read_optional(d, p, read_long)
        reason_index, p = _read_optional(d, p, read_long)
        event_count, p = _read_optional(d, p, read_long)
        event: dict[str, Any] | None = None
        if _present(d, p):
            event, p = self._event(d, p + 1)
        else:
            p += 1
        change = ChangeEvent(
            op=_symbol(self._op, op_index),
            stream=StreamRef(stream_id, account, calendar_id),
            generation=generation,
            phase=_symbol(self._phase, phase_index),
            trigger=_symbol(self._trigger, trigger_index),
            published_at_ms=published_at,
            event_id=event_id,
            event=event,
            source_updated_at_ms=source_updated_at,
            reason=None if reason_index is None else _symbol(self._reason, reason_index),
            event_count=event_count,
        )
        return change, p


def to_enum_or_none(kind: Callable[[str], Any], value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        return None


def _symbol(symbols: list[Any], index: int) -> Any:
    if not 0 <= index < len(symbols):
        raise MalformedAvroError(f"enum index {index} out of range")
    found = symbols[index]
    if found is None:
        raise DecodeError("an enum symbol is unknown to this version", reason="unknown-symbol")
    return found


def _present(d: bytes, p: int) -> bool:
    b = d[p]
    if b not in (0, 2):
        raise MalformedAvroError(f"bad union index byte {b}")
    return b == 2


def _read_optional(d: bytes, p: int, read: Callable[[bytes, int], tuple[Any, int]]) -> Any:
    if _present(d, p):
        return read(d, p + 1)
    return None, p + 1
