"""The data the sync core produces and consumes: change events, checkpoints, stream identity.

Plain frozen dataclasses with no I/O. The Avro codec (``connector.adapters.avro_codec``) turns
them into bytes and back; the mapping (``connector.core.mapping``) turns a Google item into the
typed ``CalendarEvent`` record and back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Op(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    CANCELLED = "CANCELLED"
    RESET_BEGIN = "RESET_BEGIN"
    RESET_END = "RESET_END"


class Phase(StrEnum):
    FULL = "FULL"
    INCREMENTAL = "INCREMENTAL"


class Trigger(StrEnum):
    STARTUP = "STARTUP"
    POLL = "POLL"
    PUSH = "PUSH"
    RESET = "RESET"
    OPERATOR = "OPERATOR"


class ResetReason(StrEnum):
    INITIAL = "INITIAL"
    TOKEN_INVALIDATED = "TOKEN_INVALIDATED"
    QUERY_CHANGED = "QUERY_CHANGED"
    OPERATOR = "OPERATOR"
    CALENDAR_GONE = "CALENDAR_GONE"


@dataclass(frozen=True, slots=True)
class StreamRef:
    """One calendar synced under one account: ``stream_id`` is stable and never uses ``primary``."""

    stream_id: str
    account: str
    calendar_id: str


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One value on the events topic (``gcal.events``), before encoding.

    ``event`` is the Google item exactly as received (a JSON object) for CREATED / UPDATED /
    CANCELLED, and None for the RESET markers. ``version`` is the item's version
    (``sync.version_of``), which travels in a record header, not in the Avro body; None when
    not computed yet.
    """

    op: Op
    stream: StreamRef
    generation: int
    phase: Phase
    trigger: Trigger
    published_at_ms: int
    event_id: str | None = None
    event: Mapping[str, Any] | None = None
    source_updated_at_ms: int | None = None
    reason: ResetReason | None = None
    event_count: int | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    """An open push channel. Its secret token is derived from the webhook secret, never stored."""

    id: str
    resource_id: str
    expiration_ms: int


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One value on the checkpoint topic (``gcal.checkpoints``), keyed by ``stream.stream_id``.

    ``sync_token`` is set only after a complete pass; ``page_token`` resumes a pass after a
    restart. ``query_fingerprint`` identifies the list parameters the generation was built with.
    ``published_count`` counts events published so far in the current full pass (for RESET_END);
    ``reset_reason`` is the reason of the full pass under way (None on incremental passes).
    """

    stream: StreamRef
    generation: int
    phase: Phase
    query_fingerprint: str
    sync_token: str | None = None
    page_token: str | None = None
    reset_reason: ResetReason | None = None
    published_count: int = 0
    last_attempt_at_ms: int | None = None
    last_success_at_ms: int | None = None
    channel: Channel | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
