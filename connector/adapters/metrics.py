"""Prometheus metrics and the health endpoints (``/metrics``, ``/healthz``, ``/readyz``).

Names follow Prometheus conventions (prefix ``gcal_kafka_``, seconds, ``_total`` on counters).
Labels stay bounded: never a raw calendar id or e-mail; per-stream series only when the operator
opts in (``metrics.stream_labels``), and then under the stream id they configured.
"""

from __future__ import annotations

import json
import logging
import platform
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from heapq import heapify, heappop, heappush
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from connector import __version__
from connector.core.records import Op, ResetReason

log = logging.getLogger(__name__)

_STREAM_STATES = ("idle", "syncing", "ok", "backoff", "failed", "auth_error", "gone")
_ACCOUNT_STATES = ("ok", "auth_error")
_BACKOFF_REASONS = (
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
    "backendError",
    "client_budget",
    "AuthError",
    "RetriableError",
    "StreamFailedError",
)
_CHANNEL_STATES = ("open", "failed", "expired")
# X-Goog-Resource-State values, then what the webhook listener refused or did not recognise.
_NOTIFICATION_STATES = ("sync", "exists", "not_exists", "rejected", "unknown_channel", "other")
_DURATIONS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class _Smallest:
    """The smallest value of a mapping that changes one key at a time, in O(log n) per change:
    a heap with lazy deletion (an entry counts only while it is still its key's value), compacted
    once stale entries outnumber live ones. Not locked: the observer calls it under its lock."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

    def set(self, key: str, value: float) -> None:
        if self.current.get(key) == value:
            return
        self.current[key] = value
        heappush(self._heap, (value, key))
        self._tidy()

    def discard(self, key: str) -> None:
        if self.current.pop(key, None) is not None:
            self._tidy()

    def smallest(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def _tidy(self) -> None:
        heap = self._heap
        if len(heap) > 2 * len(self.current) + 64:
            heap = self._heap = [(v, k) for k, v in self.current.items()]
            heapify(heap)
        while heap and self.current.get(heap[0][1]) != heap[0][0]:
            heappop(heap)


def _move(tally: Tally[str], gauges: dict[str, Gauge], old: str | None, new: str | None) -> None:
    """One item went from state ``old`` to ``new`` (``None``: not there): adjust both counts."""
    if old == new:
        return
    for state, step in ((old, -1), (new, 1)):
        if state is not None:
            tally[state] += step
            if state in gauges:
                gauges[state].set(tally[state])


class PrometheusObserver:
    """Implements ``connector.observe.SyncObserver`` and the adapters' callbacks.

    Every call costs O(1) or amortized O(log n) in the number of streams and channels: per-state
    counts are adjusted on each transition, and the oldest last success and the next channel
    expiry come from heaps (``_Smallest``). All bookkeeping, and the gauges it sets, is under
    ``_lock``."""

    def __init__(self, registry: CollectorRegistry | None = None, stream_labels: bool = False):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self._stream_labels = stream_labels
        self._lock = threading.Lock()
        self._stream_state: dict[str, str] = {}
        self._account_state: dict[str, str] = {}
        self._channel_state: dict[str, str] = {}
        self._stream_tally: Tally[str] = Tally()
        self._account_tally: Tally[str] = Tally()
        self._channel_tally: Tally[str] = Tally()
        self._last_success = _Smallest()  # stream id -> Unix seconds of its last ok pass
        self._open_expiries = _Smallest()  # stream id -> expiration_ms of its open channel
        p = "gcal_kafka_"
        self.events = Counter(p + "change_events", "Change events published.", ["op"], registry=r)
        self.tombstones = Counter(p + "tombstones", "Tombstones published.", registry=r)
        self.dead_letters = Counter(
            p + "dead_letters", "Google items sent to the dead-letter topic.", registry=r
        )
        self.passes = Counter(
            p + "passes",
            "Sync passes by mode, trigger and result.",
            ["mode", "trigger", "result"],
            registry=r,
        )
        self.pass_seconds = Histogram(
            p + "pass_duration_seconds",
            "Duration of sync passes.",
            ["mode"],
            buckets=_DURATIONS,
            registry=r,
        )
        self.resets = Counter(
            p + "resets", "Resets (new generations) by reason.", ["reason"], registry=r
        )
        self.behind = Gauge(
            p + "seconds_behind_source",
            "Publish time minus Google's `updated` of the newest event in the last page.",
            registry=r,
        )
        self.last_success = Gauge(
            p + "last_successful_sync_timestamp_seconds",
            "Oldest last-successful-pass time across streams (Unix seconds).",
            registry=r,
        )
        self.stream_last_success = Gauge(
            p + "stream_last_successful_sync_timestamp_seconds",
            "Last successful pass per stream (only with metrics.stream_labels).",
            ["stream"],
            registry=r,
        )
        self.commits = Counter(
            p + "checkpoint_commits", "Checkpoint commits by result.", ["result"], registry=r
        )
        self.aborts = Counter(p + "transaction_aborts", "Kafka transactions aborted.", registry=r)
        self.commit_seconds = Histogram(
            p + "transaction_duration_seconds",
            "Kafka transaction duration (produce + commit).",
            buckets=_DURATIONS,
            registry=r,
        )
        self.requests = Counter(
            p + "google_requests", "Google API requests.", ["method", "status"], registry=r
        )
        self.request_seconds = Histogram(
            p + "google_request_duration_seconds",
            "Google API request latency.",
            ["method"],
            buckets=_DURATIONS,
            registry=r,
        )
        self.backoffs = Counter(p + "backoffs", "Backoffs by reason.", ["reason"], registry=r)
        self.backoff_seconds = Counter(
            p + "backoff_seconds", "Seconds of backoff scheduled.", registry=r
        )
        self.streams = Gauge(p + "streams", "Streams by state.", ["state"], registry=r)
        self.accounts = Gauge(p + "accounts", "Accounts by state.", ["state"], registry=r)
        self.channels = Gauge(
            p + "watch_channels", "Push channels by state.", ["state"], registry=r
        )
        self.next_expiry = Gauge(
            p + "watch_channel_next_expiry_timestamp_seconds",
            "Earliest expiry of an open push channel (Unix seconds).",
            registry=r,
        )
        self.notifications = Counter(
            p + "push_notifications", "Push notifications by state.", ["state"], registry=r
        )
        self.queue = Gauge(
            p + "producer_queue_messages", "Messages in librdkafka's producer queue.", registry=r
        )
        self.decoded_pages = Counter(
            p + "decoded_pages",
            "Large pages by who decoded them: a decoding process, or the worker thread instead "
            "(json might read them differently, not an events page, or the process died).",
            ["by"],
            registry=r,
        )
        self.decoder_restarts = Counter(
            p + "decoding_process_restarts", "Decoding processes replaced.", registry=r
        )
        self.up = Gauge(p + "up", "1 while the connector runs.", registry=r)
        self.ready = Gauge(
            p + "ready",
            "1 once checkpoints are restored and the producer is connected.",
            registry=r,
        )
        Info(p + "build", "Build information.", registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )
        for op in Op:
            self.events.labels(op.value)
        for reason in ResetReason:
            self.resets.labels(reason.value)
        self._stream_gauges = {state: self.streams.labels(state) for state in _STREAM_STATES}
        self._account_gauges = {state: self.accounts.labels(state) for state in _ACCOUNT_STATES}
        for result in ("ok", "failed"):
            self.commits.labels(result)
        for backoff_reason in (*_BACKOFF_REASONS, "other"):
            self.backoffs.labels(backoff_reason)
        self._channel_gauges = {state: self.channels.labels(state) for state in _CHANNEL_STATES}
        for state in _NOTIFICATION_STATES:
            self.notifications.labels(state)
        self.up.set(1)

    # -- SyncObserver ----------------------------------------------------------------------
    def pass_finished(
        self, stream_id: str, phase: str, trigger: str, result: str, seconds: float
    ) -> None:
        mode = phase.lower()
        self.passes.labels(mode, trigger.lower(), result).inc()
        self.pass_seconds.labels(mode).observe(seconds)
        if result == "ok":
            with self._lock:
                self._last_success.set(stream_id, time.time())
                self.last_success.set(self._last_success.smallest() or 0)
            if self._stream_labels:
                self.stream_last_success.labels(stream_id).set(time.time())

    def published(self, stream_id: str, counts: dict[Op, int], dead_letters: int) -> None:
        for op, n in counts.items():
            self.events.labels(op.value).inc(n)
        if dead_letters:
            self.dead_letters.inc(dead_letters)

    def reset(self, stream_id: str, reason: ResetReason) -> None:
        self.resets.labels(reason.value).inc()

    def checkpoint_committed(self, stream_id: str, source_updated_ms: int | None) -> None:
        if source_updated_ms:
            self.behind.set(max(0.0, time.time() - source_updated_ms / 1000))

    def stream_state(self, stream_id: str, account: str, state: str) -> None:
        """A state outside ``_STREAM_STATES`` (``removed``) takes the stream out of every count."""
        with self._lock:
            old = self._stream_state.get(stream_id)
            self._stream_state[stream_id] = state
            _move(self._stream_tally, self._stream_gauges, old, state)
            if state not in _STREAM_STATES:  # removed: its last success no longer ages
                self._last_success.discard(stream_id)
                self.last_success.set(self._last_success.smallest() or 0)

    def account_state(self, account: str, state: str) -> None:
        with self._lock:
            old = self._account_state.get(account)
            self._account_state[account] = state
            _move(self._account_tally, self._account_gauges, old, state)

    def backoff(self, account: str, reason: str, seconds: float) -> None:
        self.backoffs.labels(_bounded_reason(reason)).inc()
        self.backoff_seconds.inc(max(0.0, seconds))

    # -- adapter callbacks -----------------------------------------------------------------
    def streams_known(self, stream_ids: list[str], accounts: dict[str, str]) -> None:
        """Streams and accounts not seen yet start ``idle`` and ``ok``."""
        with self._lock:
            for stream_id in stream_ids:
                if stream_id not in self._stream_state:
                    self._stream_state[stream_id] = "idle"
                    _move(self._stream_tally, self._stream_gauges, None, "idle")
            for account in accounts.values():
                if account not in self._account_state:
                    self._account_state[account] = "ok"
                    _move(self._account_tally, self._account_gauges, None, "ok")

    def google_request(self, method: str, status: int, seconds: float) -> None:
        name = method.removeprefix("calendar.")
        self.requests.labels(name, str(status)).inc()
        self.request_seconds.labels(name).observe(seconds)

    def transaction(self, records: int, seconds: float, ok: bool) -> None:
        self.commits.labels("ok" if ok else "failed").inc()
        self.commit_seconds.observe(seconds)
        if not ok:
            self.aborts.inc()

    def channel_state(self, stream_id: str, state: str, expiration_ms: int | None) -> None:
        """A stream's push channel is ``open`` (until ``expiration_ms``), ``failed`` or
        ``expired``; ``closed`` forgets it (watch stopped or the stream went away)."""
        with self._lock:
            if state == "closed":
                old = self._channel_state.pop(stream_id, None)
                _move(self._channel_tally, self._channel_gauges, old, None)
            else:
                old = self._channel_state.get(stream_id)
                self._channel_state[stream_id] = state
                _move(self._channel_tally, self._channel_gauges, old, state)
            if state == "open" and expiration_ms:
                self._open_expiries.set(stream_id, expiration_ms)
            else:
                self._open_expiries.discard(stream_id)
            earliest = self._open_expiries.smallest()
            self.next_expiry.set(earliest / 1000 if earliest is not None else 0)

    def push_notification(self, state: str) -> None:
        """One notification received by the webhook listener, by resource state or outcome."""
        self.notifications.labels(state if state in _NOTIFICATION_STATES else "other").inc()

    def page_decoded(self, by: str) -> None:
        """``by``: ``process``, ``thread`` (a large page decoded in the worker thread) or
        ``restart`` (a decoding process died: its page was decoded in the thread)."""
        if by == "restart":
            self.decoder_restarts.inc()
            by = "thread"
        self.decoded_pages.labels(by).inc()

    def librdkafka_stats(self, stats_json: str) -> None:
        try:
            stats: dict[str, Any] = json.loads(stats_json)
            self.queue.set(float(stats.get("msg_cnt", 0)))
        except (ValueError, TypeError):
            log.debug("unreadable librdkafka statistics")


def _bounded_reason(reason: str) -> str:
    return reason if reason in _BACKOFF_REASONS else "other"


class HealthServer:
    """``/metrics``, ``/healthz`` (alive) and ``/readyz`` (state restored, producer connected)."""

    def __init__(
        self, observer: PrometheusObserver, host: str, port: int, is_ready: Callable[[], bool]
    ) -> None:
        registry = observer.registry
        ready_gauge = observer.ready

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    self._send(200, b"ok\n")
                elif path == "/readyz":
                    ok = is_ready()
                    ready_gauge.set(1 if ok else 0)
                    self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
                else:
                    self._send(404, b"not found\n")

            def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
