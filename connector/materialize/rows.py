"""A change event as a row of the ``events`` table: metadata columns, typed columns, the JSON.

Pure: no database, no clock (``applied_at`` is passed in). The typed columns are conveniences
for queries; the ``event`` column keeps Google's item exactly as published, which is what a
consumer compares and what the rebuild rule is defined over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.core.records import ChangeEvent

# Column order of the events table (and of ``EventRow.values``).
COLUMNS = (
    "calendar_id",
    "event_id",
    "stream_id",
    "account",
    "generation",
    "op",
    "status",
    "source_created_at",
    "source_updated_at",
    "published_at",
    "applied_at",
    "summary",
    "start_value",
    "start_utc",
    "end_value",
    "end_utc",
    "all_day",
    "time_zone",
    "recurring_event_id",
    "original_start_value",
    "original_start_utc",
    "kafka_partition",
    "kafka_offset",
    "event",
)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One row; timestamps are timezone-aware UTC datetimes (None when absent or unparsable)."""

    calendar_id: str
    event_id: str
    stream_id: str
    account: str
    generation: int
    op: str
    status: str | None
    source_created_at: datetime | None
    source_updated_at: datetime | None
    published_at: datetime
    applied_at: datetime
    summary: str | None
    start_value: str | None
    start_utc: datetime | None
    end_value: str | None
    end_utc: datetime | None
    all_day: bool | None
    time_zone: str | None
    recurring_event_id: str | None
    original_start_value: str | None
    original_start_utc: datetime | None
    kafka_partition: int
    kafka_offset: int
    event: str

    def values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in COLUMNS)


def to_row(
    calendar_id: str,
    event_id: str,
    change: ChangeEvent,
    *,
    applied_at: datetime,
    partition: int = -1,
    offset: int = -1,
) -> EventRow:
    """The row for a CREATED / UPDATED / CANCELLED record (``change.event`` is set)."""
    item: Mapping[str, Any] = change.event or {}
    start_value, start_utc, start_tz = parse_when(item.get("start"))
    end_value, end_utc, _ = parse_when(item.get("end"))
    original_value, original_utc, _ = parse_when(item.get("originalStartTime"))
    start = item.get("start")
    all_day = None if not isinstance(start, Mapping) else "date" in start
    return EventRow(
        calendar_id=calendar_id,
        event_id=event_id,
        stream_id=change.stream.stream_id,
        account=change.stream.account,
        generation=change.generation,
        op=change.op.value,
        status=_text(item.get("status")),
        source_created_at=parse_timestamp(item.get("created")),
        source_updated_at=parse_timestamp(item.get("updated")),
        published_at=datetime.fromtimestamp(change.published_at_ms / 1000, UTC),
        applied_at=applied_at,
        summary=_text(item.get("summary")),
        start_value=start_value,
        start_utc=start_utc,
        end_value=end_value,
        end_utc=end_utc,
        all_day=all_day,
        time_zone=start_tz,
        recurring_event_id=_text(item.get("recurringEventId")),
        original_start_value=original_value,
        original_start_utc=original_utc,
        kafka_partition=partition,
        kafka_offset=offset,
        event=json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    )


def parse_when(value: object) -> tuple[str | None, datetime | None, str | None]:
    """A Google ``EventDateTime`` as (date or dateTime text, UTC instant, time zone).

    An all-day date has no instant (it depends on the reader's time zone), so its UTC column is
    None; a dateTime always carries an offset in Google's output.
    """
    if not isinstance(value, Mapping):
        return None, None, None
    tz = _text(value.get("timeZone"))
    if isinstance(value.get("dateTime"), str):
        text = value["dateTime"]
        return text, parse_timestamp(text), tz
    if isinstance(value.get("date"), str):
        return value["date"], None, tz
    return None, None, tz


def parse_timestamp(value: object) -> datetime | None:
    """RFC 3339 text as an aware UTC datetime; None for anything else (no guessing a zone)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(UTC)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
