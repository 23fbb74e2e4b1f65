"""Turn the core's records into Kafka records: topic, partition, key, value and headers.

Every record of a stream, markers included, goes to the partition chosen from the calendar id
alone (the contract's partitioning), so a consumer sees a calendar's history in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from connector.adapters.avro_codec import Codec
from connector.core.partitioning import partition_for
from connector.core.records import ChangeEvent, Checkpoint, Op
from connector.core.sync import DeadLetter, OutRecord, Tombstone, version_of

Headers = list[tuple[str, str | bytes | None]]

HEADER_OP = "gcal.op"
HEADER_STREAM = "gcal.stream"
HEADER_GENERATION = "gcal.generation"
HEADER_ERROR = "gcal.error"
HEADER_VERSION = "gcal.version"
TOMBSTONE_OP = "TOMBSTONE"


class KafkaRecord(NamedTuple):
    """One record to produce (partition -1: the producer's partitioner picks it).

    A named tuple rather than a frozen dataclass: one is made per event, and a tuple is built
    in a quarter of the time."""

    topic: str
    partition: int
    key: bytes
    value: bytes | None
    headers: Headers


@dataclass(frozen=True)
class TopicNames:
    events: str
    checkpoints: str
    dead_letter: str


class RecordEncoder:
    """Encodes the records of a page and its checkpoint, in publish order."""

    def __init__(self, codec: Codec, topics: TopicNames, partitions: int) -> None:
        self._codec = codec
        self._topics = topics
        self._partitions = partitions
        self._partition_cache: dict[str, int] = {}
        # Header pairs that repeat on every record of a stream: made once, shared.
        self._op_headers = {op: (HEADER_OP, op.value.encode()) for op in Op}
        self._stream_headers: dict[str, tuple[str, bytes]] = {}
        self._generation_headers: dict[int, tuple[str, bytes]] = {}

    def partition(self, calendar_id: str) -> int:
        cached = self._partition_cache.get(calendar_id)
        if cached is None:
            cached = partition_for(calendar_id, self._partitions)
            self._partition_cache[calendar_id] = cached
        return cached

    def encode(
        self, records: Iterable[OutRecord], checkpoint: Checkpoint | None, generation: int
    ) -> list[KafkaRecord]:
        out: list[KafkaRecord] = []
        gen = str(generation).encode()
        for record in records:
            if isinstance(record, ChangeEvent):
                out.append(self._change(record))
            elif isinstance(record, Tombstone):
                out.append(self._tombstone(record, checkpoint, gen))
            else:
                out.append(self._dead_letter(record, gen))
        if checkpoint is not None:
            out.append(self.checkpoint(checkpoint))
        return out

    def checkpoint(self, checkpoint: Checkpoint) -> KafkaRecord:
        stream_id = checkpoint.stream.stream_id
        return KafkaRecord(
            self._topics.checkpoints,
            -1,
            stream_id.encode(),
            self._codec.encode_checkpoint(checkpoint),
            [(HEADER_STREAM, stream_id.encode())],
        )

    def checkpoint_tombstone(self, stream_id: str) -> KafkaRecord:
        """A null value for ``stream_id`` on the checkpoint topic: its record is dropped."""
        key = stream_id.encode()
        return KafkaRecord(self._topics.checkpoints, -1, key, None, [(HEADER_STREAM, key)])

    def _change(self, event: ChangeEvent) -> KafkaRecord:
        calendar_id = event.stream.calendar_id
        stream_id = event.stream.stream_id
        stream_header = self._stream_headers.get(stream_id)
        if stream_header is None:
            if len(self._stream_headers) >= 10_000:
                self._stream_headers.clear()
            stream_header = self._stream_headers[stream_id] = (HEADER_STREAM, stream_id.encode())
        generation_header = self._generation_headers.get(event.generation)
        if generation_header is None:
            if len(self._generation_headers) >= 1_000:
                self._generation_headers.clear()
            generation_header = (HEADER_GENERATION, str(event.generation).encode())
            self._generation_headers[event.generation] = generation_header
        headers: Headers = [self._op_headers[event.op], stream_header, generation_header]
        if event.event is not None:
            version = event.version if event.version is not None else version_of(event.event)
            headers.append((HEADER_VERSION, str(version).encode()))
        return KafkaRecord(
            self._topics.events,
            self.partition(calendar_id),
            self._codec.encode_key(calendar_id, event.event_id),
            self._codec.encode_change(event),
            headers,
        )

    def _tombstone(
        self, record: Tombstone, checkpoint: Checkpoint | None, gen: bytes
    ) -> KafkaRecord:
        stream = checkpoint.stream.stream_id.encode() if checkpoint is not None else b""
        headers: Headers = [
            (HEADER_OP, TOMBSTONE_OP.encode()),
            (HEADER_STREAM, stream),
            (HEADER_GENERATION, gen),
        ]
        return KafkaRecord(
            self._topics.events,
            self.partition(record.calendar_id),
            self._codec.encode_key(record.calendar_id, record.event_id),
            None,
            headers,
        )

    def _dead_letter(self, record: DeadLetter, gen: bytes) -> KafkaRecord:
        item_id = record.item.get("id") if isinstance(record.item, dict) else None
        key = (
            self._codec.encode_key(record.stream.calendar_id, item_id)
            if isinstance(item_id, str)
            else record.stream.stream_id.encode()
        )
        headers: Headers = [
            (HEADER_ERROR, record.error.encode()),
            (HEADER_STREAM, record.stream.stream_id.encode()),
            (HEADER_GENERATION, gen),
        ]
        value = json.dumps(record.item, separators=(",", ":"), ensure_ascii=False).encode()
        return KafkaRecord(self._topics.dead_letter, -1, key, value, headers)


def header(
    headers: Iterable[tuple[str, bytes | str | None]] | dict[str, str | bytes | None] | None,
    name: str,
) -> str | None:
    """A header's value as text, or None."""
    pairs = headers.items() if isinstance(headers, dict) else headers or ()
    for key, value in pairs:
        if key == name:
            if value is None:
                return None
            return value.decode() if isinstance(value, bytes) else value
    return None
