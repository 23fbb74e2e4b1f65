"""The sync state machine: passes, generations, exact CREATED/UPDATED, markers, resets."""

from __future__ import annotations

from typing import Any

import pytest

from connector.core import sync
from connector.core.records import (
    ChangeEvent,
    Checkpoint,
    Op,
    Phase,
    ResetReason,
    StreamRef,
    Trigger,
)
from connector.errors import StreamFailedError

STREAM = StreamRef("alice/cal@example.com", "alice", "cal@example.com")
FP = "fp-1"


def ev(event_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "calendar#event",
        "id": event_id,
        "status": "confirmed",
        "updated": "2026-01-01T10:00:00.000Z",
        **fields,
    }


def cancelled(event_id: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "calendar#event", "id": event_id, "status": "cancelled", **fields}


def incremental(token: str = "s1", generation: int = 1, page_token: str | None = None) -> sync.Pass:
    cp = Checkpoint(
        STREAM, generation, Phase.INCREMENTAL, FP, sync_token=token, page_token=page_token
    )
    return sync.Pass(cp, Trigger.POLL)


def ops(result: sync.PageResult) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for r in result.records:
        if isinstance(r, ChangeEvent):
            out.append((r.op.value, r.event_id))
        elif isinstance(r, sync.Tombstone):
            out.append(("TOMBSTONE", r.event_id))
        else:
            out.append(("DLQ", None))
    return out


def pub(*ids: str) -> sync.Published:
    return sync.Published(live={i: -1 for i in ids})


def full_pass(published: sync.Published, pages: list[tuple[list[Any], str | None, str | None]]):
    current = sync.start_pass(STREAM, None, FP, Trigger.STARTUP)
    results = []
    for items, page_token, sync_token in pages:
        result, current = sync.apply_page(current, items, page_token, sync_token, published, 1000)
        sync.apply_delta(published, result)
        results.append(result)
    return results, current


def test_first_run_is_a_full_pass_bracketed_by_markers() -> None:
    published = sync.Published()
    results, current = full_pass(
        published, [([ev("a"), ev("b")], "p2", None), ([], "p3", None), ([ev("c")], None, "s1")]
    )
    assert ops(results[0]) == [("RESET_BEGIN", None), ("CREATED", "a"), ("CREATED", "b")]
    assert ops(results[1]) == []  # an empty page is not the end
    assert ops(results[2]) == [("CREATED", "c"), ("RESET_END", None)]
    begin = results[0].records[0]
    end = results[2].records[-1]
    assert isinstance(begin, ChangeEvent) and begin.reason is ResetReason.INITIAL
    assert isinstance(end, ChangeEvent) and end.event_count == 3
    # The page token is stored with each page; the sync token only with the last one.
    assert results[0].checkpoint.page_token == "p2" and results[0].checkpoint.sync_token is None
    assert results[1].checkpoint.page_token == "p3"
    last = results[2].checkpoint
    assert (last.phase, last.sync_token, last.page_token) == (Phase.INCREMENTAL, "s1", None)
    assert last.generation == 1 and last.last_success_at_ms == 1000
    assert set(published.live) == {"a", "b", "c"}
    assert current.sync_token == "s1"


def test_incremental_pass_tells_created_from_updated_exactly() -> None:
    published = sync.Published()
    _, _ = full_pass(published, [([ev("a")], None, "s1")])
    committed = sync.apply_page(
        sync.start_pass(STREAM, None, FP, Trigger.STARTUP),
        [ev("a")],
        None,
        "s1",
        sync.Published(),
        1,
    )[0].checkpoint
    current = sync.start_pass(STREAM, committed, FP, Trigger.POLL)
    assert current.reset is None and current.sync_token == "s1"
    changed = ev("a", summary="changed")
    result, _ = sync.apply_page(current, [changed, ev("new")], None, "s2", published, 2000)
    assert ops(result) == [("UPDATED", "a"), ("CREATED", "new")]
    assert all(
        r.phase is Phase.INCREMENTAL and r.trigger is Trigger.POLL
        for r in result.records
        if isinstance(r, ChangeEvent)
    )


