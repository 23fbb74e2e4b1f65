"""The broker the tests run against keeps the Kafka promises the connector's exactly-once design
stands on: aborted transactions stay invisible to read_committed readers, a second producer with
the same transactional id fences the first and aborts its open transaction, compacted topics
are compacted, and committed data survives a broker restart.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from tests.kafka_helpers import create_topics, read_topic, topic_config, values

pytestmark = pytest.mark.integration

TIMEOUT = 30.0


def transactional_producer(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "transaction.timeout.ms": 10_000,
            "linger.ms": 0,
        }
    )
    producer.init_transactions(TIMEOUT)
    return producer


def test_aborted_transaction_is_invisible_to_read_committed(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}events"
    create_topics(kafka_bootstrap, [topic])
    producer = transactional_producer(kafka_bootstrap, f"{topic_prefix}tx")

    producer.begin_transaction()
    producer.produce(topic, b"committed-1")
    producer.commit_transaction(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, b"aborted")
    producer.flush(TIMEOUT)  # the record reaches the log before the abort
    producer.abort_transaction(TIMEOUT)
    producer.begin_transaction()
    producer.produce(topic, b"committed-2")
    producer.commit_transaction(TIMEOUT)

    committed = read_topic(kafka_bootstrap, topic, isolation_level="read_committed")
    assert values(committed) == [b"committed-1", b"committed-2"]
    everything = read_topic(kafka_bootstrap, topic, isolation_level="read_uncommitted")
    assert values(everything) == [b"committed-1", b"aborted", b"committed-2"]


def test_same_transactional_id_fences_the_first_producer_and_aborts_its_transaction(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}events"
    transactional_id = f"{topic_prefix}worker"
    create_topics(kafka_bootstrap, [topic])
    zombie = transactional_producer(kafka_bootstrap, transactional_id)
    zombie.begin_transaction()
    zombie.produce(topic, b"zombie-open")
    zombie.flush(TIMEOUT)

    successor = transactional_producer(kafka_bootstrap, transactional_id)

    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, b"zombie-late")
        zombie.commit_transaction(TIMEOUT)
    error: KafkaError = raised.value.args[0]
    fenced = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
    assert error.fatal() or error.code() in fenced, error
    zombie.purge()  # drop "zombie-late": a fenced producer can never deliver it
    zombie.poll(0)  # serve its failed delivery report

    successor.begin_transaction()
    successor.produce(topic, b"successor")
    successor.commit_transaction(TIMEOUT)

    committed = read_topic(kafka_bootstrap, topic, isolation_level="read_committed")
    assert values(committed) == [b"successor"]
    everything = read_topic(kafka_bootstrap, topic, isolation_level="read_uncommitted")
    assert b"zombie-open" in values(everything)
    assert b"zombie-late" not in values(committed)


def test_compacted_topic_reports_its_cleanup_policy(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    topic = f"{topic_prefix}checkpoints"
    create_topics(kafka_bootstrap, [topic], config={"cleanup.policy": "compact"})

    assert topic_config(kafka_bootstrap, topic)["cleanup.policy"] == "compact"


def test_committed_records_survive_a_broker_restart(
    kafka_broker: Any, kafka_bootstrap: str, topic_prefix: str
) -> None:
    if kafka_broker is None:
        pytest.skip("restart needs the broker this session started, not GCAL_KAFKA_TEST_BOOTSTRAP")
    topic = f"{topic_prefix}events"
    create_topics(kafka_bootstrap, [topic])
    producer = transactional_producer(kafka_bootstrap, f"{topic_prefix}tx")
    producer.begin_transaction()
    producer.produce(topic, b"before-restart")
    producer.commit_transaction(TIMEOUT)
    del producer

    assert kafka_broker.restart() == kafka_bootstrap

    again = transactional_producer(kafka_bootstrap, f"{topic_prefix}tx")
    again.begin_transaction()
    again.produce(topic, b"after-restart")
    again.commit_transaction(TIMEOUT)
    committed = read_topic(kafka_bootstrap, topic, isolation_level="read_committed")
    assert values(committed) == [b"before-restart", b"after-restart"]
