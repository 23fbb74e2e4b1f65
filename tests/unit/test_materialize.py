"""The materializer without Kafka: rows, the SQLite store, batching, offsets and restarts.

A ``FakeSource`` serves records from lists the way an assigned consumer would (from the offsets
it is started with); the oracle is ``connector.consumer.InMemoryStore``, the rebuild rule itself.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connector.consumer import ChangeRecord, InMemoryStore, apply
from connector.core.records import ChangeEvent, Op, Phase, StreamRef, Trigger
from connector.errors import ConfigError, RetriableError
from connector.materialize.rows import parse_when, to_row
from connector.materialize.runner import Materializer
from connector.materialize.stores import open_store

TOPIC = "gcal.events"
CAL = "alice@example.com"
TEAM = "team@group.calendar.google.com"
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def change(op: Op, gen: int, item: Mapping[str, Any] | None = None, cal: str = CAL) -> ChangeEvent:
    return ChangeEvent(
        op=op,
        stream=StreamRef(f"alice/{cal}", "alice", cal),
        generation=gen,
        phase=Phase.FULL,
        trigger=Trigger.STARTUP,
        published_at_ms=1_773_000_000_000,
        event_id=None if item is None else item["id"],
        event=item,
    )


def item(event_id: str, summary: str = "x", **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "status": "confirmed",
        "summary": summary,
        "created": "2026-03-01T08:00:00.000Z",
        "updated": "2026-03-01T08:30:00.000Z",
        "start": {"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-02T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        **extra,
    }


EXCEPTION = {
    "id": "series1_20260304T080000Z",
    "status": "cancelled",
    "recurringEventId": "series1",
    "originalStartTime": {"dateTime": "2026-03-04T09:00:00+01:00", "timeZone": "Europe/Berlin"},
}


def scenario() -> dict[int, list[tuple[str, str | None, ChangeEvent | None]]]:
    """Two partitions: alice's calendar with a 410 resync in 0, a team calendar in 1."""
    series = item("series1", "Standup", recurrence=["RRULE:FREQ=DAILY;COUNT=5"])
    return {
        0: [
            (CAL, None, change(Op.RESET_BEGIN, 1)),
            *[(CAL, f"e{i}", change(Op.CREATED, 1, item(f"e{i}"))) for i in range(6)],
            (CAL, "series1", change(Op.CREATED, 1, series)),
            (CAL, None, change(Op.RESET_END, 1)),
            (CAL, "e1", change(Op.UPDATED, 1, item("e1", "renamed"))),
            (CAL, "e2", change(Op.CANCELLED, 1, {"id": "e2", "status": "cancelled"})),
            (CAL, "e2", None),
            (CAL, EXCEPTION["id"], change(Op.CANCELLED, 1, EXCEPTION)),
            # 410: generation 2 no longer has e3 (deleted while the token was invalid).
            (CAL, None, change(Op.RESET_BEGIN, 2)),
            *[(CAL, f"e{i}", change(Op.UPDATED, 2, item(f"e{i}"))) for i in (0, 1, 4, 5)],
            (CAL, "series1", change(Op.UPDATED, 2, series)),
            (CAL, EXCEPTION["id"], change(Op.UPDATED, 2, EXCEPTION)),
            (CAL, None, change(Op.RESET_END, 2)),
        ],
        1: [
            (TEAM, None, change(Op.RESET_BEGIN, 1, cal=TEAM)),
            (TEAM, "allday", change(Op.CREATED, 1, _all_day(), cal=TEAM)),
            (TEAM, None, change(Op.RESET_END, 1, cal=TEAM)),
        ],
    }


def _all_day() -> dict[str, Any]:
    return {"id": "allday", "status": "confirmed", "summary": "Offsite",
            "start": {"date": "2026-03-05"}, "end": {"date": "2026-03-06"}}  # fmt: skip


class FakeSource:
    """Serves each partition's records from the offset it is started at, interleaved."""

    def __init__(self, partitions: dict[int, list[tuple[str, str | None, ChangeEvent | None]]]):
        self.records = {
            p: [ChangeRecord(TOPIC, p, off, *rec) for off, rec in enumerate(recs)]
            for p, recs in partitions.items()
        }
        self.position: dict[int, int] = {}
        self.delivered = 0
        self.fail_on_poll: int | None = None
        self.polls = 0
        self.closed = 0

    def start(self, offsets: Mapping[int, int]) -> list[int]:
        self.position = {p: offsets.get(p, 0) for p in self.records}
        return sorted(self.records)

    def poll(self, timeout: float, max_records: int) -> list[ChangeRecord]:
        self.polls += 1
        out: list[ChangeRecord] = []
        while len(out) < max_records:
            moved = False
            for p, recs in self.records.items():
                if self.position[p] < len(recs) and len(out) < max_records:
                    out.append(recs[self.position[p]])
                    self.position[p] += 1
                    moved = True
            if not moved:
                break
        if self.polls == self.fail_on_poll:
            raise RetriableError("broker went away mid-batch")
        self.delivered += len(out)
        return out

    def close(self) -> None:
        self.closed += 1


