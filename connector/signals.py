"""Operator signals: ``gcal-kafka resync --stream ID`` asks a running connector for a resync.

The CLI writes a small JSON record to the signals topic; the connector reads it with its own
consumer group and commits the group's offset only once every requested reset has committed
its RESET_BEGIN, so a request is never lost to a crash (it may, rarely, run twice).
If no connector runs, the request waits in the topic for the next start.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer

from connector.adapters.kafka_admin import client_conf
from connector.errors import RetriableError

log = logging.getLogger(__name__)

ACTION_RESYNC = "resync"


def send_resync(kafka_conf: Mapping[str, Any], topic: str, stream_id: str) -> None:
    producer = Producer({**kafka_conf, "enable.idempotence": True, "acks": "all"})
    body = {
        "action": ACTION_RESYNC,
        "stream": stream_id,
        "requested_at_ms": time.time_ns() // 10**6,
    }
    producer.produce(topic, key=stream_id.encode(), value=json.dumps(body).encode())
    if producer.flush(30):
        raise RetriableError(f"the resync request for {stream_id} was not acknowledged in time")


class SignalReader:
    """Polled from the service's main loop; never blocks."""

    def __init__(
        self,
        kafka_conf: Mapping[str, Any],
        topic: str,
        group_id: str,
        request_resync: Callable[[str], bool],
        is_pending: Callable[[str], bool],
    ) -> None:
        conf = {
            **client_conf(kafka_conf),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
        self._consumer = Consumer(conf)
        self._consumer.subscribe([topic])
        self._request = request_resync
        self._is_pending = is_pending
        self._waiting: set[str] = set()
        self._uncommitted = False

    def poll(self) -> None:
        try:
            for msg in self._consumer.consume(100, 0):
                err = msg.error()
                if err is not None:
                    log.warning("signals: %s", err.str())
                    continue
                self._handle(msg.value())
                self._uncommitted = True
            self._waiting = {s for s in self._waiting if self._is_pending(s)}
            if self._uncommitted and not self._waiting:
                self._consumer.commit(asynchronous=False)
                self._uncommitted = False
        except KafkaException as exc:
            log.warning("signals: %s", exc)

    def _handle(self, value: bytes | None) -> None:
        try:
            body = json.loads(value or b"{}")
            action, stream_id = body.get("action"), body.get("stream")
        except (ValueError, AttributeError):
            log.warning("signals: ignoring a record that is not a JSON object")
            return
        if action != ACTION_RESYNC or not isinstance(stream_id, str):
            log.warning("signals: ignoring unknown action %r", action)
            return
        if self._request(stream_id):
            log.info("operator resync requested", extra={"stream": stream_id})
            self._waiting.add(stream_id)
        else:
            log.warning("signals: no such stream", extra={"stream": stream_id})

    def close(self) -> None:
        self._consumer.close()
