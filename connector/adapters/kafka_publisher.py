"""Publish pages and their checkpoints to Kafka: one transaction per batch, group-committed.

Workers fetch from Google in parallel and ``submit`` a page's records together with the
checkpoint that points past it; one committer thread owns the transactional producer and
writes whatever is queued in one transaction (several pages, several streams), so the cost of
a commit is shared. A page's future resolves only after its transaction committed: the worker
then applies the page to its in-memory state. An aborted batch fails every future in it; the
workers rewind to their committed checkpoints, so nothing is lost and nothing is seen twice.

``transactional.id`` is ``<name>`` (stable for the connector's unit of work: all its streams),
so a second instance with the same name fences the first, whose open transaction is aborted.

``at_least_once`` mode (brokers without transactions) produces the events, waits for every
acknowledgement, and only then writes the checkpoints: duplicates are possible, loss is not.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Literal

from confluent_kafka import KafkaError, KafkaException, Producer

from connector.adapters.kafka_records import KafkaRecord
from connector.errors import ConnectorError, RetriableError

log = logging.getLogger(__name__)


class ProducerFencedError(ConnectorError):
    """Another instance with the same transactional id took over: this one must stop."""


class PublisherClosedError(ConnectorError):
    """The publisher is shut down; nothing more can be published."""


_Item = tuple[list[KafkaRecord], "Future[None]"]


class KafkaChangePublisher:
    def __init__(
        self,
        kafka_conf: Mapping[str, Any],
        *,
        transactional_id: str,
        checkpoints_topic: str,
        mode: Literal["exactly_once", "at_least_once"] = "exactly_once",
        transaction_timeout_ms: int = 60000,
        max_batch_records: int = 50000,
        linger_seconds: float = 0.002,
        on_commit: Callable[[int, float, bool], None] | None = None,
        stats_cb: Callable[[str], None] | None = None,
    ) -> None:
        self._conf = dict(kafka_conf)
        self._mode = mode
        self._checkpoints_topic = checkpoints_topic
        self._transactional_id = transactional_id
        self._tx_timeout = transaction_timeout_ms
        self._max_batch = max_batch_records
        self._linger = linger_seconds
        self._on_commit = on_commit
        self._stats_cb = stats_cb
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._producer: Producer | None = None
        self._thread: threading.Thread | None = None
        self._fatal: BaseException | None = None
        self._closed = False
        self._delivery_error: KafkaError | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        """Connect and, in exactly-once mode, fence older instances (init_transactions)."""
        conf: dict[str, Any] = {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "compression.type": "lz4",
            **self._conf,
        }
        if self._stats_cb is not None:
            conf.setdefault("statistics.interval.ms", 15000)
            conf["stats_cb"] = self._stats_cb
        if self._mode == "exactly_once":
            conf["transactional.id"] = self._transactional_id
            conf["transaction.timeout.ms"] = self._tx_timeout
        self._producer = Producer(conf)
        if self._mode == "exactly_once":
            try:
                self._producer.init_transactions(timeout)
            except KafkaException as exc:
                raise _translate(exc, "init_transactions") from None
        self._thread = threading.Thread(target=self._run, name="kafka-committer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Finish what was submitted, then stop. Never leaves a half-committed transaction."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        if self._producer is not None:
            self._producer.flush(timeout)
            self._producer = None  # librdkafka's threads end with the object

    @property
    def connected(self) -> bool:
        return self._producer is not None and self._fatal is None and not self._closed

    def queue_length(self) -> int:
        return len(self._producer) if self._producer is not None else 0

    # -- publishing ------------------------------------------------------------------------
    def submit(self, records: list[KafkaRecord]) -> Future[None]:
        """Queue a page's records (its checkpoint last); the future resolves when committed."""
        future: Future[None] = Future()
        if self._fatal is not None:
            future.set_exception(self._fatal)
        elif self._closed:
            future.set_exception(PublisherClosedError("the publisher is closed"))
        else:
            self._queue.put((records, future))
        return future

    def publish(self, records: list[KafkaRecord], timeout: float | None = None) -> None:
        self.submit(records).result(timeout)

    # -- committer thread ------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            size = len(first[0])
            deadline = time.monotonic() + self._linger
            while size < self._max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
                size += len(item[0])
            self._commit_batch(batch, size)
        # Fail whatever is still queued after a stop.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].set_exception(PublisherClosedError("the publisher is closed"))

    def _commit_batch(self, batch: list[_Item], size: int) -> None:
        started = time.monotonic()
        error: BaseException | None = None
        if self._fatal is not None:
            error = self._fatal
        else:
            try:
                if self._mode == "exactly_once":
                    self._transaction([r for records, _ in batch for r in records])
                else:
                    self._at_least_once([r for records, _ in batch for r in records])
            except ProducerFencedError as exc:
                self._fatal = exc
                error = exc
            except ConnectorError as exc:
                error = exc
        if self._on_commit is not None:
            self._on_commit(size, time.monotonic() - started, error is None)
        for _, future in batch:
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    def _produce_all(self, records: Sequence[KafkaRecord]) -> None:
        assert self._producer is not None
        producer = self._producer
        self._delivery_error = None
        # In a transaction, commit_transaction fails if any record failed: no per-record
        # delivery callback is needed (each one costs a Python call and a Message object).
        on_delivery = None if self._mode == "exactly_once" else self._on_delivery
        for record in records:
            while True:
                try:
                    if record.partition >= 0:
                        producer.produce(
                            record.topic,
                            value=record.value,
                            key=record.key,
                            partition=record.partition,
                            headers=record.headers,
                            on_delivery=on_delivery,
                        )
                    else:
                        producer.produce(
                            record.topic,
                            value=record.value,
                            key=record.key,
                            headers=record.headers,
                            on_delivery=on_delivery,
                        )
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)

    def _on_delivery(self, err: KafkaError | None, _msg: object) -> None:
        if err is not None and self._delivery_error is None:
            self._delivery_error = err

    def _transaction(self, records: Sequence[KafkaRecord]) -> None:
        assert self._producer is not None
        producer = self._producer
        try:
            producer.begin_transaction()
            self._produce_all(records)
            for attempt in range(5):
                try:
                    producer.commit_transaction(self._tx_timeout / 1000)
                    return
                except KafkaException as exc:
                    err: KafkaError = exc.args[0]
                    if err.retriable() and attempt < 4:
                        continue
                    raise
        except KafkaException as exc:
            translated = _translate(exc, "transaction")
            if not isinstance(translated, ProducerFencedError):
                self._abort()
            raise translated from None

    def _abort(self) -> None:
        assert self._producer is not None
        try:
            self._producer.abort_transaction(self._tx_timeout / 1000)
        except KafkaException as exc:
            log.warning("abort_transaction failed: %s", exc.args[0])
            raise _translate(exc, "abort") from None

    def _at_least_once(self, records: Sequence[KafkaRecord]) -> None:
        assert self._producer is not None
        events = [r for r in records if r.topic != self._checkpoints_topic]
        checkpoints = [r for r in records if r.topic == self._checkpoints_topic]
        for part in (events, checkpoints):
            self._produce_all(part)
            remaining = self._producer.flush(self._tx_timeout / 1000)
            if remaining:
                raise RetriableError(f"{remaining} records not acknowledged in time")
            if self._delivery_error is not None:
                raise RetriableError(
                    f"delivery failed: {self._delivery_error.str()}",
                    reason=self._delivery_error.name(),
                )


def _translate(exc: KafkaException, where: str) -> ConnectorError:
    """The one place where librdkafka errors become the project's errors."""
    err: KafkaError = exc.args[0]
    if err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED) or (
        err.fatal() and "fenc" in err.str().lower()
    ):
        return ProducerFencedError(f"{where}: fenced by another instance ({err.name()})")
    if err.fatal():
        return ProducerFencedError(f"{where}: fatal producer error {err.name()}: {err.str()}")
    return RetriableError(f"{where}: {err.name()}: {err.str()}", reason=err.name())
