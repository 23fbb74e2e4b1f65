"""The connector's "read to the end" reader finishes while producers keep committing.

Restoring state at start-up, ``tail`` without ``--follow`` and the tests all read a topic to
its end. End-of-partition events alone never arrive while transactions keep committing (each
fetch finds new data), so the reader takes the last stable offsets when it starts and stops
there.
"""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Producer

from connector.adapters.kafka_state import read_topic
from tests.kafka_helpers import create_topics

pytestmark = pytest.mark.integration


def test_reader_reaches_the_end_while_a_transactional_producer_keeps_committing(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}busy"
    create_topics(kafka_bootstrap, [topic], partitions=2)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"{topic_prefix}busy"}
    )
    producer.init_transactions(30)
    stop = threading.Event()
    committed = [0]

    def keep_committing() -> None:
        while not stop.is_set():
            producer.begin_transaction()
            for partition in (0, 1):
                producer.produce(topic, value=b"x" * 50, partition=partition)
            producer.commit_transaction(30)
            committed[0] += 2

    writer = threading.Thread(target=keep_committing, daemon=True)
    writer.start()
    try:
        while committed[0] < 200:
            time.sleep(0.05)
        reads = []
        for _ in range(3):
            before = committed[0]
            messages = list(read_topic({"bootstrap.servers": kafka_bootstrap}, topic, timeout=20))
            reads.append(len(messages))
            assert len(messages) >= before  # everything committed before the call
            assert all(m.value() == b"x" * 50 for m in messages)
            offsets = [(m.partition(), m.offset()) for m in messages]
            assert len(set(offsets)) == len(offsets)
    finally:
        stop.set()
        writer.join(30)
    assert reads == sorted(reads)  # each read ends later, never earlier
