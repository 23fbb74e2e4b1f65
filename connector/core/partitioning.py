"""The partition of a calendar's records: the Java client's default hash of the calendar id.

Every record of a stream (markers included) goes to the partition chosen from the calendar id
alone, so Kafka Streams, ksqlDB and JVM consumers keyed by calendar id co-partition with us.
"""

from __future__ import annotations

_MASK32 = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """``org.apache.kafka.common.utils.Utils.murmur2``: a signed 32-bit int, like Java's."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    end4 = length & ~3
    for i in range(0, end4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    rest = length & 3
    if rest == 3:
        h ^= data[end4 + 2] << 16
    if rest >= 2:
        h ^= data[end4 + 1] << 8
    if rest >= 1:
        h ^= data[end4]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - 0x100000000 if h & 0x80000000 else h


def partition_for(calendar_id: str, partitions: int) -> int:
    """``(murmur2(utf8(calendar_id)) & 0x7fffffff) % partitions``."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return (murmur2(calendar_id.encode("utf-8")) & 0x7FFFFFFF) % partitions
