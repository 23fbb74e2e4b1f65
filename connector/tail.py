"""``gcal-kafka tail``: read change events as a person would (or as JSON lines).

Reads with read_committed, decodes with the configured codec (single-object encoding or the
Schema Registry), and prints one line per record: time, op, generation, stream, summary and
start of the event. Filters by stream and op. ``--follow`` keeps reading; otherwise it stops
once the topic is idle.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from connector.consumer import ChangeReader, ChangeRecord
from connector.core.records import Op

_COLOURS = {
    "CREATED": "\033[32m",
    "UPDATED": "\033[33m",
    "CANCELLED": "\033[31m",
    "RESET_BEGIN": "\033[36m",
    "RESET_END": "\033[36m",
    "TOMBSTONE": "\033[90m",
}
_RESET = "\033[0m"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stream", action="append", help="only this stream (repeatable)")
    parser.add_argument(
        "--op",
        action="append",
        choices=[*[o.value for o in Op], "TOMBSTONE"],
        help="only this op (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the beginning of the topic (default: new records only)",
    )
    parser.add_argument(
        "--follow", "-f", action="store_true", help="keep waiting for new records (Ctrl-C to stop)"
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=5.0,
        help="without --follow, stop after this long with nothing new",
    )


def _when(dt: Mapping[str, Any] | None) -> str:
    if not dt:
        return ""
    return str(dt.get("dateTime") or dt.get("date") or "")


def to_json(record: ChangeRecord) -> dict[str, Any]:
    change = record.change
    base: dict[str, Any] = {
        "partition": record.partition,
        "offset": record.offset,
        "calendar_id": record.calendar_id,
        "event_id": record.event_id,
    }
    if change is None:
        return {**base, "op": "TOMBSTONE"}
    return {
        **base,
        "op": change.op.value,
        "generation": change.generation,
        "stream_id": change.stream.stream_id,
        "phase": change.phase.value,
        "trigger": change.trigger.value,
        "published_at_ms": change.published_at_ms,
        "source_updated_at_ms": change.source_updated_at_ms,
        "reason": change.reason.value if change.reason else None,
        "event_count": change.event_count,
        "event": dict(change.event) if change.event is not None else None,
    }


def to_line(record: ChangeRecord, colour: bool) -> str:
    change = record.change
    op = "TOMBSTONE" if change is None else change.op.value
    paint = (_COLOURS.get(op, ""), _RESET) if colour else ("", "")
    if change is None:
        return f"{paint[0]}{op:11}{paint[1]} {record.calendar_id} {record.event_id}"
    published = datetime.fromtimestamp(change.published_at_ms / 1000, UTC).strftime("%H:%M:%S")
    head = (
        f"{published} {paint[0]}{op:11}{paint[1]} g{change.generation:<3} {change.stream.stream_id}"
    )
    if op == "RESET_BEGIN":
        reason = change.reason.value if change.reason else "?"
        return f"{head}  reason={reason} ({change.trigger.value})"
    if op == "RESET_END":
        return f"{head}  {change.event_count} events in this generation"
    event = change.event or {}
    summary = event.get("summary") or ("(occurrence)" if event.get("recurringEventId") else "")
    start = _when(event.get("start")) or _when(event.get("originalStartTime"))
    return f"{head}  {summary!s:40.40} {start}  [{record.event_id}]"


def wanted(record: ChangeRecord, streams: set[str] | None, ops: set[str] | None) -> bool:
    change = record.change
    op = "TOMBSTONE" if change is None else change.op.value
    if ops and op not in ops:
        return False
    return not streams or (change is not None and change.stream.stream_id in streams)


def run(reader: ChangeReader, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    streams = set(args.stream) if args.stream else None
    ops = set(args.op) if args.op else None
    colour = out.isatty() and not args.json
    idle = 0.0
    try:
        while True:
            batch = reader.poll(1.0)
            if not batch:
                idle += 1.0
                if not args.follow and idle >= args.idle_seconds:
                    return 0
                continue
            idle = 0.0
            for record in batch:
                if not wanted(record, streams, ops):
                    continue
                if args.json:
                    out.write(json.dumps(to_json(record), ensure_ascii=False) + "\n")
                else:
                    out.write(to_line(record, colour) + "\n")
            out.flush()
    except KeyboardInterrupt:
        return 0
    finally:
        reader.close()
