"""Restore the connector's state from Kafka at start-up, reading with read_committed.

Checkpoints: the latest value per stream id on the compacted checkpoint topic (a tombstone
drops the stream). Published ids: per stream, the ids whose latest record in the checkpoint's
generation is live (see ``connector.core.sync.rebuild_published``); only headers and keys are
read, and values are decoded only for CANCELLED records (to tell an occurrence from a deletion).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec  # not re-exported for mypy

from connector.adapters.avro_codec import Codec
from connector.adapters.kafka_admin import client_conf
from connector.adapters.kafka_records import (
    HEADER_GENERATION,
    HEADER_OP,
    HEADER_STREAM,
    HEADER_VERSION,
    TOMBSTONE_OP,
    header,
)
from connector.core.records import Checkpoint, Op
from connector.core.sync import Published, rebuild_published
from connector.errors import RetriableError

log = logging.getLogger(__name__)
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


def read_topic(
    kafka_conf: Mapping[str, Any],
    topic: str,
    *,
    timeout: float = 120.0,
    progress: Callable[[int], None] | None = None,
    isolation_level: str = "read_committed",
) -> Iterator[Message]:
    """Every record of ``topic`` from the beginning to its end as of the call.

    The end is each partition's last stable offset (the high watermark for
    ``read_uncommitted``), taken once at the start, so a reader finishes even while producers
    keep committing: waiting for end-of-partition events alone never ends under a steady
    stream of transactions. The consumer's position moves past transaction markers, so
    ``position >= end`` is exact.
    """
    conf = {
        **client_conf(kafka_conf),
        "group.id": f"gcal-kafka-restore-{uuid.uuid4().hex}",
        "isolation.level": isolation_level,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(conf)
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            why = "" if info is None else f" ({info.error.name()})"
            raise RetriableError(f"topic {topic} is not available{why}")
        ends = end_offsets(kafka_conf, topic, list(info.partitions), isolation_level)
        pending = {p for p, end in ends.items() if end > 0}
        if not pending:
            return
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(pending)])
        deadline = time.monotonic() + timeout
        seen = 0
        while pending:
            if time.monotonic() > deadline:
                raise RetriableError(f"reading {topic} did not reach its end in {timeout:.0f}s")
            for msg in consumer.consume(10000, 0.05):
                partition = msg.partition() or 0
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(partition)
                        continue
                    if is_transient(err):  # the client recovers by itself; the deadline bounds it
                        log.debug("reading %s: %s (retrying)", topic, err.name())
                        continue
                    raise RetriableError(f"reading {topic}: {err.str()}", reason=err.name())
                if partition in pending and (msg.offset() or 0) < ends[partition]:
                    seen += 1
                    yield msg
            for position in consumer.position([TopicPartition(topic, p) for p in pending]):
                if position.offset >= ends[position.partition]:
                    pending.discard(position.partition)
            if progress is not None:
                progress(seen)
    except KafkaException as exc:
        raise RetriableError(f"reading {topic}: {exc}") from None
    finally:
        consumer.close()


_TRANSIENT = frozenset(
    {
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._TIMED_OUT,
    }
)


def is_transient(err: KafkaError) -> bool:
    """A consumer error librdkafka recovers from by itself (a broker restart, a leader move)."""
    return not err.fatal() and (err.retriable() or err.code() in _TRANSIENT)


def end_offsets(
    kafka_conf: Mapping[str, Any], topic: str, partitions: list[int], isolation_level: str
) -> dict[int, int]:
    """Each partition's end for a reader: the last stable offset for ``read_committed``."""
    level = (
        IsolationLevel.READ_COMMITTED
        if isolation_level == "read_committed"
        else IsolationLevel.READ_UNCOMMITTED
    )
    admin = AdminClient(client_conf(kafka_conf))
    deadline = time.monotonic() + 30
    while True:
        futures = admin.list_offsets(
            {TopicPartition(topic, p): _LATEST for p in partitions},
            isolation_level=level,
            request_timeout=30,
        )
        try:
            return {tp.partition: future.result().offset for tp, future in futures.items()}
        except KafkaException as exc:
            # Right after a broker restart the leader's epoch may be ahead of the broker's
            # (UNKNOWN_LEADER_EPOCH) for a moment: ask again until it settles.
            if not is_transient(exc.args[0]) or time.monotonic() > deadline:
                raise
            log.debug("offsets of %s: %s (retrying)", topic, exc.args[0].name())
            time.sleep(0.2)


def read_checkpoints(
    kafka_conf: Mapping[str, Any], topic: str, codec: Codec
) -> dict[str, Checkpoint]:
    latest: dict[str, Checkpoint | None] = {}
    for msg in read_topic(kafka_conf, topic):
        key = msg.key()
        if key is None:
            continue
        stream_id = key.decode()
        value = msg.value()
        latest[stream_id] = None if value is None else codec.decode_checkpoint(value)
    return {k: v for k, v in latest.items() if v is not None}


def read_published(
    kafka_conf: Mapping[str, Any],
    topic: str,
    codec: Codec,
    generations: Mapping[str, int],
    progress: Callable[[int], None] | None = None,
) -> dict[str, Published]:
    """Each stream's published state in its current generation, rebuilt from the events topic.

    Reads headers and keys; decodes a value only for CANCELLED (occurrence or deletion).
    """
    Row = tuple[str | None, Op | None, int | None, Mapping[str, Any] | None]
    per_stream: dict[str, list[Row]] = {s: [] for s in generations}
    for msg in read_topic(kafka_conf, topic, progress=progress):
        headers = msg.headers()
        stream_id = header(headers, HEADER_STREAM)
        if stream_id is None or stream_id not in generations:
            continue
        generation = header(headers, HEADER_GENERATION)
        if generation is None or int(generation) != generations[stream_id]:
            continue
        op_text = header(headers, HEADER_OP)
        key = msg.key()
        if key is None or op_text in (Op.RESET_BEGIN.value, Op.RESET_END.value):
            continue
        _, event_id = codec.decode_key(key)
        value = msg.value()
        if op_text == TOMBSTONE_OP or value is None:
            per_stream[stream_id].append((event_id, None, None, None))
            continue
        version_text = header(headers, HEADER_VERSION)
        version = int(version_text) if version_text else None
        op = Op(op_text) if op_text is not None and op_text in Op.__members__ else Op.UPDATED
        event = codec.decode_change(value).event if op is Op.CANCELLED else None
        per_stream[stream_id].append((event_id, op, version, event))
    return {stream_id: rebuild_published(rows) for stream_id, rows in per_stream.items()}
