"""Prometheus metrics: names, bounded labels, values a user would chart and alert on."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

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
