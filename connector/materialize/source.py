"""The events topic read from offsets the database holds, not from consumer-group commits.

Every partition of the topic is assigned explicitly at the next offset stored in the
database (or at the beginning when none is stored), with ``isolation.level=read_committed`` so
records of aborted or open connector transactions are never seen. No offset is ever committed
to Kafka: the database is the only source of truth for the position.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from connector.adapters.avro_codec import Codec
from connector.adapters.kafka_admin import client_conf
from connector.consumer import ChangeRecord, consume_changes
from connector.errors import RetriableError


class RecordSource(Protocol):
    def start(self, offsets: Mapping[int, int]) -> list[int]: ...

    def poll(self, timeout: float, max_records: int) -> list[ChangeRecord]: ...

    def close(self) -> None: ...


class AssignedChangeReader:
    """Decodes the events topic from explicit per-partition offsets."""

    def __init__(self, kafka_conf: Mapping[str, Any], topic: str, codec: Codec) -> None:
        self.topic = topic
        self._codec = codec
        self._conf = {
            **client_conf(kafka_conf),
            "group.id": f"gcal-kafka-materialize-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
        }
        self._consumer: Consumer | None = None

    def start(self, offsets: Mapping[int, int]) -> list[int]:
        """Assign every partition of the topic; returns the partition numbers."""
        consumer = Consumer(self._conf)
        self._consumer = consumer
        try:
            meta = consumer.list_topics(self.topic, timeout=10)
        except KafkaException as exc:
            raise RetriableError(f"list topics: {exc}") from None
        found = meta.topics.get(self.topic)
        if found is None or found.error is not None or not found.partitions:
            raise RetriableError(f"topic {self.topic} not found", reason="unknown_topic")
        partitions = sorted(found.partitions)
        consumer.assign(
            [TopicPartition(self.topic, p, offsets.get(p, OFFSET_BEGINNING)) for p in partitions]
        )
        return partitions

    def poll(self, timeout: float, max_records: int) -> list[ChangeRecord]:
        if self._consumer is None:
            return []
        return consume_changes(self._consumer, self._codec, self.topic, timeout, max_records)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
