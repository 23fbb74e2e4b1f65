"""The consumer side of the contract: read change events and apply the rebuild rule.

A user's application (and ``gcal-kafka materialize``) reuses this: ``ChangeReader`` reads the
events topic with ``isolation.level=read_committed`` and decodes keys and values with the
published schemas; ``apply`` applies the contract's rebuild rule to any ``EventStore``:

1. CREATED / UPDATED / CANCELLED: upsert by key, remembering the record's generation;
   a tombstone deletes the key.
2. RESET_BEGIN(g): generation g is being built; keep serving the old rows.
3. RESET_END(g): delete every row of that calendar whose generation is lower than g.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from connector.adapters.avro_codec import Codec
from connector.adapters.kafka_admin import client_conf
from connector.adapters.kafka_state import is_transient
from connector.core.records import ChangeEvent, Op
from connector.errors import RetriableError


@dataclass(frozen=True, slots=True)
class ChangeRecord:
    """One decoded record of the events topic; ``change`` is None for a tombstone."""

    topic: str
    partition: int
    offset: int
    calendar_id: str
    event_id: str | None
    change: ChangeEvent | None


class EventStore(Protocol):
    def upsert(self, calendar_id: str, event_id: str, change: ChangeEvent) -> None: ...

    def delete(self, calendar_id: str, event_id: str) -> None: ...

    def delete_older(self, calendar_id: str, generation: int) -> int: ...


def apply(store: EventStore, record: ChangeRecord) -> None:
    """Apply one record to ``store`` following the contract's rebuild rule."""
    change = record.change
    if change is None:
        if record.event_id is not None:
            store.delete(record.calendar_id, record.event_id)
        return
    if change.op in (Op.CREATED, Op.UPDATED, Op.CANCELLED):
        if record.event_id is not None:
            store.upsert(record.calendar_id, record.event_id, change)
    elif change.op is Op.RESET_END:
        store.delete_older(record.calendar_id, change.generation)
    # RESET_BEGIN: nothing to do; the old rows keep being served until RESET_END.


class InMemoryStore:
    """The rebuild rule over a dict: ``rows[(calendar_id, event_id)] = ChangeEvent``."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], ChangeEvent] = {}

    def upsert(self, calendar_id: str, event_id: str, change: ChangeEvent) -> None:
        self.rows[(calendar_id, event_id)] = change

    def delete(self, calendar_id: str, event_id: str) -> None:
        self.rows.pop((calendar_id, event_id), None)

    def delete_older(self, calendar_id: str, generation: int) -> int:
        stale = [
            k for k, v in self.rows.items() if k[0] == calendar_id and v.generation < generation
        ]
        for key in stale:
            del self.rows[key]
        return len(stale)

    def live(self, calendar_id: str) -> dict[str, Mapping[str, Any]]:
        """Event id -> Google JSON of the calendar's events, cancelled occurrences included."""
        return {
            event_id: change.event
            for (cal, event_id), change in self.rows.items()
            if cal == calendar_id and change.event is not None
        }


class ChangeReader:
    """Reads the events topic with read_committed and decodes each record."""

    def __init__(
        self,
        kafka_conf: Mapping[str, Any],
        topic: str,
        codec: Codec,
        *,
        group_id: str | None = None,
        from_beginning: bool = True,
    ) -> None:
        conf = {
            **client_conf(kafka_conf),
            "group.id": group_id or f"gcal-kafka-reader-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
        }
        self._consumer = Consumer(conf)
        self._consumer.subscribe([topic])
        self._codec = codec
        self._topic = topic

    def poll(self, timeout: float = 1.0, max_records: int = 1000) -> list[ChangeRecord]:
        """Records available now (possibly none); raises RetriableError on consumer errors."""
        return consume_changes(self._consumer, self._codec, self._topic, timeout, max_records)

    def records(self, idle_timeout: float = 2.0) -> Iterator[ChangeRecord]:
        """Every record available until nothing new arrives for ``idle_timeout`` seconds."""
        while True:
            batch = self.poll(idle_timeout)
            if not batch:
                return
            yield from batch

    def commit(self, offsets: list[TopicPartition] | None = None) -> None:
        if offsets is None:
            self._consumer.commit(asynchronous=False)
        else:
            self._consumer.commit(offsets=offsets, asynchronous=False)

    def close(self) -> None:
        self._consumer.close()


def consume_changes(
    consumer: Consumer, codec: Codec, topic: str, timeout: float, max_records: int
) -> list[ChangeRecord]:
    """Decode what ``consumer`` has now (end-of-partition events skipped); RetriableError on
    consumer errors. Shared by ``ChangeReader`` and the materializer's reader."""
    try:
        messages = consumer.consume(max_records, timeout)
    except KafkaException as exc:
        raise RetriableError(f"consume: {exc}") from None
    out: list[ChangeRecord] = []
    for msg in messages:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF or is_transient(err):
                continue  # transient ones: librdkafka reconnects and resumes by itself
            raise RetriableError(f"consume: {err.str()}", reason=err.name())
        calendar_id, event_id = codec.decode_key(msg.key() or b"")
        value = msg.value()
        change = None if value is None else codec.decode_change(value)
        out.append(
            ChangeRecord(
                msg.topic() or topic,
                msg.partition() or 0,
                msg.offset() or 0,
                calendar_id,
                event_id,
                change,
            )
        )
    return out
