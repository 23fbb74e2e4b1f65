"""The scheduler: one run per stream at a time, coalesced requests, paused accounts."""

from __future__ import annotations

from connector.core.records import Trigger
from connector.scheduler import Scheduler


def test_due_streams_are_handed_out_once_until_finished() -> None:
    s = Scheduler()
    s.add("a", "acct", 0.0, Trigger.STARTUP)
    s.add("b", "acct", 5.0, Trigger.STARTUP)
    assert s.pop_due(1.0, 10) == [("a", Trigger.STARTUP)]
    assert s.pop_due(1.0, 10) == []  # a is running; b is not due
    assert s.request("a", 1.0, Trigger.PUSH)  # while running: coalesced into one rerun
    assert s.request("a", 1.0, Trigger.PUSH)
    s.finished("a", 300.0, Trigger.POLL, now=2.0)
    assert s.pop_due(2.0, 10) == [("a", Trigger.PUSH)]
    assert s.next_wakeup() == 5.0


def test_limit_bounds_how_many_run_at_once() -> None:
    s = Scheduler()
    for name in "abcde":
        s.add(name, "acct", 0.0, Trigger.STARTUP)
    assert len(s.pop_due(0.0, 2)) == 2
    assert s.running() == 2
    assert len(s.pop_due(0.0, 10)) == 3


def test_a_request_brings_a_poll_forward_and_keeps_the_stronger_trigger() -> None:
    s = Scheduler()
    s.add("a", "acct", 100.0, Trigger.POLL)
    s.request("a", 10.0, Trigger.PUSH)
    s.request("a", 50.0, Trigger.POLL)
    assert s.pop_due(10.0, 1) == [("a", Trigger.PUSH)]
    assert not s.request("unknown", 0.0, Trigger.PUSH)


def test_a_paused_account_waits_without_holding_others() -> None:
    s = Scheduler()
    s.add("a1", "alice", 0.0, Trigger.POLL)
    s.add("b1", "bob", 0.0, Trigger.POLL)
    s.pause_account("alice", 30.0)
    assert s.pop_due(1.0, 10) == [("b1", Trigger.POLL)]
    assert s.pop_due(29.0, 10) == []
    assert s.pop_due(30.0, 10) == [("a1", Trigger.POLL)]


def test_the_running_count_follows_hand_outs_finishes_removals_and_re_adds() -> None:
    s = Scheduler()
    for name in "abcd":
        s.add(name, "acct", 0.0, Trigger.POLL)
    assert s.running() == 0
    assert [n for n, _ in s.pop_due(0.0, 3)] == ["a", "b", "c"]
    assert s.running() == 3
    s.finished("a", 10.0, Trigger.POLL, now=1.0)
    s.finished("a", 10.0, Trigger.POLL, now=1.0)  # a second finish does not count twice
    assert s.running() == 2
    assert s.pop_due(1.0, 10) == [("d", Trigger.POLL)]
    assert s.running() == 3
    s.remove("b")  # a stream removed by its own worker while it runs
    s.remove("b")
    assert s.running() == 2
    s.add("c", "acct", 5.0, Trigger.STARTUP)  # re-added while it ran: a fresh entry
    assert s.running() == 1
    s.finished("c", 20.0, Trigger.POLL, now=2.0)  # the old run ends: nothing to count
    s.finished("unknown", 20.0, Trigger.POLL, now=2.0)
    assert s.running() == 1
    assert s.running() == sum(1 for e in s._entries.values() if e.running)
