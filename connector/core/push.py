"""Push notifications: channel identity, secret tokens, verification and renewal decisions.

Pure: no I/O, no clock (times are passed in), no randomness (nonces are passed in).

- A channel id is ``gk-<stream hash>-<nonce>``: unique per channel (Google requires it), and
  the stream it belongs to can be found from it even after the channel was forgotten, so a
  stray notification can be answered by stopping that channel with the right account.
- A channel's secret token is ``HMAC-SHA256(webhook secret, channel id)``: never stored, never
  logged, and a forger without the secret cannot produce it.
- A notification is accepted only if its channel id is live, its resource id matches and its
  token verifies (constant-time comparisons), and its message number is larger than the last one
  accepted on that channel (Google's numbers increase, with gaps), so a replay is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from connector.core.records import Channel

CHANNEL_PREFIX = "gk-"
_STREAM_HASH_CHARS = 16


class Action(StrEnum):
    ACK = "ack"  # a `sync` handshake: nothing to do
    SYNC = "sync"  # `exists`: schedule an incremental pass of the stream
    STOP = "stop"  # one of ours that we no longer track: stop it
    REJECT = "reject"  # forged, malformed or replayed: change nothing


@dataclass(frozen=True, slots=True)
class Notification:
    channel_id: str
    resource_id: str
    state: str
    message_number: int
    token: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    status: int
    action: Action
    reason: str
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class KnownChannel:
    """A channel we opened: its stream, and its resource id once Google answered the watch."""

    stream_id: str
    resource_id: str | None


def stream_hash(stream_id: str) -> str:
    return hashlib.sha256(stream_id.encode()).hexdigest()[:_STREAM_HASH_CHARS]


def new_channel_id(stream_id: str, nonce: str) -> str:
    """A fresh channel id for a stream; ``nonce`` is random hex supplied by the caller."""
    return f"{CHANNEL_PREFIX}{stream_hash(stream_id)}-{nonce}"


def stream_hash_of(channel_id: str) -> str | None:
    if not channel_id.startswith(CHANNEL_PREFIX):
        return None
    part = channel_id[len(CHANNEL_PREFIX) :].split("-", 1)[0]
    return part if len(part) == _STREAM_HASH_CHARS else None


def channel_token(secret: bytes, channel_id: str) -> str:
    return hmac.new(secret, channel_id.encode(), hashlib.sha256).hexdigest()


def parse(headers: Mapping[str, str]) -> Notification | None:
    """Google's notification headers (case-insensitive), or None when they are malformed."""
    lower = {k.lower(): v for k, v in headers.items()}
    channel_id = lower.get("x-goog-channel-id")
    resource_id = lower.get("x-goog-resource-id")
    state = lower.get("x-goog-resource-state")
    number = lower.get("x-goog-message-number")
    if not channel_id or not resource_id or not state or not number:
        return None
    try:
        message_number = int(number)
    except ValueError:
        return None
    if message_number < 1 or len(channel_id) > 200 or len(resource_id) > 500:
        return None
    return Notification(
        channel_id, resource_id, state, message_number, lower.get("x-goog-channel-token")
    )


def decide(
    note: Notification | None,
    known: KnownChannel | None,
    secret: bytes,
    last_number: int | None,
) -> Decision:
    """What to answer and do for one notification."""
    if note is None:
        return Decision(400, Action.REJECT, "malformed")
    expected = channel_token(secret, note.channel_id)
    token_ok = note.token is not None and hmac.compare_digest(note.token, expected)
    if not token_ok:
        return Decision(403, Action.REJECT, "bad_token")
    if known is None:
        # Signed by us, but not a channel we track (renewed, or state lost): stop it.
        return Decision(404, Action.STOP, "unknown_channel")
    if known.resource_id is not None and not hmac.compare_digest(
        note.resource_id, known.resource_id
    ):
        return Decision(403, Action.REJECT, "bad_resource", known.stream_id)
    if last_number is not None and note.message_number <= last_number:
        return Decision(409, Action.REJECT, "replayed", known.stream_id)
    if note.state == "sync":
        return Decision(200, Action.ACK, "sync", known.stream_id)
    if note.state in ("exists", "not_exists"):
        return Decision(200, Action.SYNC, note.state, known.stream_id)
    return Decision(400, Action.REJECT, "unknown_state", known.stream_id)


def needs_renewal(channel: Channel | None, now_ms: int, renew_before_ms: int) -> bool:
    """True when the stream has no channel, or it expires within ``renew_before_ms``."""
    return channel is None or channel.expiration_ms - renew_before_ms <= now_ms


def renewal_due_ms(channel: Channel, renew_before_ms: int) -> int:
    return channel.expiration_ms - renew_before_ms
