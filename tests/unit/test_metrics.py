"""Prometheus metrics: names, bounded labels, values a user would chart and alert on."""

from __future__ import annotations

import random
import threading
from types import SimpleNamespace
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from connector.adapters import metrics
from connector.adapters.metrics import PrometheusObserver
from connector.core.records import Op, ResetReason


def samples(observer: PrometheusObserver) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(observer.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_published_resets_passes_and_requests_are_counted() -> None:
    m = PrometheusObserver()
    m.published("alice/cal", {Op.CREATED: 3, Op.UPDATED: 1}, dead_letters=2)
    m.reset("alice/cal", ResetReason.TOKEN_INVALIDATED)
    m.pass_finished("alice/cal", "INCREMENTAL", "POLL", "ok", 0.2)
    m.google_request("calendar.events.list", 200, 0.05)
    m.transaction(10, 0.03, ok=False)
    s = samples(m)
    assert s[("gcal_kafka_change_events_total", (("op", "CREATED"),))] == 3
    assert s[("gcal_kafka_change_events_total", (("op", "CANCELLED"),))] == 0  # pre-created
    assert s[("gcal_kafka_dead_letters_total", ())] == 2
    assert s[("gcal_kafka_resets_total", (("reason", "TOKEN_INVALIDATED"),))] == 1
    assert (
        s[
            (
                "gcal_kafka_passes_total",
                (("mode", "incremental"), ("result", "ok"), ("trigger", "poll")),
            )
        ]
        == 1
    )
    assert (
        s[("gcal_kafka_google_requests_total", (("method", "events.list"), ("status", "200")))] == 1
    )
    assert s[("gcal_kafka_transaction_aborts_total", ())] == 1
    assert s[("gcal_kafka_last_successful_sync_timestamp_seconds", ())] > 0


def test_states_are_gauges_by_state_without_stream_labels() -> None:
    m = PrometheusObserver()
    m.streams_known(["a/1", "a/2", "b/1"], {"a/1": "a", "a/2": "a", "b/1": "b"})
    m.stream_state("a/1", "a", "backoff")
    m.account_state("b", "auth_error")
    s = samples(m)
    assert s[("gcal_kafka_streams", (("state", "idle"),))] == 2
    assert s[("gcal_kafka_streams", (("state", "backoff"),))] == 1
    assert s[("gcal_kafka_accounts", (("state", "auth_error"),))] == 1
    assert s[("gcal_kafka_accounts", (("state", "ok"),))] == 1
    text = generate_latest(m.registry).decode()
    assert "a/1" not in text and "@" not in text  # no stream ids or e-mails in labels


def test_stream_labels_only_when_opted_in() -> None:
    m = PrometheusObserver(stream_labels=True)
    m.pass_finished("alice/cal", "FULL", "STARTUP", "ok", 1.0)
    assert "alice/cal" in generate_latest(m.registry).decode()


def test_backoff_reasons_are_bounded() -> None:
    m = PrometheusObserver()
    m.backoff("a", "userRateLimitExceeded", 2.0)
    m.backoff("a", "something-unexpected-from-google", 1.0)
    s = samples(m)
    assert s[("gcal_kafka_backoffs_total", (("reason", "userRateLimitExceeded"),))] == 1
    assert s[("gcal_kafka_backoffs_total", (("reason", "other"),))] == 1
    assert s[("gcal_kafka_backoff_seconds_total", ())] == 3.0


def test_librdkafka_statistics_feed_the_queue_gauge() -> None:
    m = PrometheusObserver()
    m.librdkafka_stats('{"msg_cnt": 42}')
    m.librdkafka_stats("not json")
    assert samples(m)[("gcal_kafka_producer_queue_messages", ())] == 42


# -- state counts and the two "smallest of" gauges, through transitions ---------------------


def _streams(m: PrometheusObserver) -> dict[str, float]:
    s = samples(m)
    return {k[1][0][1]: v for k, v in s.items() if k[0] == "gcal_kafka_streams"}


def _channels(m: PrometheusObserver) -> dict[str, float]:
    s = samples(m)
    return {k[1][0][1]: v for k, v in s.items() if k[0] == "gcal_kafka_watch_channels"}


def _accounts(m: PrometheusObserver) -> dict[str, float]:
    s = samples(m)
    return {k[1][0][1]: v for k, v in s.items() if k[0] == "gcal_kafka_accounts"}


def _zero(states: tuple[str, ...], **counts: int) -> dict[str, float]:
    return {s: float(counts.get(s, 0)) for s in states}


STREAM_STATES = ("idle", "syncing", "ok", "backoff", "failed", "auth_error", "gone")
CHANNEL_STATES = ("open", "failed", "expired")


def test_stream_counts_follow_transitions_repeats_and_removal() -> None:
    m = PrometheusObserver()
    assert _streams(m) == _zero(STREAM_STATES)
    m.streams_known(["a/1", "a/2", "b/1"], {"a/1": "a", "a/2": "a", "b/1": "b"})
    assert _streams(m) == _zero(STREAM_STATES, idle=3)
    m.stream_state("a/1", "a", "syncing")
    m.stream_state("a/1", "a", "ok")
    m.stream_state("a/1", "a", "ok")  # the same state again: counted once
    m.stream_state("a/1", "a", "ok")
    m.stream_state("a/2", "a", "backoff")
    assert _streams(m) == _zero(STREAM_STATES, idle=1, ok=1, backoff=1)
    # streams_known again (or with more streams) does not reset a known stream to idle
    m.streams_known(["a/1", "a/2", "b/1", "b/2"], {"a/1": "a", "a/2": "a", "b/1": "b", "b/2": "b"})
    assert _streams(m) == _zero(STREAM_STATES, idle=2, ok=1, backoff=1)
    # a stream that goes away leaves every count, also when told twice
    m.stream_state("a/2", "a", "removed")
    m.stream_state("a/2", "a", "removed")
    assert _streams(m) == _zero(STREAM_STATES, idle=2, ok=1)
    # a stream first seen through stream_state counts, and a removed one can come back
    m.stream_state("c/1", "c", "failed")
    m.stream_state("a/2", "a", "idle")
    assert _streams(m) == _zero(STREAM_STATES, idle=3, ok=1, failed=1)
    assert "removed" not in _streams(m)


def test_account_counts_follow_transitions() -> None:
    m = PrometheusObserver()
    m.streams_known(["a/1", "a/2", "b/1"], {"a/1": "a", "a/2": "a", "b/1": "b"})
    assert _accounts(m) == {"ok": 2, "auth_error": 0}
    m.account_state("a", "auth_error")
    m.account_state("a", "auth_error")
    assert _accounts(m) == {"ok": 1, "auth_error": 1}
    m.streams_known(["a/1"], {"a/1": "a"})  # known accounts keep their state
    m.account_state("c", "ok")  # first seen here
    m.account_state("a", "ok")
    m.account_state("a", "ok")
    assert _accounts(m) == {"ok": 3, "auth_error": 0}


def test_channel_counts_and_next_expiry_through_transitions() -> None:
    m = PrometheusObserver()
    expiry = "gcal_kafka_watch_channel_next_expiry_timestamp_seconds"
    assert _channels(m) == _zero(CHANNEL_STATES)
    assert samples(m)[(expiry, ())] == 0
    m.channel_state("a", "open", 3_000_000)
    m.channel_state("b", "open", 2_000_000)
    m.channel_state("c", "open", 1_000_000)
    m.channel_state("c", "open", 1_000_000)  # repeated: counted once
    assert _channels(m) == _zero(CHANNEL_STATES, open=3)
    assert samples(m)[(expiry, ())] == 1000.0
    m.channel_state("c", "open", 4_000_000)  # renewed: the next expiry is another channel's
    assert samples(m)[(expiry, ())] == 2000.0
    m.channel_state("b", "failed", None)
    m.channel_state("b", "failed", None)
    assert _channels(m) == _zero(CHANNEL_STATES, open=2, failed=1)
    assert samples(m)[(expiry, ())] == 3000.0
    # an expired channel keeps its expiry but is not the next one to expire
    m.channel_state("a", "expired", 3_000_000)
    assert _channels(m) == _zero(CHANNEL_STATES, open=1, failed=1, expired=1)
    assert samples(m)[(expiry, ())] == 4000.0
    # closed forgets the channel, whatever its state; closing an unknown one changes nothing
    m.channel_state("b", "closed", None)
    m.channel_state("b", "closed", None)
    m.channel_state("never-seen", "closed", None)
    m.channel_state("c", "closed", None)
    assert _channels(m) == _zero(CHANNEL_STATES, expired=1)
    assert samples(m)[(expiry, ())] == 0
    # an open channel without an expiry counts as open but has no expiry
    m.channel_state("d", "open", None)
    assert _channels(m) == _zero(CHANNEL_STATES, open=1, expired=1)
    assert samples(m)[(expiry, ())] == 0
    m.channel_state("a", "open", 5_000_000)  # expired, then reopened
    assert _channels(m) == _zero(CHANNEL_STATES, open=2)
    assert samples(m)[(expiry, ())] == 5000.0


def test_oldest_last_success_is_the_minimum_over_streams(monkeypatch: Any) -> None:
    now = [1000.0]
    monkeypatch.setattr(metrics, "time", SimpleNamespace(time=lambda: now[0]))
    m = PrometheusObserver()
    name = ("gcal_kafka_last_successful_sync_timestamp_seconds", ())
    assert samples(m)[name] == 0
    m.pass_finished("a", "FULL", "STARTUP", "ok", 0.1)
    now[0] = 1010.0
    m.pass_finished("b", "FULL", "STARTUP", "ok", 0.1)
    assert samples(m)[name] == 1000.0
    now[0] = 1020.0
    m.pass_finished("a", "INCREMENTAL", "POLL", "ok", 0.1)  # a is newer now: b is the oldest
    assert samples(m)[name] == 1010.0
    now[0] = 1030.0
    m.pass_finished("b", "INCREMENTAL", "POLL", "failed", 0.1)  # a failed pass changes nothing
    assert samples(m)[name] == 1010.0
    m.pass_finished("b", "INCREMENTAL", "POLL", "ok", 0.1)
    assert samples(m)[name] == 1020.0


def test_a_removed_stream_stops_holding_the_oldest_last_success_back(monkeypatch: Any) -> None:
    """A calendar that left its account's list must not keep the stale-stream alert firing."""
    now = [1000.0]
    monkeypatch.setattr(metrics, "time", SimpleNamespace(time=lambda: now[0]))
    m = PrometheusObserver()
    name = ("gcal_kafka_last_successful_sync_timestamp_seconds", ())
    m.pass_finished("old", "FULL", "STARTUP", "ok", 0.1)
    now[0] = 2000.0
    m.pass_finished("live", "FULL", "STARTUP", "ok", 0.1)
    assert samples(m)[name] == 1000.0
    m.stream_state("old", "alice", "removed")
    assert samples(m)[name] == 2000.0


def test_counts_match_a_full_recount_over_many_random_transitions(monkeypatch: Any) -> None:
    """The incremental bookkeeping against a recount from scratch (what the observer did before),
    over random transitions on few keys, so the heaps also drop stale entries and compact."""
    now = [0.0]
    monkeypatch.setattr(metrics, "time", SimpleNamespace(time=lambda: now[0]))
    rnd = random.Random(7)
    m = PrometheusObserver()
    streams: dict[str, str] = {}
    channels: dict[str, tuple[str, int | None]] = {}
    last_ok: dict[str, float] = {}
    ids = [f"s{i}" for i in range(12)]
    for step in range(3000):
        sid = rnd.choice(ids)
        kind = rnd.randrange(3)
        if kind == 0:
            state = rnd.choice((*STREAM_STATES, "removed"))
            m.stream_state(sid, "acct", state)
            streams[sid] = state
            if state == "removed":
                last_ok.pop(sid, None)
        elif kind == 1:
            state = rnd.choice((*CHANNEL_STATES, "closed", "open", "open"))
            exp = rnd.choice((None, rnd.randrange(1, 50) * 1000))
            m.channel_state(sid, state, exp)
            if state == "closed":
                channels.pop(sid, None)
            else:
                channels[sid] = (state, exp)
        else:
            now[0] = rnd.uniform(0, 100)  # clocks may go back; the minimum must still be right
            result = rnd.choice(("ok", "failed"))
            m.pass_finished(sid, "INCREMENTAL", "POLL", result, 0.0)
            if result == "ok":
                last_ok[sid] = now[0]
        if step % 50 and step < 2990:
            continue
        s = samples(m)
        assert _streams(m) == {
            st: float(sum(1 for v in streams.values() if v == st)) for st in STREAM_STATES
        }
        assert _channels(m) == {
            st: float(sum(1 for v, _ in channels.values() if v == st)) for st in CHANNEL_STATES
        }
        expiries = [e for st, e in channels.values() if st == "open" and e]
        assert s[("gcal_kafka_watch_channel_next_expiry_timestamp_seconds", ())] == (
            min(expiries) / 1000 if expiries else 0
        )
        assert s[("gcal_kafka_last_successful_sync_timestamp_seconds", ())] == (
            min(last_ok.values()) if last_ok else 0
        )
    assert len(m._open_expiries._heap) <= 2 * len(ids) + 64  # stale entries do not pile up
    assert len(m._last_success._heap) <= 2 * len(ids) + 64


def test_counts_stay_consistent_under_concurrent_callers() -> None:
    m = PrometheusObserver()
    ids = [f"s{i}" for i in range(400)]
    m.streams_known(ids, dict.fromkeys(ids, "acct"))
    final: dict[str, str] = {}
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            generate_latest(m.registry)

    def work(mine: list[str], seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(20):
            for sid in mine:
                state = rnd.choice(STREAM_STATES)
                m.stream_state(sid, "acct", state)
                final[sid] = state
                m.channel_state(sid, rnd.choice(("open", "failed", "closed")), 1_000_000)
                m.pass_finished(sid, "INCREMENTAL", "POLL", "ok", 0.0)
        for sid in mine:
            m.channel_state(sid, "open", 2_000_000 + int(sid[1:]))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    workers = [threading.Thread(target=work, args=(ids[i::8], i)) for i in range(8)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    scraper.join()
    assert _streams(m) == {
        st: float(sum(1 for v in final.values() if v == st)) for st in STREAM_STATES
    }
    assert _channels(m) == _zero(CHANNEL_STATES, open=400)
    assert samples(m)[("gcal_kafka_watch_channel_next_expiry_timestamp_seconds", ())] == 2000.0
