"""Our partitioner agrees with the Java client's default (murmur2 of the key bytes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.core.partitioning import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (apache/kafka, clients/src/test/java).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("data", "expected"), list(KAFKA_VECTORS.items()))
def test_murmur2_matches_kafkas_own_test_vectors(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_the_java_default_partition_of_the_calendar_id() -> None:
    assert partition_for("21", 12) == (-973932308 & 0x7FFFFFFF) % 12
    assert partition_for("foobar", 7) == (-790332482 & 0x7FFFFFFF) % 7
    assert partition_for("anything", 1) == 0


def test_calendar_ids_are_hashed_as_utf8() -> None:
    calendar_id = "gruppe-ä@group.calendar.google.com"
    assert (
        partition_for(calendar_id, 1000)
        == (murmur2(calendar_id.encode("utf-8")) & 0x7FFFFFFF) % 1000
    )


@given(st.binary(max_size=64))
def test_murmur2_is_a_signed_32_bit_int(data: bytes) -> None:
    assert -(2**31) <= murmur2(data) < 2**31


@given(st.text(max_size=40), st.integers(min_value=1, max_value=500))
def test_partition_is_in_range_and_stable(calendar_id: str, partitions: int) -> None:
    partition = partition_for(calendar_id, partitions)
    assert 0 <= partition < partitions
    assert partition_for(calendar_id, partitions) == partition


def test_zero_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="partitions"):
        partition_for("x", 0)
