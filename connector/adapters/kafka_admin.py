"""Create the connector's topics and check the ones that exist (confluent-kafka AdminClient)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from connector.errors import ConfigError, RetriableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]
    must_be_compacted: bool = False


def client_conf(kafka_conf: Mapping[str, Any]) -> dict[str, Any]:
    """The user's ``kafka:`` settings without the producer-only ones: for consumers and admins."""
    producer_only = ("linger", "acks", "compression", "queue.buffering", "enable.idempotence")
    return {k: v for k, v in kafka_conf.items() if not k.startswith(producer_only)}


def topic_partitions(kafka_conf: Mapping[str, Any], topic: str, timeout: float = 30.0) -> int:
    admin = AdminClient(client_conf(kafka_conf))
    metadata = admin.list_topics(topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None or info.error is not None:
        raise RetriableError(f"topic {topic} is not available")
    return len(info.partitions)


def ensure_topics(
    kafka_conf: Mapping[str, Any],
    specs: list[TopicSpec],
    *,
    create: bool = True,
    timeout: float = 30.0,
) -> None:
    """Create missing topics; refuse (ConfigError, exit 2) a checkpoint topic not compacted."""
    admin = AdminClient(client_conf(kafka_conf))
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise RetriableError(f"cannot reach the Kafka cluster: {exc}") from None
    missing = [s for s in specs if s.name not in existing]
    if missing and not create:
        raise ConfigError(
            [f"topic {s.name} does not exist (topics.create is false)" for s in missing]
        )
    if missing:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=s.replication_factor,
                    config=dict(s.config),
                )
                for s in missing
            ],
            operation_timeout=timeout,
        )
        for name, future in futures.items():
            try:
                future.result()
                log.info("created topic", extra={"topic": name})
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise ConfigError(
                        [f"cannot create topic {name}: {exc.args[0].str()}"]
                    ) from None
    problems = []
    for spec in specs:
        if spec.must_be_compacted:
            policy = _topic_config(admin, spec.name, "cleanup.policy", timeout)
            if policy is None or "compact" not in policy.split(","):
                problems.append(
                    f"topic {spec.name}: cleanup.policy is {policy!r}; the checkpoint topic must be"
                    " compacted (cleanup.policy=compact)"
                )
    if problems:
        raise ConfigError(problems)


def _topic_config(admin: AdminClient, topic: str, name: str, timeout: float) -> str | None:
    """A topic's config value; retried while a just-created topic is not yet known."""
    resource = ConfigResource(ResourceType.TOPIC, topic)
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = admin.describe_configs([resource], request_timeout=timeout)[resource].result()
        except KafkaException as exc:
            err = exc.args[0]
            if err.code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() > deadline:
                raise RetriableError(f"cannot describe topic {topic}: {err.str()}") from None
            time.sleep(0.2)
            continue
        entry = result.get(name)
        return None if entry is None else str(entry.value)