def test_deletion_gets_a_tombstone_but_a_cancelled_occurrence_does_not() -> None:
    published = pub("series", "gone")
    current = incremental()
    occurrence = cancelled(
        "series_20260105T090000Z",
        recurringEventId="series",
        originalStartTime={"dateTime": "2026-01-05T10:00:00+01:00"},
    )
    result, _ = sync.apply_page(current, [cancelled("gone"), occurrence], None, "s2", published, 5)
    assert ops(result) == [
        ("CANCELLED", "gone"),
        ("TOMBSTONE", "gone"),
        ("CANCELLED", "series_20260105T090000Z"),
    ]
    sync.apply_delta(published, result)
    assert set(published.live) == {"series", "series_20260105T090000Z"}
    # A deleted event that comes back is CREATED again (it is not in the generation any more).
    again, _ = sync.apply_page(current, [ev("gone")], None, "s3", published, 6)
    assert ops(again) == [("CREATED", "gone")]


def test_tombstones_can_be_switched_off() -> None:
    result, _ = sync.apply_page(
        incremental(), [cancelled("x")], None, "s", pub("x"), 1, tombstones=False
    )
    assert ops(result) == [("CANCELLED", "x")]


def test_an_unmappable_item_is_dead_lettered_and_the_page_goes_on() -> None:
    current = sync.start_pass(STREAM, None, FP, Trigger.STARTUP)
    result, _ = sync.apply_page(
        current, [{"no": "id"}, "junk", ev("ok")], None, "s", sync.Published(), 1
    )
    assert ops(result) == [
        ("RESET_BEGIN", None),
        ("DLQ", None),
        ("DLQ", None),
        ("CREATED", "ok"),
        ("RESET_END", None),
    ]
    assert result.dead_letters == 2


def test_410_starts_a_new_generation_whose_first_page_is_all_created() -> None:
    published = pub("a", "b")
    committed = sync.apply_page(
        sync.start_pass(STREAM, None, FP, Trigger.STARTUP),
        [ev("a"), ev("b")],
        None,
        "s1",
        sync.Published(),
        1,
    )[0].checkpoint
    current = sync.start_pass(STREAM, committed, FP, Trigger.POLL)
    reset = sync.on_full_sync_required(current)
    assert reset.reset is ResetReason.TOKEN_INVALIDATED
    assert reset.trigger is Trigger.RESET
    assert reset.sync_token is None and reset.page_token is None
    result, _ = sync.apply_page(reset, [ev("a")], None, "s9", published, 7)
    assert ops(result) == [("RESET_BEGIN", None), ("CREATED", "a"), ("RESET_END", None)]
    assert all(r.generation == 2 for r in result.records if isinstance(r, ChangeEvent))
    sync.apply_delta(published, result)
    assert set(published.live) == {"a"}  # b belongs to the old generation only


def test_resume_an_interrupted_full_pass_without_a_second_reset_begin() -> None:
    first, _ = sync.apply_page(
        sync.start_pass(STREAM, None, FP, Trigger.STARTUP),
        [ev("a")],
        "p2",
        None,
        sync.Published(),
        1,
    )
    resumed = sync.start_pass(STREAM, first.checkpoint, FP, Trigger.STARTUP)
    assert resumed.reset is None and resumed.page_token == "p2"
    assert resumed.checkpoint.phase is Phase.FULL
    result, _ = sync.apply_page(resumed, [ev("b")], None, "s1", pub("a"), 2)
    assert ops(result) == [("CREATED", "b"), ("RESET_END", None)]
    end = result.records[-1]
    assert isinstance(end, ChangeEvent) and end.event_count == 2


