"""Small helpers for integration tests that talk to a real Kafka broker with confluent-kafka.

They create topics, read a topic to its end the way a downstream consumer would, and load the
local broker harness (``deploy/local/kafka/broker.py``, a script, not a package) by file path.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType

from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from connector.adapters import kafka_state
from connector.errors import RetriableError

ROOT = Path(__file__).resolve().parents[1]
BROKER_SCRIPT = ROOT / "deploy" / "local" / "kafka" / "broker.py"


def load_broker_module() -> ModuleType:
    """``deploy/local/kafka/broker.py`` as a module (``LocalKafka``, ``LocalKafkaError``...)."""
    name = "gcal_local_kafka_broker"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BROKER_SCRIPT)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {BROKER_SCRIPT}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def create_topics(
    bootstrap: str,
    names: Iterable[str],
    *,
    partitions: int = 1,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create the topics (one replica each) and wait until the broker has created them all."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = [
        NewTopic(name, num_partitions=partitions, replication_factor=1, config=dict(config or {}))
        for name in names
    ]
    for future in admin.create_topics(new, operation_timeout=timeout).values():
        future.result(timeout=timeout)


def topic_config(bootstrap: str, topic: str, timeout: float = 30.0) -> dict[str, str]:
    """The topic's effective configuration as the broker describes it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=timeout)
    return {name: entry.value for name, entry in entries.items()}


def read_topic(
    bootstrap: str,
    topic: str,
    *,
    isolation_level: str = "read_committed",
    timeout: float = 30.0,
) -> list[Message]:
    """Every record of ``topic`` from the beginning to its end as of the call.

    With ``read_committed`` the end is the last stable offset, so records of aborted (or still
    open) transactions never appear. The connector's own reader (``kafka_state.read_topic``)
    does the work; its errors become AssertionErrors naming the topic.
    """
    try:
        return list(
            kafka_state.read_topic(
                {"bootstrap.servers": bootstrap},
                topic,
                timeout=timeout,
                isolation_level=isolation_level,
            )
        )
    except RetriableError as exc:
        raise AssertionError(f"{topic}: {exc}") from None


def values(messages: Iterable[Message]) -> list[bytes | None]:
    """The record values (None for a tombstone), in the order read."""
    return [message.value() for message in messages]
