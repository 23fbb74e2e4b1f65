"""``gcal-kafka materialize`` end to end, into SQLite and into a real PostgreSQL server.

The real connector syncs the emulator into the real broker; the materializer reads the topic
and its table must equal what the emulator says each calendar holds, after deletions, recurring
exceptions (a cancelled occurrence stays as a ``cancelled`` row) and a 410 resync that drops
an event deleted while the token was invalid. The second test SIGKILLs a ``gcal-kafka
materialize`` subprocess mid-stream again and again: since rows and offsets are committed
together, the table still ends exactly equal and every row comes from the latest record of its
key, with the stored offsets at the end of the topic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector import wiring
from connector.config import Settings
from connector.consumer import ChangeRecord
from connector.emulator.server import EmulatorServer
from connector.materialize.runner import Materializer
from connector.materialize.source import AssignedChangeReader
from connector.materialize.stores import SqlStore, open_store
from tests.integration.conftest_pg import (  # noqa: F401 (fixtures, used by name)
    postgres_server_fixture,
    postgres_url_fixture,
)
from tests.integration.engine import (
    RunningConnector,
    credentials_file,
    dataset,
    emulator_events,
    event,
    google,
    in_sync,
    observed,
    resets_done,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration
ALICE = "alice@example.com"
TEAM = "team1@group.calendar.google.com"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    return str(request.getfixturevalue("postgres_url"))


def materialize(settings: Settings, url: str) -> SqlStore:
    """Run the materializer in-process until the topic is drained; returns its open store."""
    topic = wiring.topic_names(settings).events
    reader = AssignedChangeReader(wiring.kafka_conf(settings), topic, wiring.codec_for(settings))
    m = Materializer(reader, open_store(url), topic, batch_size=50, poll_timeout=0.5)
    m.run(idle_exit=2.0)
    reader.close()
    return m.store


def query(store: SqlStore, sql: str) -> list[tuple[Any, ...]]:
    cur = store._conn.cursor()
    cur.execute(sql)
    rows = [tuple(r) for r in cur.fetchall()]
    store._conn.commit()
    return rows


def assert_exact(store: SqlStore, records: list[ChangeRecord]) -> None:
    """Every row comes from the newest record of its key; offsets sit at the end of the topic."""
    latest: dict[tuple[str, str], tuple[int, int] | None] = {}
    ends: dict[int, int] = {}
    for r in records:
        ends[r.partition] = max(ends.get(r.partition, 0), r.offset + 1)
        if r.event_id is not None:
            latest[(r.calendar_id, r.event_id)] = (
                None if r.change is None else (r.partition, r.offset)
            )
    rows = query(store, "SELECT calendar_id, event_id, kafka_partition, kafka_offset FROM events")
    assert rows
    for calendar_id, event_id, partition, offset in rows:
        assert latest[(calendar_id, event_id)] == (partition, offset), (calendar_id, event_id)
    assert store.offsets(records[0].topic) == ends


def matches_emulator(
    store: SqlStore, emulator: EmulatorServer, calendars: list[str]
) -> dict[str, dict[str, Any]]:
    """Asserts the table holds exactly each calendar's events; returns the emulator's view."""
    expected = {cal: emulator_events(emulator, cal) for cal in calendars}
    for cal in calendars:
        assert store.events(cal) == expected[cal], f"table differs for {cal}"
    return expected


def test_table_equals_the_emulator_after_deletions_exceptions_and_a_410(
    kafka_bootstrap: str,
    topic_prefix: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    database_url: str,
) -> None:
    series = event(
        "series1",
        "Standup",
        day=2,
        recurrence=["RRULE:FREQ=DAILY;COUNT=7"],
        start={"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        end={"dateTime": "2026-03-02T09:15:00+01:00", "timeZone": "Europe/Berlin"},
    )
    emulator.control.seed(
        dataset(
            {
                ALICE: [*[event(f"e{i}", f"E{i}", day=1 + i) for i in range(6)], series],
                TEAM: [event(f"t{i}", f"T{i}") for i in range(3)],
            }
        )
    )
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, calendars=[ALICE, TEAM]
    )
    calendars = [ALICE, TEAM]
    with RunningConnector(settings) as running:
        wait_for(resets_done(settings, 2), what="both first full syncs")
        store = materialize(settings, database_url)
        matches_emulator(store, emulator, calendars)
        store.close()

        api = google(emulator).events()
        api.insert(calendarId=ALICE, body=event("fresh1", "New", day=9)).execute()
        api.patch(calendarId=ALICE, eventId="e1", body={"summary": "Renamed"}).execute()
        api.delete(calendarId=ALICE, eventId="e2").execute()
        moved = "series1_20260303T080000Z"
        api.patch(calendarId=ALICE, eventId=moved, body={"summary": "Standup (late)"}).execute()
        cancelled = "series1_20260304T080000Z"
        api.patch(calendarId=ALICE, eventId=cancelled, body={"status": "cancelled"}).execute()
        api.delete(calendarId=TEAM, eventId="t1").execute()
        wait_for(in_sync(settings, emulator, ALICE), what="alice's changes on the topic")
        wait_for(in_sync(settings, emulator, TEAM), what="the team change on the topic")

        # A 410: e3 is deleted and purged while the token is invalid; only RESET_END drops it.
        api.delete(calendarId=ALICE, eventId="e3").execute()
        emulator.control.invalidate_tokens(ALICE)
        emulator.control.purge()
        running.service.trigger(f"alice/{ALICE}")
        wait_for(resets_done(settings, 3), what="the resync after 410")
        wait_for(in_sync(settings, emulator, ALICE), what="the resync on the topic")

    store = materialize(settings, database_url)  # resumes from the stored offsets
    expected = matches_emulator(store, emulator, calendars)
    assert {"e2", "e3"}.isdisjoint(store.events(ALICE))
    assert "t1" not in store.events(TEAM)
    assert expected[ALICE][cancelled]["status"] == "cancelled"
    rows = query(store, "SELECT event_id, status, recurring_event_id, generation FROM events")
    assert (cancelled, "cancelled", "series1", 2) in rows
    assert len(rows) == sum(len(v) for v in expected.values())
    assert_exact(store, observed(settings))
    store.close()


def start_materializer(config: Path, url: str, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "connector.cli",
                "materialize",
                "--config",
                str(config),
                "--to",
                url,
                "--batch-size",
                "20",
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def committed(url: str) -> int:
    """Sum of the stored next offsets (0 before the first commit)."""
    store = open_store(url)
    try:
        return sum(sum(store.offsets(t).values()) for t in _topics(store))
    finally:
        store.close()


def _last_per_partition(records: list[ChangeRecord]) -> list[ChangeRecord]:
    return list({r.partition: r for r in records}.values())


def _topics(store: SqlStore) -> list[str]:
    return [t for (t,) in query(store, "SELECT DISTINCT topic FROM kafka_offsets")]


def test_sigkill_mid_stream_and_restart_still_exactly_equal(
    kafka_bootstrap: str,
    topic_prefix: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    database_url: str,
) -> None:
    emulator.control.seed(
        dataset({ALICE: [event(f"b{i:04d}", f"B{i}", day=1 + i % 28) for i in range(1500)]})
    )
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    config = tmp_path / "config.yaml"
    raw = settings.model_dump(mode="json", exclude_none=True)
    raw["accounts"][0]["credentials"]["path"] = str(credentials_file(tmp_path))
    config.write_text(yaml.safe_dump(raw))
    log = tmp_path / "materialize.log"
    api = google(emulator).events()
    kills = mid_stream = 0
    with RunningConnector(settings) as running:
        wait_for(resets_done(settings, 1), what="the first full sync")
        for round_ in range(4):
            before = committed(database_url) if round_ else 0
            proc = start_materializer(config, database_url, log)
            try:
                wait_for(
                    lambda before=before: committed(database_url) > before,  # type: ignore[misc]
                    what="a committed batch",
                )
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
            kills += 1
            topic_end = sum(r.offset + 1 for r in _last_per_partition(observed(settings)))
            mid_stream += committed(database_url) < topic_end
            for i in range(round_ * 40, round_ * 40 + 40):
                api.patch(calendarId=ALICE, eventId=f"b{i:04d}", body={"summary": "v2"}).execute()
            api.delete(calendarId=ALICE, eventId=f"b{1400 + round_:04d}").execute()
            if round_ == 1:
                emulator.control.invalidate_tokens(ALICE)
                running.service.trigger(f"alice/{ALICE}")
                wait_for(resets_done(settings, 2), what="the resync after 410")
        wait_for(in_sync(settings, emulator, ALICE), what="the topic to catch up")
    proc = start_materializer(config, database_url, log, "--exit-when-idle", "3")
    assert proc.wait(120) == 0, log.read_text()[-3000:]
    assert kills == 4 and mid_stream >= 1
    store = open_store(database_url)
    matches_emulator(store, emulator, [ALICE])
    assert_exact(store, observed(settings))
    store.close()
    # SIGTERM stops cleanly (exit 0) after committing the batch under way.
    proc = start_materializer(config, database_url, log)
    time.sleep(3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()[-3000:]
