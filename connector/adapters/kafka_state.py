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
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from connector.adapters.avro_codec import Codec
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


def read_topic(
    kafka_conf: Mapping[str, Any],
    topic: str,
    *,
    timeout: float = 120.0,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Message]:
    """Every committed record of ``topic`` from the beginning to its current end."""
    conf = {
        **{
            k: v
            for k, v in kafka_conf.items()
            if not k.startswith(("linger", "acks", "compression"))
        },
        "group.id": f"gcal-kafka-restore-{uuid.uuid4().hex}",
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    }
    consumer = Consumer(conf)
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        info = metadata.topics.get(topic)
        if info is None or info.error is not None:
            raise RetriableError(f"topic {topic} is not available")
        pending: set[int] = set()
        assignment = []
        for partition in info.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if high > low:
                pending.add(partition)
                assignment.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        if not pending:
            return
        consumer.assign(assignment)
        deadline = time.monotonic() + timeout
        seen = 0
        while pending:
            if time.monotonic() > deadline:
                raise RetriableError(f"reading {topic} did not reach its end in {timeout:.0f}s")
            for msg in consumer.consume(10000, 1.0):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    raise RetriableError(f"reading {topic}: {err.str()}", reason=err.name())
                seen += 1
                yield msg
            if progress is not None:
                progress(seen)
    except KafkaException as exc:
        raise RetriableError(f"reading {topic}: {exc}") from None
    finally:
        consumer.close()


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
