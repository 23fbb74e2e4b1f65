"""The sync state machine of one stream: no I/O, no clock, no randomness.

A *pass* runs ``events.list`` from its first page to the page that carries ``nextSyncToken``.
``start_pass`` decides, from the committed checkpoint, whether the next pass resumes, goes on
incrementally, or begins a new generation (a reset). ``apply_page`` turns one page of Google
items into the records to publish and the checkpoint that points past the page; both go into one
Kafka transaction. ``on_full_sync_required`` and friends turn Google's signals into new passes.

Published-id bookkeeping (exact CREATED vs UPDATED, and no version twice): ``Published`` holds,
for the current generation, the ids whose latest record is a live event or a cancelled
occurrence, each with the version (a hash of Google's etag) last published, and the ids deleted
in it. A deletion moves the id out of ``live``, so an event restored later is CREATED again.
An item whose version was already published is skipped: Google may return an event changed
while a pass pages in that pass and again in the next one. The versions travel in a record
header, so a restarted connector rebuilds all of this from the topic's headers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connector.core import mapping
from connector.core.records import (
    ChangeEvent,
    Checkpoint,
    Op,
    Phase,
    ResetReason,
    StreamRef,
    Trigger,
)
from connector.errors import StreamFailedError, UnmappableItemError


def version_of(item: Mapping[str, Any]) -> int:
    """A stable 63-bit version of a Google item: its etag, or its content without one."""
    etag = item.get("etag")
    basis = etag if isinstance(etag, str) else json.dumps(item, sort_keys=True, default=str)
    digest = hashlib.blake2b(basis.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass
class Published:
    """What one stream has published in its current generation (see the module docstring)."""

    live: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.live)

    def state(self, event_id: str) -> tuple[int | None, bool]:
        """(version last published, whether that was a deletion); (None, False) if never."""
        version = self.live.get(event_id)
        if version is not None:
            return version, False
        deleted = self.deleted.get(event_id)
        return (deleted, True) if deleted is not None else (None, False)

    def record(self, event_id: str, version: int, deletion: bool) -> None:
        if deletion:
            self.live.pop(event_id, None)
            self.deleted[event_id] = version
        else:
            self.deleted.pop(event_id, None)
            self.live[event_id] = version

    def clear(self) -> None:
        self.live.clear()
        self.deleted.clear()


_NOTHING = Published()


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A null value after a deletion, so compaction can drop the key."""

    calendar_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A Google item that could not be mapped, with the reason."""

    stream: StreamRef
    item: Any
    error: str


OutRecord = ChangeEvent | Tombstone | DeadLetter


@dataclass(frozen=True, slots=True)
class Pass:
    """Where a pass is: what to send to Google next, and what to publish with the first page."""

    checkpoint: Checkpoint
    trigger: Trigger
    reset: ResetReason | None = None  # a RESET_BEGIN is due with the first page of this pass

    @property
    def sync_token(self) -> str | None:
        return self.checkpoint.sync_token if self.checkpoint.phase is Phase.INCREMENTAL else None

    @property
    def page_token(self) -> str | None:
        return self.checkpoint.page_token


@dataclass(frozen=True, slots=True)
class PageResult:
    records: list[OutRecord]
    checkpoint: Checkpoint
    changes: dict[str, tuple[int, bool]]  # event id -> (version, deletion), in page order
    done: bool
    dead_letters: int = 0
    new_generation: bool = False
    skipped: int = 0  # items whose version was already published

    def counts(self) -> dict[Op, int]:
        result: dict[Op, int] = {}
        for record in self.records:
            if isinstance(record, ChangeEvent):
                result[record.op] = result.get(record.op, 0) + 1
        return result


def _reset_trigger(reason: ResetReason, trigger: Trigger) -> Trigger:
    if reason is ResetReason.OPERATOR:
        return Trigger.OPERATOR
    if reason in (ResetReason.INITIAL, ResetReason.QUERY_CHANGED):
        return trigger
    return Trigger.RESET


def new_generation(
    stream: StreamRef,
    previous: Checkpoint | None,
    fingerprint: str,
    reason: ResetReason,
    trigger: Trigger,
) -> Pass:
    """A reset: generation + 1, a full pass from the first page, RESET_BEGIN with its first page."""
    generation = previous.generation + 1 if previous is not None else 1
    checkpoint = Checkpoint(
        stream=stream,
        generation=generation,
        phase=Phase.FULL,
        query_fingerprint=fingerprint,
        reset_reason=reason,
        channel=previous.channel if previous is not None else None,
        last_success_at_ms=previous.last_success_at_ms if previous is not None else None,
    )
    return Pass(checkpoint, _reset_trigger(reason, trigger), reset=reason)


def start_pass(
    stream: StreamRef,
    committed: Checkpoint | None,
    fingerprint: str,
    trigger: Trigger,
    *,
    operator_reset: bool = False,
) -> Pass:
    """Decide what the next pass of a stream is, from its last committed checkpoint."""
    if committed is None:
        return new_generation(stream, None, fingerprint, ResetReason.INITIAL, trigger)
    if operator_reset:
        return new_generation(stream, committed, fingerprint, ResetReason.OPERATOR, trigger)
    if committed.query_fingerprint != fingerprint:
        return new_generation(stream, committed, fingerprint, ResetReason.QUERY_CHANGED, trigger)
    if committed.phase is Phase.FULL:
        # A full pass was interrupted: resume it in the same generation (no new RESET_BEGIN).
        reason = committed.reset_reason or ResetReason.INITIAL
        return Pass(committed, _reset_trigger(reason, trigger))
    if committed.sync_token is None:
        # The calendar was gone (or the token lost): if it answers again, start from scratch.
        return new_generation(stream, committed, fingerprint, ResetReason.INITIAL, trigger)
    return Pass(committed, trigger)


def on_full_sync_required(current: Pass) -> Pass:
    """Google answered 410 to an incremental list: a new generation (TOKEN_INVALIDATED)."""
    cp = current.checkpoint
    return new_generation(
        cp.stream, cp, cp.query_fingerprint, ResetReason.TOKEN_INVALIDATED, current.trigger
    )


def on_page_token_rejected(current: Pass, committed: Checkpoint | None) -> Pass:
    """Google rejected a stored page token: restart the pass from its beginning.

    An incremental pass restarts from its sync token; a full pass becomes a new generation.
    """
    cp = current.checkpoint
    if cp.phase is Phase.INCREMENTAL:
        return Pass(replace(cp, page_token=None), current.trigger)
    return new_generation(
        cp.stream, committed, cp.query_fingerprint, ResetReason.TOKEN_INVALIDATED, current.trigger
    )


def on_calendar_gone(current: Pass, committed: Checkpoint | None) -> Pass:
    """404 or lost access: a new generation whose full sync is empty (CALENDAR_GONE)."""
    cp = current.checkpoint
    return new_generation(
        cp.stream, committed, cp.query_fingerprint, ResetReason.CALENDAR_GONE, current.trigger
    )


def apply_page(
    current: Pass,
    items: Sequence[Any],
    next_page_token: str | None,
    next_sync_token: str | None,
    published: Published,
    now_ms: int,
    *,
    tombstones: bool = True,
) -> tuple[PageResult, Pass]:
    """Map one page into records plus the checkpoint past it; return the pass that follows."""
    cp = current.checkpoint
    stream = cp.stream
    if next_page_token is None and next_sync_token is None:
        raise StreamFailedError(
            "Google returned a last page without nextSyncToken", stream_id=stream.stream_id
        )
    records: list[OutRecord] = []
    if current.reset is not None:
        records.append(_marker(Op.RESET_BEGIN, current, now_ms, reason=current.reset))
        published = _NOTHING  # a new generation: nothing is published in it yet
    changes: dict[str, tuple[int, bool]] = {}
    dead = 0
    skipped = 0
    count = cp.published_count
    for item in items:
        try:
            event_id = mapping.event_id_of(item)
        except UnmappableItemError as exc:
            records.append(DeadLetter(stream, item, str(exc)))
            dead += 1
            continue
        last_version, last_deleted = changes.get(event_id) or published.state(event_id)
        version = version_of(item)
        if mapping.is_cancelled(item):
            op = Op.CANCELLED
            deletion = not mapping.is_instance_exception(item)
        else:
            op = Op.UPDATED if last_version is not None and not last_deleted else Op.CREATED
            deletion = False
        if version == last_version and deletion == last_deleted:
            skipped += 1  # this very version is already published in this generation
            continue
        records.append(
            ChangeEvent(
                op=op,
                stream=stream,
                generation=cp.generation,
                phase=cp.phase,
                trigger=current.trigger,
                published_at_ms=now_ms,
                event_id=event_id,
                event=item,
                source_updated_at_ms=mapping.source_updated_ms(item),
                version=version,
            )
        )
        count += 1
        changes[event_id] = (version, deletion)
        if deletion and tombstones:
            records.append(Tombstone(stream.calendar_id, event_id))

    if next_page_token is not None:
        checkpoint = replace(
            cp, page_token=next_page_token, published_count=count, last_attempt_at_ms=now_ms
        )
        done = False
    else:
        if cp.phase is Phase.FULL:
            records.append(_marker(Op.RESET_END, current, now_ms, event_count=count))
        checkpoint = replace(
            cp,
            phase=Phase.INCREMENTAL,
            sync_token=next_sync_token,
            page_token=None,
            reset_reason=None,
            published_count=0,
            last_attempt_at_ms=now_ms,
            last_success_at_ms=now_ms,
        )
        done = True
    result = PageResult(
        records,
        checkpoint,
        changes,
        done,
        dead,
        new_generation=current.reset is not None,
        skipped=skipped,
    )
    return result, Pass(checkpoint, current.trigger)


def calendar_gone_result(current: Pass, now_ms: int) -> PageResult:
    """The empty full sync of a CALENDAR_GONE generation: RESET_BEGIN, RESET_END(0), no token.

    The checkpoint keeps no sync token, so if the calendar comes back, its next pass starts a
    new generation (INITIAL) from scratch.
    """
    records: list[OutRecord] = [
        _marker(Op.RESET_BEGIN, current, now_ms, reason=ResetReason.CALENDAR_GONE),
        _marker(Op.RESET_END, current, now_ms, event_count=0),
    ]
    checkpoint = replace(
        current.checkpoint,
        phase=Phase.INCREMENTAL,
        sync_token=None,
        page_token=None,
        reset_reason=None,
        published_count=0,
        last_attempt_at_ms=now_ms,
        extra={**current.checkpoint.extra, "gone": "true"},
    )
    return PageResult(records, checkpoint, {}, True, new_generation=True)


def _marker(
    op: Op,
    current: Pass,
    now_ms: int,
    *,
    reason: ResetReason | None = None,
    event_count: int | None = None,
) -> ChangeEvent:
    cp = current.checkpoint
    return ChangeEvent(
        op=op,
        stream=cp.stream,
        generation=cp.generation,
        phase=Phase.FULL,
        trigger=current.trigger,
        published_at_ms=now_ms,
        reason=reason,
        event_count=event_count,
    )


def apply_delta(published: Published, result: PageResult) -> None:
    """Apply a committed page's changes to the stream's published state."""
    if result.new_generation:
        published.clear()
    for event_id, (version, deletion) in result.changes.items():
        published.record(event_id, version, deletion)


def rebuild_published(
    records: Iterable[tuple[str | None, Op | None, int | None, Mapping[str, Any] | None]],
) -> Published:
    """The published state of one generation from its records in topic order.

    Each tuple is (event_id, op, version, event) of a record of that stream and generation;
    ``op`` None means a tombstone, ``event`` is needed only for CANCELLED (occurrence or
    deletion). Markers (event_id None) are ignored.
    """
    published = Published()
    for event_id, op, version, event in records:
        if event_id is None:
            continue
        if op is None:
            if event_id in published.live:
                published.record(event_id, published.live[event_id], deletion=True)
            continue
        deletion = op is Op.CANCELLED and not (event and mapping.is_instance_exception(event))
        published.record(event_id, version if version is not None else -1, deletion)
    return published
