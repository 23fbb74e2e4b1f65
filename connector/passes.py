"""One pass of one stream: fetch a page, map it, commit it with its checkpoint, repeat.

The next page is fetched while the previous page's transaction commits. A stream's state (its
committed checkpoint and published ids) changes only once a commit succeeded, so any failure
leaves the stream at its last committed checkpoint, exactly where a restarted process resumes.
One exception: a quiet pass (``connector.core.quiet``: an incremental pass that saw nothing) is
not committed; the stream keeps its new sync token in memory, while Kafka keeps an older token
that returns the same changes after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Protocol

from connector.adapters.kafka_records import KafkaRecord, RecordEncoder
from connector.core import quiet, sync
from connector.core.calendar_source import CalendarSource
from connector.core.records import ChangeEvent, Checkpoint, Op, Phase, ResetReason, Trigger
from connector.errors import CalendarGoneError, FullSyncRequired, PageTokenRejected, RetriableError
from connector.observe import SyncObserver
from connector.streams import StreamSpec, full_sync_time_min

log = logging.getLogger(__name__)


def is_gone(checkpoint: Checkpoint | None) -> bool:
    return checkpoint is not None and checkpoint.extra.get("gone") == "true"


class ChangePublisher(Protocol):
    def submit(self, records: list[KafkaRecord]) -> Future[None]: ...


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()


@dataclass
class StreamRuntime:
    spec: StreamSpec
    committed: Checkpoint | None
    published: sync.Published = field(default_factory=sync.Published)
    operator_reset: bool = False
    attempts: int = 0
    state: str = "idle"
    removal_pending: bool = False  # the calendar left the account's list
    # Set while Kafka holds an older checkpoint than ``committed`` (quiet passes were not
    # committed): when that checkpoint's sync token was obtained. None: Kafka has ``committed``.
    stored_token_ms: int | None = None


@dataclass
class Pending:
    """A submitted page: what ``settle`` needs once it is committed, and nothing more.

    The page's records (every Google item of the page) are not kept: they die once encoded,
    while the next page is fetched, instead of living through it. A page of 2,500 events is
    about 20 MB of Python objects that the garbage collector would otherwise scan again and
    again; holding two pages per worker doubled the heap and the collector's work.
    """

    future: Future[None]
    result: sync.PageResult  # without its records
    counts: dict[Op, int]
    newest_ms: int | None  # the newest ``updated`` among the page's events
    reason: ResetReason | None  # the page's RESET_BEGIN reason, if it has one

    @classmethod
    def of(cls, future: Future[None], result: sync.PageResult) -> Pending:
        newest = 0
        reason: ResetReason | None = None
        for record in result.records:
            if isinstance(record, ChangeEvent):
                if record.reason is not None and reason is None:
                    reason = record.reason
                updated = record.source_updated_at_ms
                if updated is not None and updated > newest:
                    newest = updated
        slim = replace(result, records=[])
        return cls(future, slim, result.counts(), newest or None, reason)


class PassRunner:
    def __init__(
        self,
        *,
        sources: Mapping[str, CalendarSource],
        publisher: ChangePublisher,
        encoder: RecordEncoder,
        clock: Clock,
        observer: SyncObserver,
        tombstones: bool,
        acquire: Callable[[str], None],
        stopping: Callable[[], bool],
        quiet_commit_max_age_ms: int = quiet.QUIET_COMMIT_MAX_AGE_MS,
    ) -> None:
        self._sources = sources
        self._publisher = publisher
        self._encoder = encoder
        self._clock = clock
        self._observer = observer
        self._tombstones = tombstones
        self._acquire = acquire
        self._stopping = stopping
        self._quiet_max_age_ms = quiet_commit_max_age_ms

    def run(self, rt: StreamRuntime, trigger: Trigger) -> str:
        """One pass of one stream, page by page; returns the phase it started in."""
        spec = rt.spec
        source = self._sources[spec.account.name]
        current = sync.start_pass(
            spec.ref, rt.committed, spec.fingerprint, trigger, operator_reset=rt.operator_reset
        )
        current = self.with_window(spec, current)
        pending: Pending | None = None
        first_phase = current.checkpoint.phase.value
        while True:
            if self._stopping():
                self.settle(rt, pending)
                return first_phase
            try:
                self._acquire(spec.account.name)
                cp = current.checkpoint
                page = source.list_events(
                    spec.ref.calendar_id,
                    spec.query(cp.extra.get("time_min") if cp.phase is Phase.FULL else None),
                    sync_token=current.sync_token,
                    page_token=current.page_token,
                )
            except FullSyncRequired:
                self.settle(rt, pending)
                pending = None
                if current.sync_token is None:
                    raise RetriableError("410 on a full pass", status=410) from None
                current = self.with_window(spec, sync.on_full_sync_required(current))
                continue
            except PageTokenRejected:
                self.settle(rt, pending)
                pending = None
                current = self.with_window(spec, sync.on_page_token_rejected(current, rt.committed))
                continue
            except CalendarGoneError:
                self.settle(rt, pending)
                if is_gone(rt.committed):
                    rt.state = "gone"  # still gone: its empty generation is already published
                    return first_phase
                gone = sync.on_calendar_gone(current, rt.committed)
                result = sync.calendar_gone_result(gone, self._clock.now_ms())
                self.settle(rt, self.submit(rt, result))
                rt.state = "gone"
                log.warning(
                    "calendar gone: published an empty generation",
                    extra={"stream": spec.ref.stream_id},
                )
                return first_phase
            except BaseException:
                self.settle(rt, pending)
                raise
            self.settle(rt, pending)
            now_ms = self._clock.now_ms()
            result, current = sync.apply_page(
                current,
                page.items,
                page.next_page_token,
                page.next_sync_token,
                rt.published,
                now_ms,
                tombstones=self._tombstones,
            )
            if self.keep_quiet(rt, result, now_ms):
                return first_phase
            pending = self.submit(rt, result)
            if result.done:
                self.settle(rt, pending)
                return first_phase
            del page, result  # the page's objects die now, not after the next page arrives

    def with_window(self, spec: StreamSpec, current: sync.Pass) -> sync.Pass:
        """Fix the full pass's ``timeMin`` when it begins, so every page sends the same one."""
        cp = current.checkpoint
        if current.reset is None or cp.phase is not Phase.FULL:
            return current
        time_min = full_sync_time_min(spec.options, self._clock.now_ms())
        extra = {k: v for k, v in cp.extra.items() if k not in ("time_min", "gone")}
        if time_min is not None:
            extra["time_min"] = time_min
        return replace(current, checkpoint=replace(cp, extra=extra))

    def keep_quiet(self, rt: StreamRuntime, result: sync.PageResult, now_ms: int) -> bool:
        """A quiet pass: the new checkpoint stays in memory only (see the module docstring)."""
        committed = rt.committed
        stored = rt.stored_token_ms
        if stored is None and committed is not None:
            stored = committed.last_success_at_ms
        if not quiet.can_skip_commit(committed, result, stored, now_ms, self._quiet_max_age_ms):
            return False
        rt.stored_token_ms = stored
        rt.committed = result.checkpoint
        return True

    def submit(self, rt: StreamRuntime, result: sync.PageResult) -> Pending:
        records = self._encoder.encode(
            result.records, result.checkpoint, result.checkpoint.generation
        )
        return Pending.of(self._publisher.submit(records), result)

    def settle(self, rt: StreamRuntime, pending: Pending | None) -> None:
        """Wait for a submitted page; on success, apply it to the stream's state."""
        if pending is None:
            return
        pending.future.result()
        result = pending.result
        sync.apply_delta(rt.published, result)
        rt.committed = result.checkpoint
        rt.stored_token_ms = None
        stream_id = rt.spec.ref.stream_id
        if result.new_generation:
            reason = pending.reason or ResetReason.INITIAL
            if reason is ResetReason.OPERATOR:
                rt.operator_reset = False
            self._observer.reset(stream_id, reason)
            log.info(
                "new generation %d (%s)",
                result.checkpoint.generation,
                reason.value,
                extra={"stream": stream_id},
            )
        self._observer.published(stream_id, pending.counts, result.dead_letters)
        self._observer.checkpoint_committed(stream_id, pending.newest_ms)
