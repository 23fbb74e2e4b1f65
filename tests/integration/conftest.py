"""Fixtures for tests against a real Apache Kafka broker.

``kafka_bootstrap`` is the broker's address for the whole session: the broker named by
``GCAL_KAFKA_TEST_BOOTSTRAP`` if set, otherwise a local Kafka (KRaft, one node) started from the
Maven Central jars by ``deploy/local/kafka/broker.py`` and stopped at the end of the session.
If no broker can be had, the tests fail when ``CI=true`` and are skipped, with the reason,
elsewhere. Tests share the broker, so each one names its topics with ``topic_prefix``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.kafka_helpers import load_broker_module

EXTERNAL_ENV = "GCAL_KAFKA_TEST_BOOTSTRAP"
START_TIMEOUT = 120.0  # generous: two shared cores; a cold start takes about 4 s when idle


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"Kafka broker unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"Kafka broker unavailable: {reason}")


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The ``LocalKafka`` this session started (for restart tests), or None for an external
    broker. A test that stops or restarts it must leave it running for the tests after it.
    """
    if os.environ.get(EXTERNAL_ENV):
        yield None
        return
    harness = load_broker_module()
    broker = harness.LocalKafka(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start(timeout=START_TIMEOUT)
    except harness.LocalKafkaError as exc:
        broker.stop()
        _unavailable(str(exc))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: Any) -> str:
    """``host:port`` of a broker that serves clients."""
    if kafka_broker is not None:
        return str(kafka_broker.bootstrap)
    bootstrap = os.environ[EXTERNAL_ENV]
    if not load_broker_module().is_serving(bootstrap, timeout=10.0):
        _unavailable(f"{EXTERNAL_ENV}={bootstrap} does not answer Kafka Metadata requests")
    return bootstrap


@pytest.fixture
def topic_prefix() -> str:
    """A prefix unique to this test, e.g. ``t-1a2b3c4d.``, for every topic and id it creates."""
    return f"t-{uuid.uuid4().hex[:8]}."


@pytest.fixture
def emulator() -> Iterator[Any]:
    """A fresh, empty Google Calendar emulator over HTTP (seed it with ``.control.seed``)."""
    from connector.emulator.server import EmulatorServer
    from tests.integration.engine import close_clients

    server = EmulatorServer(port=0).start()
    try:
        yield server
    finally:
        close_clients()
        server.stop()
