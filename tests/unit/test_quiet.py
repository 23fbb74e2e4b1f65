"""Quiet passes: an incremental pass that saw nothing is not committed while the stored sync
token is young; anything else that changed means a commit (``connector.core.quiet``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from connector.adapters.avro_codec import SingleObjectCodec
from connector.adapters.kafka_records import RecordEncoder, TopicNames
from connector.config import AccountSettings, CredentialSettings, SyncOptions
from connector.core import sync
from connector.core.calendar_source import EventsPage, ListQuery
from connector.core.quiet import QUIET_COMMIT_MAX_AGE_MS, can_skip_commit
from connector.core.records import Channel, Checkpoint, Phase, ResetReason, StreamRef, Trigger
from connector.observe import NullObserver
from connector.passes import PassRunner, StreamRuntime
from connector.streams import AccountRef, StreamSpec, fingerprint
from tests.fakes import FakeCalendarSource, InMemoryPublisher, ManualClock

STREAM = StreamRef("alice/cal@example.com", "alice", "cal@example.com")
HOUR = 3600 * 1000
T0 = 1_767_225_600_000  # when the stored checkpoint's sync token was obtained


def committed(**fields: Any) -> Checkpoint:
    base = Checkpoint(
        STREAM,
        3,
        Phase.INCREMENTAL,
        "fp",
        sync_token="s1",
        last_attempt_at_ms=T0,
        last_success_at_ms=T0,
        channel=Channel("ch-1", "res-1", T0 + 100 * HOUR),
        extra={"time_min": "2025-01-01T00:00:00Z"},
    )
    return replace(base, **fields)


def quiet_page(
    cp: Checkpoint,
    items: list[Any] | None = None,
    published: sync.Published | None = None,
    page_token: str | None = None,
    now: int = T0 + HOUR,
) -> sync.PageResult:
    current = sync.start_pass(STREAM, cp, cp.query_fingerprint, Trigger.POLL)
    result, _ = sync.apply_page(
        current,
        items or [],
        page_token,
        None if page_token else "s2",
        published or sync.Published(),
        now,
    )
    return result


def test_a_pass_that_saw_nothing_need_not_be_committed() -> None:
    cp = committed()
    result = quiet_page(cp)
    assert result.records == [] and result.checkpoint.sync_token == "s2"
    assert can_skip_commit(cp, result, T0, T0 + HOUR)


def event(event_id: str) -> dict[str, Any]:
    return {"kind": "calendar#event", "id": event_id, "etag": '"7"', "status": "confirmed"}


@pytest.mark.parametrize(
    "case",
    ["an item", "an item already published", "a dead letter", "a next page", "a resumed pass"],
)
def test_a_pass_that_saw_anything_is_committed(case: str) -> None:
    cp = committed()
    if case == "an item":
        result = quiet_page(cp, [event("a")])
    elif case == "an item already published":
        published = sync.Published(live={"a": sync.version_of(event("a"))})
        result = quiet_page(cp, [event("a")], published)
        assert result.records == [] and result.skipped == 1
    elif case == "a dead letter":
        result = quiet_page(cp, [{"no": "id"}])
    elif case == "a next page":
        result = quiet_page(cp, page_token="p1")
    else:  # the pass resumed from a stored page token: its pages before were committed
        cp = committed(page_token="p0")
        result = quiet_page(cp)
    assert not can_skip_commit(cp, result, T0, T0 + HOUR)


@pytest.mark.parametrize(
    "change",
    [
        {"generation": 4},
        {"phase": Phase.FULL},
        {"query_fingerprint": "fp-2"},
        {"page_token": "p9"},
        {"reset_reason": ResetReason.OPERATOR},
        {"published_count": 5},
        {"channel": Channel("ch-2", "res-2", T0 + 200 * HOUR)},
        {"channel": None},
        {"extra": {}},
        {"sync_token": None},
    ],
)
def test_any_other_change_in_the_checkpoint_is_committed(change: dict[str, Any]) -> None:
    cp = committed()
    result = quiet_page(cp)
    changed = replace(result, checkpoint=replace(result.checkpoint, **change))
    assert not can_skip_commit(cp, changed, T0, T0 + HOUR)


def test_new_generations_full_passes_and_unknown_streams_are_committed() -> None:
    for cp, reset in (
        (None, False),
        (committed(), True),
        (committed(phase=Phase.FULL, sync_token=None), False),
        (committed(sync_token=None), False),  # the calendar was gone
    ):
        current = sync.start_pass(STREAM, cp, "fp", Trigger.POLL, operator_reset=reset)
        result, _ = sync.apply_page(current, [], None, "s2", sync.Published(), T0 + HOUR)
        assert not can_skip_commit(cp, result, T0, T0 + HOUR)


def test_the_stored_token_may_only_grow_so_old() -> None:
    cp = committed()
    result = quiet_page(cp)
    assert QUIET_COMMIT_MAX_AGE_MS == 6 * HOUR
    young = T0 + QUIET_COMMIT_MAX_AGE_MS - 1
    assert can_skip_commit(cp, result, T0, young)
    assert not can_skip_commit(cp, result, T0, T0 + QUIET_COMMIT_MAX_AGE_MS)
    assert not can_skip_commit(cp, result, None, T0 + HOUR)  # age unknown
    assert not can_skip_commit(cp, result, T0, T0 - 1)  # the clock went back
    assert can_skip_commit(cp, result, T0, T0 + HOUR, max_age_ms=2 * HOUR)
    assert not can_skip_commit(cp, result, T0, T0 + 2 * HOUR, max_age_ms=2 * HOUR)


# -- one stream's passes through PassRunner, with the Kafka side in memory ---------------------
class FreshTokens(FakeCalendarSource):
    """Every last page carries a new sync token (``<real>#<n>``), as Google's often do."""

    def __init__(self) -> None:
        super().__init__(page_size=10)
        self.aliases: dict[str, str] = {}
        self.sent: list[str | None] = []  # the sync tokens the connector sent

    def list_events(
        self, calendar_id: str, query: ListQuery, *, sync_token: str | None, page_token: str | None
    ) -> EventsPage:
        self.sent.append(sync_token)
        real = self.aliases.get(sync_token, sync_token) if sync_token else None
        page = super().list_events(calendar_id, query, sync_token=real, page_token=page_token)
        if page.next_sync_token is None:
            return page
        alias = f"{page.next_sync_token}#{len(self.aliases)}"
        self.aliases[alias] = page.next_sync_token
        return replace(page, next_sync_token=alias)


class Stream:
    def __init__(self) -> None:
        options = SyncOptions()
        ref = StreamRef("alice/a@x", "alice", "a@x")
        creds = CredentialSettings(kind="authorized_user", path="/dev/null")
        acct = AccountRef("alice", AccountSettings(name="alice", credentials=creds))
        self.spec = StreamSpec(ref, acct, options, fingerprint(options))
        self.source = FreshTokens()
        self.publisher = InMemoryPublisher()
        self.clock = ManualClock(T0)
        self.codec = SingleObjectCodec()
        topics = TopicNames("gcal.events", "gcal.checkpoints", "gcal.events.dlq")
        self.runner = PassRunner(
            sources={"alice": self.source},
            publisher=self.publisher,
            encoder=RecordEncoder(self.codec, topics, 3),
            clock=self.clock,
            observer=NullObserver(),
            tombstones=True,
            acquire=lambda _account: None,
            stopping=lambda: False,
        )

    def stored(self) -> Checkpoint:
        """The stream's checkpoint as Kafka holds it (what a restart reads)."""
        last = [r for r in self.publisher.committed if r.topic == "gcal.checkpoints"][-1]
        assert last.value is not None
        return self.codec.decode_checkpoint(last.value)

    def pass_after(self, rt: StreamRuntime, hours: float) -> int:
        """Run one POLL pass ``hours`` later; the number of batches it committed."""
        self.clock.ms += int(hours * HOUR)
        before = self.publisher.batches
        self.runner.run(rt, Trigger.POLL)
        return self.publisher.batches - before


def test_quiet_passes_stay_in_memory_until_the_stored_token_is_six_hours_old() -> None:
    s = Stream()
    s.source.put("a@x", {"id": "one"})
    rt = StreamRuntime(s.spec, None)
    assert s.pass_after(rt, 0) == 1  # the full sync
    first = s.stored()
    assert rt.committed == first and rt.stored_token_ms is None

    assert s.pass_after(rt, 1) == 0  # quiet: nothing written
    assert s.stored() == first
    assert rt.committed is not None and rt.committed.sync_token != first.sync_token
    assert rt.committed.last_success_at_ms == s.clock.ms  # in memory: a success just now
    assert rt.stored_token_ms == first.last_success_at_ms == T0

    # A restart now resumes from the stored (older) token: it still sees nothing, and no
    # change is lost, since every pass after it saw none.
    restarted = StreamRuntime(s.spec, s.stored())
    assert s.pass_after(restarted, 0) == 0
    assert s.source.sent[-1] == first.sync_token

    for _ in range(4):  # 2, 3, 4, 5 hours after the stored token: still quiet
        fresh = rt.committed.sync_token
        assert s.pass_after(rt, 1) == 0
        assert s.source.sent[-1] == fresh != first.sync_token  # it goes on from the new token
    assert s.pass_after(rt, 1) == 1  # 6 hours: the in-memory checkpoint is written
    assert s.stored() == rt.committed and rt.stored_token_ms is None
    assert s.stored().last_success_at_ms == T0 + 6 * HOUR

    assert s.pass_after(rt, 1) == 0  # quiet again, against the new stored token
    assert rt.stored_token_ms == T0 + 6 * HOUR
    s.source.put("a@x", {"id": "two"})
    assert s.pass_after(rt, 1) == 1  # a change: committed with its checkpoint, as always
    stored = s.stored()
    assert stored == rt.committed and rt.stored_token_ms is None
    assert stored.last_success_at_ms == s.clock.ms
    assert set(rt.published.live) == {"one", "two"}
    events = [r for r in s.publisher.committed if r.topic == "gcal.events"]
    assert len(events) == 4  # RESET_BEGIN, one, RESET_END, two


def test_a_push_triggered_quiet_pass_is_quiet_too_and_a_410_still_resets() -> None:
    s = Stream()
    s.source.put("a@x", {"id": "one"})
    rt = StreamRuntime(s.spec, None)
    s.pass_after(rt, 0)
    s.clock.ms += HOUR
    s.runner.run(rt, Trigger.PUSH)
    assert s.publisher.batches == 1
    s.source.invalidate("a@x")  # Google answers 410 to the in-memory token
    assert s.pass_after(rt, 1) == 1
    assert s.stored().generation == 2 and rt.stored_token_ms is None