def test_query_change_and_operator_request_reset_the_stream() -> None:
    committed = sync.apply_page(
        sync.start_pass(STREAM, None, FP, Trigger.STARTUP), [], None, "s1", sync.Published(), 1
    )[0].checkpoint
    changed = sync.start_pass(STREAM, committed, "fp-2", Trigger.STARTUP)
    assert changed.reset is ResetReason.QUERY_CHANGED
    assert changed.checkpoint.query_fingerprint == "fp-2"
    assert changed.checkpoint.generation == 2
    operator = sync.start_pass(STREAM, committed, FP, Trigger.OPERATOR, operator_reset=True)
    assert operator.reset is ResetReason.OPERATOR and operator.trigger is Trigger.OPERATOR


def test_rejected_page_token_restarts_the_pass() -> None:
    resumed = incremental(generation=3, page_token="bad")
    again = sync.on_page_token_rejected(resumed, resumed.checkpoint)
    assert (again.sync_token, again.page_token, again.reset) == ("s1", None, None)
    full = sync.start_pass(STREAM, None, FP, Trigger.STARTUP)
    restarted = sync.on_page_token_rejected(full, None)
    assert restarted.reset is ResetReason.TOKEN_INVALIDATED


def test_calendar_gone_publishes_an_empty_generation() -> None:
    committed = sync.apply_page(
        sync.start_pass(STREAM, None, FP, Trigger.STARTUP),
        [ev("a")],
        None,
        "s1",
        sync.Published(),
        1,
    )[0].checkpoint
    gone = sync.on_calendar_gone(sync.start_pass(STREAM, committed, FP, Trigger.POLL), committed)
    result = sync.calendar_gone_result(gone, 9)
    assert ops(result) == [("RESET_BEGIN", None), ("RESET_END", None)]
    begin, end = result.records
    assert isinstance(begin, ChangeEvent) and begin.reason is ResetReason.CALENDAR_GONE
    assert isinstance(end, ChangeEvent) and end.event_count == 0 and end.generation == 2
    assert result.checkpoint.sync_token is None
    # If the calendar answers again later, it starts over in a new generation.
    back = sync.start_pass(STREAM, result.checkpoint, FP, Trigger.POLL)
    assert back.reset is ResetReason.INITIAL and back.checkpoint.generation == 3


def test_a_last_page_without_sync_token_fails_the_stream() -> None:
    with pytest.raises(StreamFailedError):
        sync.apply_page(
            sync.start_pass(STREAM, None, FP, Trigger.STARTUP), [], None, None, sync.Published(), 1
        )


def test_a_version_already_published_is_not_published_again() -> None:
    published = sync.Published()
    first, _ = sync.apply_page(incremental(), [ev("a", etag='"1"')], None, "s2", published, 1)
    sync.apply_delta(published, first)
    # The same version again (Google returned it in two passes), then a real change.
    again, _ = sync.apply_page(
        incremental("s2"), [ev("a", etag='"1"'), ev("a", etag='"2"')], None, "s3", published, 2
    )
    assert ops(again) == [("UPDATED", "a")]
    assert again.skipped == 1
    sync.apply_delta(published, again)
    gone, _ = sync.apply_page(
        incremental("s3"), [cancelled("a", etag='"3"')], None, "s4", published, 3
    )
    sync.apply_delta(published, gone)
    twice, _ = sync.apply_page(
        incremental("s4"), [cancelled("a", etag='"3"')], None, "s5", published, 4
    )
    assert ops(twice) == []  # the same deletion is not published twice either
    back, _ = sync.apply_page(incremental("s5"), [ev("a", etag='"4"')], None, "s6", published, 5)
    assert ops(back) == [("CREATED", "a")]


def test_rebuild_published_matches_what_the_pages_did() -> None:
    records = [
        ("a", Op.CREATED, 1, None),
        ("b", Op.CREATED, 2, None),
        ("b", Op.CANCELLED, 3, {"id": "b", "status": "cancelled"}),
        ("b", None, None, None),
        ("s_1", Op.CANCELLED, 4, {"id": "s_1", "status": "cancelled", "recurringEventId": "s"}),
        (None, Op.RESET_END, None, None),
    ]
    rebuilt = sync.rebuild_published(records)
    assert rebuilt.live == {"a": 1, "s_1": 4}
    assert rebuilt.deleted == {"b": 3}