def oracle() -> InMemoryStore:
    store = InMemoryStore()
    for recs in FakeSource(scenario()).records.values():
        for record in recs:
            apply(store, record)
    return store


def materializer(url: str, source: FakeSource, batch: int = 4) -> Materializer:
    return Materializer(
        source, open_store(url, now=lambda: NOW), TOPIC, batch_size=batch, poll_timeout=0
    )


def drain(m: Materializer) -> None:
    while m.step():
        pass


def test_rows_have_typed_columns_for_timed_all_day_and_cancelled_exceptions() -> None:
    timed = to_row(CAL, "e1", change(Op.CREATED, 3, item("e1")), applied_at=NOW)
    assert timed.start_value == "2026-03-02T09:00:00+01:00"
    assert timed.start_utc == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert timed.end_utc == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert (timed.all_day, timed.time_zone, timed.generation) == (False, "Europe/Berlin", 3)
    assert timed.source_updated_at == datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert json.loads(timed.event) == item("e1")
    day = to_row(TEAM, "allday", change(Op.CREATED, 1, _all_day(), cal=TEAM), applied_at=NOW)
    assert (day.start_value, day.start_utc, day.all_day) == ("2026-03-05", None, True)
    exc = to_row(CAL, EXCEPTION["id"], change(Op.CANCELLED, 1, EXCEPTION), applied_at=NOW)
    assert (exc.status, exc.recurring_event_id, exc.start_value) == ("cancelled", "series1", None)
    assert exc.original_start_utc == datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    assert parse_when({"dateTime": "not a time"}) == ("not a time", None, None)


def test_sqlite_table_follows_the_rebuild_rule(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cal.db"
    m = materializer(url, FakeSource(scenario()))
    drain(m)
    expected = oracle()
    for cal in (CAL, TEAM):
        assert m.store.events(cal) == expected.live(cal)
    assert set(m.store.events(CAL)) == {"e0", "e1", "e4", "e5", "series1", EXCEPTION["id"]}
    db = sqlite3.connect(tmp_path / "cal.db")
    status, gen, original = db.execute(
        "SELECT status, generation, original_start_utc FROM events WHERE event_id = ?",
        (EXCEPTION["id"],),
    ).fetchone()
    assert (status, gen, original) == ("cancelled", 2, "2026-03-04T08:00:00.000+00:00")
    assert db.execute("SELECT * FROM kafka_offsets ORDER BY kafka_partition").fetchall() == [
        (TOPIC, 0, 21, "2026-03-10T12:00:00.000+00:00"),
        (TOPIC, 1, 3, "2026-03-10T12:00:00.000+00:00"),
    ]
    db.close()
    m.close()


def test_a_crash_before_commit_resumes_at_the_last_batch_boundary(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cal.db"
    first = FakeSource(scenario())
    m = materializer(url, first)
    m.step()
    m.step()
    # A third batch applied but not committed, then the process dies.
    for record in first.poll(0, 4):
        m.store.position(record.partition, record.offset)
        apply(m.store, record)
    m.store._flush()
    m.close()
    second = FakeSource(scenario())
    again = materializer(url, second)
    drain(again)
    total = sum(len(r) for r in second.records.values())
    assert second.delivered == total - 8  # the two committed batches are never read again
    expected = oracle()
    assert again.store.events(CAL) == expected.live(CAL)
    assert again.store.events(TEAM) == expected.live(TEAM)
    assert again.store.offsets(TOPIC) == {0: 21, 1: 3}
    again.close()


def test_a_consumer_error_rereads_from_the_committed_offsets(tmp_path: Path) -> None:
    source = FakeSource(scenario())
    source.fail_on_poll = 3
    m = materializer(f"sqlite:///{tmp_path}/cal.db", source)
    m.stopped.wait = lambda timeout=None: False  # type: ignore[method-assign]
    m.run(idle_exit=0.0)
    assert source.closed == 1
    assert m.store.events(CAL) == oracle().live(CAL)
    assert m.store.offsets(TOPIC) == {0: 21, 1: 3}
    m.close()


def test_a_restart_with_nothing_new_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cal.db"
    m = materializer(url, FakeSource(scenario()))
    drain(m)
    m.close()
    source = FakeSource(scenario())
    again = materializer(url, source)
    assert again.step() == 0
    assert source.delivered == 0
    again.close()


@pytest.mark.parametrize("url", ["mysql://x", "sqlite:///", "events.db"])
def test_unknown_database_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        open_store(url)
