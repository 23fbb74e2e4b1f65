"""The service loop over fakes of our own interfaces: passes, commits, failures, resets.

Driven by a manual clock from the loop's idle hook: no sleeps, no sockets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from connector.adapters.avro_codec import SingleObjectCodec
from connector.adapters.kafka_records import (
    HEADER_OP,
    KafkaRecord,
    RecordEncoder,
    TopicNames,
    header,
)
from connector.calendar_lists import CalendarListTask
from connector.config import AccountSettings, CredentialSettings, SyncOptions
from connector.core.records import Checkpoint, Phase, StreamRef
from connector.errors import AuthError, RetriableError
from connector.observe import NullObserver
from connector.passes import StreamRuntime
from connector.service import SyncService
from connector.streams import AccountRef, StreamSpec, fingerprint
from tests.fakes import FakeCalendar, FakeCalendarSource, InMemoryPublisher, ManualClock

TOPICS = TopicNames("gcal.events", "gcal.checkpoints", "gcal.events.dlq")
CODEC = SingleObjectCodec()


def account(name: str) -> AccountRef:
    settings = AccountSettings(
        name=name,
        credentials=CredentialSettings(kind="authorized_user", path="/dev/null"),
    )
    return AccountRef(name, settings)


def spec(acct: AccountRef, calendar_id: str, options: SyncOptions | None = None) -> StreamSpec:
    options = options or SyncOptions()
    ref = StreamRef(f"{acct.name}/{calendar_id}", acct.name, calendar_id)
    return StreamSpec(ref, acct, options, fingerprint(options))


class Harness:
    def __init__(self, calendars: dict[str, list[str]], page_size: int = 2) -> None:
        self.sources: dict[str, FakeCalendarSource] = {}
        self.specs: list[StreamSpec] = []
        for name, cal_ids in calendars.items():
            self.sources[name] = FakeCalendarSource(page_size)
            acct = account(name)
            for cal in cal_ids:
                self.sources[name].calendars.setdefault(cal, FakeCalendar())
                self.specs.append(spec(acct, cal))
        self.publisher = InMemoryPublisher()
        self.clock = ManualClock()
        self.runtimes = {s.ref.stream_id: StreamRuntime(s, None) for s in self.specs}

    def run(self, poll: Callable[[], None] | None = None, **kwargs: Any) -> SyncService:
        service = SyncService(
            streams=list(self.runtimes.values()),
            sources=self.sources,
            publisher=self.publisher,
            encoder=RecordEncoder(CODEC, TOPICS, 3),
            workers=2,
            clock=self.clock,
            **kwargs,
        )

        def idle() -> None:
            wakeup = service._scheduler.next_wakeup()
            if wakeup is not None and wakeup < self.clock.monotonic() + 200:
                self.clock.ms = max(self.clock.ms, int(wakeup * 1000) + 1)
            else:
                service.stop()

        service.on_idle = idle
        service.run(poll)
        return service

    def events(self, stream_id: str | None = None) -> list[tuple[str, str | None, int]]:
        out = []
        for r in self.publisher.committed:
            if r.topic != TOPICS.events:
                continue
            op = header(r.headers, HEADER_OP) or ""
            _, event_id = CODEC.decode_key(r.key)
            if stream_id is not None and header(r.headers, "gcal.stream") != stream_id:
                continue
            out.append((op, event_id, int(header(r.headers, "gcal.generation") or 0)))
        return out

    def checkpoint(self, stream_id: str) -> Checkpoint:
        cps = [
            r
            for r in self.publisher.committed
            if r.topic == TOPICS.checkpoints and r.key == stream_id.encode()
        ]
        assert cps, f"no checkpoint for {stream_id}"
        assert cps[-1].value is not None
        return CODEC.decode_checkpoint(cps[-1].value)


def test_full_then_incremental_across_accounts() -> None:
    h = Harness({"alice": ["a@x", "team@x"], "bob": ["b@x"]})
    alice = h.sources["alice"]
    for i in range(5):
        alice.put("a@x", {"id": f"ev{i}", "summary": f"event {i}"})
    h.sources["bob"].put("b@x", {"id": "solo"})
    h.run()
    assert h.events("alice/a@x") == [
        ("RESET_BEGIN", None, 1),
        *[("CREATED", f"ev{i}", 1) for i in range(5)],
        ("RESET_END", None, 1),
    ]
    assert h.events("alice/team@x") == [("RESET_BEGIN", None, 1), ("RESET_END", None, 1)]
    assert [op for op, _, _ in h.events("bob/b@x")] == ["RESET_BEGIN", "CREATED", "RESET_END"]
    cp = h.checkpoint("alice/a@x")
    assert cp.phase is Phase.INCREMENTAL and cp.sync_token == "0:5" and cp.generation == 1

    h.publisher.committed.clear()
    alice.put("a@x", {"id": "ev1", "summary": "changed"})
    alice.put("a@x", {"id": "new"})
    alice.delete("a@x", "ev2")
    h.run()
    assert h.events("alice/a@x") == [
        ("UPDATED", "ev1", 1),
        ("CREATED", "new", 1),
        ("CANCELLED", "ev2", 1),
        ("TOMBSTONE", "ev2", 1),
    ]
    assert set(h.runtimes["alice/a@x"].published.live) == {"ev0", "ev1", "ev3", "ev4", "new"}


def test_410_starts_a_new_generation() -> None:
    h = Harness({"alice": ["a@x"]})
    src = h.sources["alice"]
    src.put("a@x", {"id": "one"})
    src.put("a@x", {"id": "two"})
    h.run()
    h.publisher.committed.clear()
    src.invalidate("a@x")
    src.delete("a@x", "two")  # deleted while the token was invalid: no tombstone will come
    h.run()
    assert h.events() == [("RESET_BEGIN", None, 2), ("CREATED", "one", 2), ("RESET_END", None, 2)]
    assert h.checkpoint("alice/a@x").generation == 2


def test_a_failed_commit_changes_nothing_and_the_pass_is_retried() -> None:
    h = Harness({"alice": ["a@x"]}, page_size=2)
    src = h.sources["alice"]
    for i in range(5):
        src.put("a@x", {"id": f"e{i}"})
    calls = {"n": 0}

    def fail_second_batch(records: list[KafkaRecord]) -> BaseException | None:
        calls["n"] += 1
        return RetriableError("broker unavailable") if calls["n"] == 2 else None

    h.publisher.fail_with = fail_second_batch
    h.run()
    events = h.events()
    # Exactly once: every event once, in order, despite the failed transaction.
    assert events == [
        ("RESET_BEGIN", None, 1),
        *[("CREATED", f"e{i}", 1) for i in range(5)],
        ("RESET_END", None, 1),
    ]
    # The retry resumed from the committed page token, not from the start.
    tokens = [c["page_token"] for c in src.calls]
    assert tokens[:2] == [None, "0:0:2"] and "0:0:2" in tokens[2:]


def test_auth_error_pauses_only_that_account() -> None:
    h = Harness({"alice": ["a@x"], "bob": ["b@x"]})
    h.sources["alice"].fail_next(AuthError("invalid_grant", status=401))
    h.sources["bob"].put("b@x", {"id": "fine"})
    service = h.run()
    assert [op for op, _, _ in h.events("bob/b@x")] == ["RESET_BEGIN", "CREATED", "RESET_END"]
    assert h.runtimes["alice/a@x"].state == "auth_error"
    assert service._scheduler.paused_until("alice") > h.clock.monotonic()
    assert service._scheduler.paused_until("bob") == 0.0


def test_calendar_gone_publishes_an_empty_generation_and_stops_polling_it() -> None:
    h = Harness({"alice": ["a@x"]})
    src = h.sources["alice"]
    src.put("a@x", {"id": "x"})
    h.run()
    h.publisher.committed.clear()
    src.calendars["a@x"].gone = True
    h.run()
    assert h.events() == [("RESET_BEGIN", None, 2), ("RESET_END", None, 2)]
    assert h.runtimes["alice/a@x"].state == "gone"
    h.publisher.committed.clear()
    h.run()  # still gone: nothing more is published
    assert h.events() == []
    assert h.runtimes["alice/a@x"].state == "gone"
    src.calendars["a@x"].gone = False  # it comes back: a new generation from scratch
    h.run()
    assert [(op, gen) for op, _, gen in h.events()] == [
        ("RESET_BEGIN", 3),
        ("CREATED", 3),
        ("RESET_END", 3),
    ]
    assert h.runtimes["alice/a@x"].state == "ok"


def test_operator_resync_is_a_new_generation() -> None:
    h = Harness({"alice": ["a@x"]})
    src = h.sources["alice"]
    src.put("a@x", {"id": "x"})
    h.run()
    h.publisher.committed.clear()
    h.runtimes["alice/a@x"].operator_reset = True
    h.run()
    assert h.events() == [("RESET_BEGIN", None, 2), ("CREATED", "x", 2), ("RESET_END", None, 2)]
    assert h.runtimes["alice/a@x"].operator_reset is False


@pytest.mark.parametrize("window", [None, 30])
def test_full_passes_send_a_fixed_time_min(window: int | None) -> None:
    h = Harness({"alice": []})
    options = SyncOptions(full_sync_window_days=window)
    s = spec(account("alice"), "a@x", options)
    h.sources["alice"].put("a@x", {"id": "a"})
    h.sources["alice"].put("a@x", {"id": "b"})
    h.sources["alice"].put("a@x", {"id": "c"})
    h.runtimes = {s.ref.stream_id: StreamRuntime(s, None)}
    h.run()
    sent = [c["query"].time_min for c in h.sources["alice"].calls]
    assert len(sent) == 2 and sent[0] == sent[1]
    assert (sent[0] is None) == (window is None)


def test_the_loop_sleeps_while_every_worker_is_busy() -> None:
    """A stream due while both workers are busy waits for one to finish, without spinning the
    main loop (which once burned most of a core during a full sync of many calendars)."""
    h = Harness({"alice": ["a@x", "b@x", "c@x"]})
    source = h.sources["alice"]
    release = threading.Event()
    entered = threading.Semaphore(0)
    list_events = source.list_events

    def blocking(*args: Any, **kwargs: Any) -> Any:
        entered.release()
        release.wait(10)
        return list_events(*args, **kwargs)

    source.list_events = blocking  # type: ignore[method-assign]
    polls = {"n": 0}

    def poll() -> None:
        polls["n"] += 1
        h.clock.ms += 10  # past the start-up spread: every stream is due

    runner = threading.Thread(target=h.run, kwargs={"poll": poll})
    runner.start()
    try:
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)  # both workers busy
        before = polls["n"]
        time.sleep(0.3)  # the third stream is due all along
        assert polls["n"] - before <= 3
    finally:
        release.set()
        runner.join(10)
    assert not runner.is_alive()
    assert len([op for op, _, _ in h.events() if op == "RESET_END"]) == 3


class ChannelRecorder(NullObserver):
    def __init__(self) -> None:
        self.channels: list[tuple[str, str, int | None]] = []

    def channel_state(self, stream_id: str, state: str, expiration_ms: int | None) -> None:
        self.channels.append((stream_id, state, expiration_ms))


def test_a_calendar_list_channel_shows_in_the_channel_metrics_like_a_streams() -> None:
    from tests.unit.test_calendar_lists import account as all_account
    from tests.unit.test_push import Stops, manager

    h = Harness({"alice": []})
    task = CalendarListTask(all_account("alice"), h.sources["alice"], list, 3600.0)
    observer = ChannelRecorder()
    h.run(list_tasks=[task], channels=manager(Stops()), observer=observer)
    assert task.channel is not None
    assert observer.channels == [("alice/#calendarList", "open", task.channel.expiration_ms)]
