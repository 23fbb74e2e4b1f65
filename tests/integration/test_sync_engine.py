"""The sync engine end to end: real Kafka broker, emulator over HTTP, the real connector.

Each scenario asserts the exact records a read_committed consumer sees, and that a consumer
applying the contract's rebuild rule ends with exactly the emulator's calendar.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from connector.adapters.kafka_records import HEADER_GENERATION, HEADER_OP, HEADER_STREAM, header
from connector.core.partitioning import partition_for
from connector.core.records import Op, ResetReason
from connector.emulator.server import EmulatorServer
from tests.integration.engine import (
    RunningConnector,
    after,
    close_clients,
    dataset,
    emulator_events,
    event,
    google,
    in_sync,
    observed,
    ops,
    rebuilt,
    resets_done,
    settings_for,
    wait_for,
)
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.integration
ALICE = "alice@example.com"


def test_full_pass_over_several_pages_then_incremental_changes(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    many = [
        event(f"bulk{i:05d}", f"event {i}", day=1 + i % 28, hour=8 + i % 10) for i in range(5200)
    ]
    series = event(
        "standup1",
        "Standup",
        day=2,
        recurrence=["RRULE:FREQ=DAILY;COUNT=10"],
        start={"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin"},
        end={"dateTime": "2026-03-02T09:15:00+01:00", "timeZone": "Europe/Berlin"},
    )
    emulator.control.seed(dataset({ALICE: [*many, series]}))
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the first full sync")
        first = observed(settings)
        assert ops(first)[0] == ("RESET_BEGIN", None, 1)
        assert ops(first)[-1] == ("RESET_END", None, 1)
        created = [r for r in first if r.change and r.change.op is Op.CREATED]
        assert len(created) == 5201 and len({r.event_id for r in created}) == 5201
        end = first[-1].change
        assert end is not None and end.event_count == 5201
        begin = first[0].change
        assert begin is not None and begin.reason is ResetReason.INITIAL
        # Every record of the calendar, markers included, in the calendar's partition.
        assert {r.partition for r in first} == {partition_for(ALICE, 3)}

        api = google(emulator).events()
        api.insert(calendarId=ALICE, body=event("fresh1", "New")).execute()
        api.patch(calendarId=ALICE, eventId="bulk00007", body={"summary": "Renamed"}).execute()
        api.delete(calendarId=ALICE, eventId="bulk00008").execute()
        instance = "standup1_20260303T080000Z"
        api.patch(calendarId=ALICE, eventId=instance, body={"summary": "Standup (late)"}).execute()
        api.patch(
            calendarId=ALICE, eventId="standup1_20260304T080000Z", body={"status": "cancelled"}
        ).execute()
        wait_for(in_sync(settings, emulator, ALICE), what="the incremental changes")
        later = ops(after(observed(settings), first))
        assert Counter(later) == Counter(
            [
                ("CREATED", "fresh1", 1),
                ("UPDATED", "bulk00007", 1),
                ("CANCELLED", "bulk00008", 1),
                ("TOMBSTONE", "bulk00008", -1),
                ("CREATED", instance, 1),
                ("CANCELLED", "standup1_20260304T080000Z", 1),
            ]
        )
        # The tombstone directly follows the deletion.
        assert (
            later.index(("TOMBSTONE", "bulk00008", -1))
            == later.index(("CANCELLED", "bulk00008", 1)) + 1
        )


def test_410_starts_a_new_generation_that_drops_what_was_deleted_meanwhile(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event(f"e{i}", f"E{i}") for i in range(5)]}))
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, sync={"poll_interval_seconds": 3600}
    )
    with RunningConnector(settings) as running:
        wait_for(resets_done(settings, 1), what="the first full sync")
        google(emulator).events().delete(calendarId=ALICE, eventId="e3").execute()
        emulator.control.invalidate_tokens(ALICE)
        emulator.control.purge()
        running.service.trigger(f"alice/{ALICE}")
        wait_for(resets_done(settings, 2), what="the resync after 410")
        records = observed(settings)
    second = [r for r in records if r.change is None or r.change.generation == 2]
    assert ops(second) == [
        ("RESET_BEGIN", None, 2),
        *[("CREATED", f"e{i}", 2) for i in (0, 1, 2, 4)],
        ("RESET_END", None, 2),
    ]
    begin = second[0].change
    assert begin is not None and begin.reason is ResetReason.TOKEN_INVALIDATED
    # No tombstone ever came for e3, yet the rebuilt copy no longer has it.
    assert rebuilt(records).live(ALICE) == emulator_events(emulator, ALICE)


def test_restart_resumes_from_kafka_with_exact_created_and_updated(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("keep1", "Keep"), event("edit1", "Edit")]}))
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the first full sync")
    api = google(emulator).events()
    api.patch(calendarId=ALICE, eventId="edit1", body={"summary": "Edited offline"}).execute()
    api.insert(calendarId=ALICE, body=event("later1", "Later")).execute()
    before = observed(settings)
    with RunningConnector(settings):
        wait_for(in_sync(settings, emulator, ALICE), what="the changes made while stopped")
    assert Counter(ops(after(observed(settings), before))) == Counter(
        [("UPDATED", "edit1", 1), ("CREATED", "later1", 1)]
    )


def test_changed_query_parameters_start_a_query_changed_generation(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("one11", "One")]}))
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the first full sync")
    changed = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, sync={"event_types": ["default"]}
    )
    with RunningConnector(changed):
        wait_for(resets_done(changed, 2), what="the QUERY_CHANGED resync")
    begins = [r.change for r in observed(settings) if r.change and r.change.op is Op.RESET_BEGIN]
    assert [(b.generation, b.reason) for b in begins] == [
        (1, ResetReason.INITIAL),
        (2, ResetReason.QUERY_CHANGED),
    ]


def test_a_deleted_calendar_gets_an_empty_generation(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    team = "team1@group.calendar.google.com"
    emulator.control.seed(dataset({ALICE: [event("mine1", "Mine")], team: [event("t1111", "T")]}))
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, calendars=[ALICE, team]
    )
    with RunningConnector(settings):
        wait_for(resets_done(settings, 2), what="both full syncs")
        google(emulator).calendars().delete(calendarId=team).execute()
        wait_for(resets_done(settings, 3), what="the CALENDAR_GONE generation")
        records = observed(settings)
    team_ops = [
        (r.change.op, r.change.reason)
        for r in records
        if r.calendar_id == team and r.change is not None and r.change.generation == 2
    ]
    assert team_ops == [(Op.RESET_BEGIN, ResetReason.CALENDAR_GONE), (Op.RESET_END, None)]
    store = rebuilt(records)
    assert store.live(team) == {}
    assert set(store.live(ALICE)) == {"mine1"}


def test_rate_limit_and_5xx_storm_still_delivers_everything_once(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event(f"s{i:04d}", f"S{i}") for i in range(30)]}))
    emulator.control.set_faults(
        {
            "faults": [
                {"route": "events.list", "error": "backendError", "count": 2},
                {"route": "events.list", "error": "userRateLimitExceeded", "count": 2},
                {"route": "events.list", "error": "503", "probability": 0.3},
            ],
            "seed": 3,
        }
    )
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), timeout=120, what="the full sync through the storm")
        emulator.control.clear_faults()
        google(emulator).events().patch(
            calendarId=ALICE, eventId="s0001", body={"summary": "after"}
        ).execute()
        wait_for(in_sync(settings, emulator, ALICE), what="the change after the storm")
    counted = Counter(ops(observed(settings)))
    assert all(n == 1 for n in counted.values()), counted
    assert counted[("UPDATED", "s0001", 1)] == 1


def test_headers_and_checkpoint_topic(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event("head1", "H")]}))
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the full sync")
    events_topic = f"{topic_prefix}gcal.events"
    messages = read_topic(kafka_bootstrap, events_topic)
    assert [header(m.headers(), HEADER_OP) for m in messages] == [
        "RESET_BEGIN",
        "CREATED",
        "RESET_END",
    ]
    assert {header(m.headers(), HEADER_STREAM) for m in messages} == {f"alice/{ALICE}"}
    assert {header(m.headers(), HEADER_GENERATION) for m in messages} == {"1"}
    checkpoints = read_topic(kafka_bootstrap, f"{topic_prefix}gcal.checkpoints")
    assert checkpoints and checkpoints[-1].key() == f"alice/{ALICE}".encode()


def test_rejected_page_token_restarts_the_full_pass_as_a_new_generation(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = dataset({ALICE: [event(f"p{i:05d}", f"P{i}") for i in range(6000)]})
    first = EmulatorServer(port=0, dataset=data).start()
    first.control.set_latency({"routes": {"events.list": 4000}})  # slack to stop mid-pass
    settings = settings_for(kafka_bootstrap, topic_prefix, first, tmp_path)
    try:
        with RunningConnector(settings):
            wait_for(lambda: len(observed(settings)) >= 2501, what="the first page")
    finally:
        first.stop()
    partial = observed(settings)
    assert ops(partial)[0] == ("RESET_BEGIN", None, 1)
    assert not any(r.change and r.change.op is Op.RESET_END for r in partial)
    # A new server signs tokens with another secret: the stored page token is rejected (400).
    second = EmulatorServer(port=0, dataset=data).start()
    try:
        again = settings_for(kafka_bootstrap, topic_prefix, second, tmp_path)
        with RunningConnector(again):
            wait_for(resets_done(again, 1), what="the restarted full pass")
        records = observed(again)
        gen2 = [r for r in records if r.change is not None and r.change.generation == 2]
        begin = gen2[0].change
        assert begin is not None and begin.op is Op.RESET_BEGIN
        assert begin.reason is ResetReason.TOKEN_INVALIDATED
        assert sum(1 for r in gen2 if r.change and r.change.op is Op.CREATED) == 6000
        assert rebuilt(records).live(ALICE) == emulator_events(second, ALICE)
    finally:
        close_clients()
        second.stop()


def test_broker_restart_while_syncing_loses_and_duplicates_nothing(
    kafka_bootstrap: str,
    kafka_broker: object,
    topic_prefix: str,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    if kafka_broker is None:
        pytest.skip("needs the suite's own broker (GCAL_KAFKA_TEST_BOOTSTRAP is external)")
    emulator.control.seed(dataset({ALICE: [event(f"r{i:05d}", f"R{i}") for i in range(6000)]}))
    emulator.control.set_latency({"routes": {"events.list": 400}})
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    with RunningConnector(settings):
        wait_for(lambda: len(observed(settings)) >= 2501, what="the first page")
        kafka_broker.restart()  # type: ignore[attr-defined]
        wait_for(resets_done(settings, 1), timeout=180, what="the full sync after the restart")
        emulator.control.set_latency({})
        google(emulator).events().patch(
            calendarId=ALICE, eventId="r00001", body={"summary": "after restart"}
        ).execute()
        wait_for(in_sync(settings, emulator, ALICE), timeout=120, what="the change after")
    counted = Counter(ops(observed(settings)))
    assert all(n == 1 for n in counted.values()), [k for k, n in counted.items() if n > 1][:5]
    assert counted[("UPDATED", "r00001", 1)] == 1


def test_series_split_this_and_following(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    berlin = {"timeZone": "Europe/Berlin"}
    series = {
        "id": "weekly1",
        "summary": "Weekly",
        "start": {"dateTime": "2026-03-02T10:00:00+01:00", **berlin},
        "end": {"dateTime": "2026-03-02T11:00:00+01:00", **berlin},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"],
    }
    moved_late = "weekly1_20260406T080000Z"  # an exception after the split point
    emulator.control.seed(dataset({ALICE: [series]}))
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    api = google(emulator).events()
    api.patch(calendarId=ALICE, eventId=moved_late, body={"summary": "moved"}).execute()
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the first full sync")
        first = observed(settings)
        # "This and following" from 2026-03-23 (section 4.4): trim the master, add a new series.
        master = api.get(calendarId=ALICE, eventId="weekly1").execute()
        master["recurrence"] = ["RRULE:FREQ=WEEKLY;UNTIL=20260322T225959Z"]
        api.update(calendarId=ALICE, eventId="weekly1", body=master).execute()
        api.insert(
            calendarId=ALICE,
            body={
                "id": "series2",
                "summary": "Weekly (new room)",
                "start": {"dateTime": "2026-03-23T10:00:00+01:00", **berlin},
                "end": {"dateTime": "2026-03-23T11:00:00+01:00", **berlin},
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=7"],
            },
        ).execute()
        wait_for(in_sync(settings, emulator, ALICE), what="the split")
        later = ops(after(observed(settings), first))
    assert ("UPDATED", "weekly1", 1) in later
    assert ("CREATED", "series2", 1) in later
    # The exception beyond the new UNTIL no longer exists: it comes back cancelled, and since
    # it is an occurrence (recurringEventId), it is kept as one, never followed by a tombstone.
    assert ("CANCELLED", moved_late, 1) in later
    assert ("TOMBSTONE", moved_late, -1) not in later


def test_at_least_once_mode_without_transactions(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    emulator.control.seed(dataset({ALICE: [event(f"a{i:04d}", f"A{i}") for i in range(40)]}))
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, delivery={"mode": "at_least_once"}
    )
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the full sync")
        google(emulator).events().delete(calendarId=ALICE, eventId="a0003").execute()
        wait_for(in_sync(settings, emulator, ALICE), what="the deletion")
    counted = Counter(ops(observed(settings)))
    assert counted[("CREATED", "a0000", 1)] == 1
    assert counted[("CANCELLED", "a0003", 1)] == 1


def test_large_pages_decoded_in_a_process_publish_what_the_workers_would(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    items = [
        event(
            f"big{i:05d}",
            f"event {i}",
            day=1 + i % 28,
            description="x" * (i % 300),
            attendees=[{"email": f"p{i % 7}@example.com", "responseStatus": "accepted"}],
            extendedProperties={"private": {"n": str(i)}},
        )
        for i in range(3000)
    ]
    emulator.control.seed(dataset({ALICE: items}))
    published = {}
    for processes in (1, 0):
        prefix = f"{topic_prefix}p{processes}."
        settings = settings_for(
            kafka_bootstrap, prefix, emulator, tmp_path, decode_processes=processes
        )
        with RunningConnector(settings) as running:
            wait_for(resets_done(settings, 1), what="the full sync")
            decoder = running.connector.pages
            if processes:
                assert decoder is not None and decoder.decoded >= 2  # both pages of 2,500
            else:
                assert decoder is None
            assert in_sync(settings, emulator, ALICE)()
        published[processes] = [
            (r.event_id, r.change.op, r.change.version, r.change.event)
            for r in observed(settings)
            if r.change is not None
        ]
    assert len(published[1]) == 3002
    assert published[1] == published[0]
