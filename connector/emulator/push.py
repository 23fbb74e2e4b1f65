"""Watch channels and notification delivery (reference section 6).

A channel watches one calendar's events or one user's calendarList. Right after creation the
emulator POSTs a ``sync`` message (number 1); after every committed change of the watched
collection it POSTs ``exists`` with a larger, gapped message number. Delivery runs on a small
thread pool so an API request never waits for a webhook. Knobs: drop a share of notifications
(seeded) and delay them. Channels end at their expiration (emulator clock) or on channels.stop.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import logging
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote, urlsplit

from connector.emulator import errors
from connector.emulator.clock import Clock, to_ms

log = logging.getLogger(__name__)
DEFAULT_TTL = 604800


@dataclass
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration_ms: int
    user: str
    kind: str  # "events" | "calendarList"
    key: str  # calendar id or user email
    message_number: int = 1


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PushHub:
    def __init__(self, clock: Clock, seed: int | None = None, workers: int = 4) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._channels: dict[str, Channel] = {}
        self._rng = random.Random(seed)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emulator-push")
        self.drop_probability = 0.0
        self.delay_ms = 0
        self.delivered = 0
        self.dropped = 0
        self.failed = 0

    def configure(
        self,
        *,
        drop_probability: float | None = None,
        delay_ms: int | None = None,
        seed: int | None = None,
    ) -> None:
        with self._lock:
            if drop_probability is not None:
                self.drop_probability = float(drop_probability)
            if delay_ms is not None:
                self.delay_ms = int(delay_ms)
            if seed is not None:
                self._rng = random.Random(seed)

    def watch(
        self,
        *,
        user: str,
        kind: str,
        key: str,
        resource_uri: str,
        body: dict[str, Any],
        ttl: int | None,
    ) -> dict[str, Any]:
        channel_id, address = body.get("id"), body.get("address")
        if not isinstance(channel_id, str) or not channel_id or len(channel_id) > 64:
            raise errors.required("Missing or invalid channel id.")
        if body.get("type") not in ("web_hook", "webhook"):
            raise errors.ApiError(400, "global", "invalid", "Invalid channel type.")
        parts = urlsplit(address) if isinstance(address, str) else None
        if (
            parts is None
            or not parts.hostname
            or not (
                parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
            )
        ):
            raise errors.ApiError(
                400,
                "push",
                "pushWebhookBadDomain",
                "WebHook callback must be HTTPS: " + str(address),
            )
        token = body.get("token")
        now_ms = to_ms(self._clock.now())
        expiration = now_ms + 1000 * (ttl if ttl is not None else DEFAULT_TTL)
        requested = body.get("expiration")
        if requested is not None:
            try:
                expiration = min(expiration, int(requested))
            except (TypeError, ValueError):
                raise errors.invalid_param("expiration") from None
        with self._lock:
            if channel_id in self._channels:
                raise errors.ApiError(400, "global", "channelIdNotUnique", "Channel id not unique")
            channel = Channel(
                channel_id,
                uuid.uuid4().hex[:27],
                resource_uri,
                str(address),
                token if isinstance(token, str) else None,
                expiration,
                user,
                kind,
                key,
            )
            self._channels[channel_id] = channel
        self._send(channel, "sync", 1)
        out: dict[str, Any] = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(channel.expiration_ms),
        }
        if channel.token is not None:
            out["token"] = channel.token
        return out

    def stop(self, body: dict[str, Any]) -> None:
        with self._lock:
            channel = self._channels.get(str(body.get("id")))
            if channel is None or channel.resource_id != body.get("resourceId"):
                raise errors.not_found()
            del self._channels[channel.id]

    def changed(self, kind: str, key: str) -> None:
        """Store listener: a committed change of ``kind``/``key``; notify matching channels."""
        now_ms = to_ms(self._clock.now())
        targets: list[tuple[Channel, int]] = []
        with self._lock:
            for channel in list(self._channels.values()):
                if channel.expiration_ms <= now_ms:
                    del self._channels[channel.id]
                    continue
                if channel.kind == kind and channel.key == key:
                    channel.message_number += self._rng.randint(1, 7)
                    targets.append((channel, channel.message_number))
        for channel, number in targets:
            self._send(channel, "exists", number)

    def _send(self, channel: Channel, state: str, number: int) -> None:
        with self._lock:
            drop = self._rng.random() < self.drop_probability
            delay = self.delay_ms
        if drop:
            self.dropped += 1
            return
        expires = datetime.fromtimestamp(channel.expiration_ms / 1000, UTC)
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Message-Number": str(number),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Channel-Expiration": format_datetime(expires, usegmt=True),
            "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
            "Content-Length": "0",
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token
        with contextlib.suppress(RuntimeError):  # the pool is shut down when the server stops
            self._pool.submit(self._deliver, channel.address, headers, delay)

    def _deliver(self, address: str, headers: dict[str, str], delay_ms: int) -> None:
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)
        parts = urlsplit(address)
        conn_type = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        path = quote(parts.path or "/", safe="/%") + (f"?{parts.query}" if parts.query else "")
        try:
            conn = conn_type(parts.hostname or "", parts.port, timeout=10)
            try:
                conn.request("POST", path, body=b"", headers=headers)
                status = conn.getresponse().status
            finally:
                conn.close()
        except OSError as exc:
            self.failed += 1
            log.info("push to %s failed: %s", address, exc)
            return
        if status in (102, 200, 201, 202, 204):
            self.delivered += 1
        else:
            self.failed += 1
            log.info("push to %s answered %s", address, status)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "channels": [
                    {
                        "id": c.id,
                        "resourceId": c.resource_id,
                        "kind": c.kind,
                        "key": c.key,
                        "expiration": c.expiration_ms,
                    }
                    for c in self._channels.values()
                ],
                "delivered": self.delivered,
                "dropped": self.dropped,
                "failed": self.failed,
                "drop_probability": self.drop_probability,
                "delay_ms": self.delay_ms,
            }

    def clear(self) -> None:
        with self._lock:
            self._channels.clear()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
