"""The loop that drives the sync core through the adapters.

A scheduler hands due streams to a bounded pool of worker threads; a stream is never synced by
two threads at once. A worker runs one pass (``connector.passes``), then looks after the
stream's push channel and schedules its next pass; failures back off per stream or per
account. Accounts in "all calendars" mode follow their calendar list.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from connector.adapters.kafka_records import RecordEncoder
from connector.calendar_lists import CalendarListTask
from connector.channels import ChannelManager
from connector.core import backoff, push, sync
from connector.core.budget import RequestBudget, try_acquire_all
from connector.core.calendar_source import CalendarSource
from connector.core.records import Checkpoint, Phase, Trigger
from connector.errors import (
    AuthError,
    ConnectorError,
    RetriableError,
)
from connector.observe import NullObserver, SyncObserver
from connector.passes import (
    ChangePublisher,
    Clock,
    PassRunner,
    StreamRuntime,
    SystemClock,
    is_gone,
)
from connector.scheduler import Scheduler
from connector.streams import StreamSpec

log = logging.getLogger(__name__)

FAILED_RETRY_SECONDS = 1800.0
GONE_RETRY_SECONDS = 3600.0


class SyncService:
    def __init__(
        self,
        *,
        streams: list[StreamRuntime],
        sources: Mapping[str, CalendarSource],
        publisher: ChangePublisher,
        encoder: RecordEncoder,
        workers: int = 8,
        tombstones: bool = True,
        account_budget: int = 600,
        global_budget: int = 10000,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        observer: SyncObserver | None = None,
        policy: backoff.BackoffPolicy = backoff.DEFAULT_POLICY,
        channels: ChannelManager | None = None,
        healthy_poll_seconds: float = 3600.0,
        list_tasks: list[CalendarListTask] | None = None,
        stored: Mapping[str, Checkpoint] | None = None,
    ) -> None:
        self._channels = channels
        self._healthy_poll = healthy_poll_seconds
        self._list_tasks = {t.id: t for t in list_tasks or []}
        self._stored = dict(stored or {})  # checkpoints of streams not (yet) configured
        self.runtimes = {rt.spec.ref.stream_id: rt for rt in streams}
        self._sources = sources
        self._publisher = publisher
        self._encoder = encoder
        self._workers = workers
        self._tombstones = tombstones
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._observer: SyncObserver = observer or NullObserver()
        self._policy = policy
        self._scheduler = Scheduler()
        self._budget_lock = threading.Lock()
        self._global_budget = RequestBudget(global_budget)
        self._account_limit = account_budget
        self._account_budgets = {
            rt.spec.account.name: RequestBudget(account_budget) for rt in streams
        }
        for task in list_tasks or []:
            self._account_budgets.setdefault(task.account.name, RequestBudget(account_budget))
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.on_idle: Callable[[], None] | None = None
        self._passes = PassRunner(
            sources=sources,
            publisher=publisher,
            encoder=encoder,
            clock=self._clock,
            observer=self._observer,
            tombstones=tombstones,
            acquire=self._acquire_budget,
            stopping=self._stop.is_set,
        )

    # -- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def trigger(self, stream_id: str, trigger: Trigger = Trigger.PUSH) -> bool:
        accepted = self._scheduler.request(stream_id, self._clock.monotonic(), trigger)
        self._wake.set()
        return accepted

    def request_resync(self, stream_id: str) -> bool:
        runtime = self.runtimes.get(stream_id)
        if runtime is None:
            return False
        runtime.operator_reset = True
        return self.trigger(stream_id, Trigger.OPERATOR)

    # -- main loop -------------------------------------------------------------------------
    def run(self, poll: Callable[[], None] | None = None) -> None:
        """Run until ``stop()``; finishes the pages in flight before returning."""
        now = self._clock.monotonic()
        runtimes = list(self.runtimes.values())
        for index, rt in enumerate(runtimes):
            # Spread start-up passes so a large fleet does not start as one herd.
            spread = min(5.0, 0.002 * len(runtimes)) * index / max(1, len(runtimes))
            self._scheduler.add(
                rt.spec.ref.stream_id, rt.spec.account.name, now + spread, Trigger.STARTUP
            )
        for task in self._list_tasks.values():
            first = 1.0 if self._channels is not None else task.interval_seconds
            self._scheduler.add(task.id, task.account.name, now + first, Trigger.POLL)
        with ThreadPoolExecutor(self._workers, thread_name_prefix="sync") as pool:
            while not self._stop.is_set():
                if poll is not None:
                    poll()
                now = self._clock.monotonic()
                free = self._workers - self._scheduler.running()
                for stream_id, trigger in self._scheduler.pop_due(now, free):
                    pool.submit(self._run_stream, stream_id, trigger)
                if self.on_idle is not None and self._scheduler.running() == 0:
                    self.on_idle()  # tests drive a manual clock from here
                    now = self._clock.monotonic()
                # Every worker busy: wait for one to finish (it wakes us), not for a due time.
                busy = self._scheduler.running() >= self._workers
                wakeup = None if busy else self._scheduler.next_wakeup()
                timeout = 1.0 if wakeup is None else min(1.0, max(0.0, wakeup - now))
                self._wake.wait(timeout)
                self._wake.clear()
            log.info("stopping: finishing the pages in flight")

    # -- one stream ------------------------------------------------------------------------
    def _run_stream(self, stream_id: str, trigger: Trigger) -> None:
        task = self._list_tasks.get(stream_id)
        if task is not None:
            self._run_list_task(task)
            return
        rt = self.runtimes[stream_id]
        if rt.removal_pending:
            self._remove(rt)
            return
        spec = rt.spec
        started = self._clock.monotonic()
        next_at = started + self._jitter(spec.options.poll_interval_seconds)
        result = "ok"
        phase = rt.committed.phase.value if rt.committed else Phase.FULL.value
        rt.state = "syncing"
        try:
            phase = self._passes.run(rt, trigger)
            rt.attempts = 0
            if rt.state == "gone":
                # Probe a vanished calendar rarely; if it answers again it starts over (INITIAL).
                poll = max(spec.options.poll_interval_seconds, GONE_RETRY_SECONDS)
                next_at = self._clock.monotonic() + self._jitter(poll)
            else:
                rt.state = "ok"
                opened = self._maintain_channel(rt)
                # A change made between the pass and the channel's opening sends no
                # notification: one more incremental pass right away closes that gap.
                delay = 0.0 if opened else self._jitter(self._poll_seconds(rt))
                next_at = self._clock.monotonic() + delay
            self._observer.account_state(spec.account.name, "ok")
        except Exception as exc:  # the top of a worker: logged with the stream id
            result, next_at = self._failed(rt, exc)
        finally:
            self._observer.pass_finished(
                stream_id, phase, trigger.value, result, self._clock.monotonic() - started
            )
            self._observer.stream_state(stream_id, spec.account.name, rt.state)
            self._scheduler.finished(stream_id, next_at, Trigger.POLL, self._clock.monotonic())
            self._wake.set()

    def _failed(self, rt: StreamRuntime, exc: BaseException) -> tuple[str, float]:
        stream_id = rt.spec.ref.stream_id
        account = rt.spec.account.name
        now = self._clock.monotonic()
        rt.attempts += 1
        if not isinstance(exc, ConnectorError):
            log.exception("unexpected error in a pass", extra={"stream": stream_id})
            rt.state = "failed"
            return "error", now + self._jitter(60.0)
        decision = backoff.decide(exc, rt.attempts, self._rng, self._policy)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        if isinstance(exc, AuthError):
            rt.state = "auth_error"
            self._observer.account_state(account, "auth_error")
            log.error(
                "account credentials rejected",
                extra={"stream": stream_id, "account": account, "reason": str(exc)},
            )
        elif decision.retry:
            rt.state = "backoff"
            log.warning(
                "pass failed, retrying in %.1fs: %s",
                decision.delay,
                exc,
                extra={"stream": stream_id, "reason": reason},
            )
        else:
            rt.state = "failed"
            log.error("stream failed: %s", exc, extra={"stream": stream_id, "reason": reason})
            return "failed", now + FAILED_RETRY_SECONDS
        if decision.account_wide:
            self._scheduler.pause_account(account, now + decision.delay)
        self._observer.backoff(account, str(reason), decision.delay)
        return ("retry" if isinstance(exc, RetriableError) else "error"), now + decision.delay

    # -- accounts in "all calendars" mode --------------------------------------------------
    def _run_list_task(self, task: CalendarListTask) -> None:
        now = self._clock.monotonic()
        next_at = now + self._jitter(task.interval_seconds)
        step = "read the calendar list"
        try:
            self._acquire_budget(task.account.name)
            account = task.account.name
            known = {
                sid
                for sid, rt in self.runtimes.items()
                if rt.spec.account.name == account and rt.state != "removed"
            }
            taken = {
                rt.spec.ref.calendar_id: sid
                for sid, rt in self.runtimes.items()
                if rt.state != "removed"
            }
            added, removed = task.refresh(known, taken)
            for spec in added:
                self.add_stream(spec)
            for stream_id in removed:
                self.runtimes[stream_id].removal_pending = True
                self.trigger(stream_id, Trigger.POLL)
            if self._channels is not None:
                step = "keep the calendarList push channel"
                task.maintain_channel(self._channels, self._clock.now_ms())
                if task.channel is not None:
                    self._observer.channel_state(task.id, "open", task.channel.expiration_ms)
                    renew = push.renewal_due_ms(
                        task.channel, self._channels.settings.renew_before_seconds * 1000
                    )
                    next_at = min(next_at, now + max(1.0, (renew - self._clock.now_ms()) / 1000))
        except ConnectorError as exc:
            task.attempts += 1
            decision = backoff.decide(exc, task.attempts, self._rng, self._policy)
            delay = decision.delay if decision.retry else FAILED_RETRY_SECONDS
            log.warning(
                "cannot %s, retrying in %.0fs: %s",
                step,
                delay,
                exc,
                extra={"account": task.account.name},
            )
            if isinstance(exc, AuthError):
                self._observer.account_state(task.account.name, "auth_error")
            if step.endswith("channel"):
                self._observer.channel_state(task.id, "failed", None)
            if decision.account_wide:
                self._scheduler.pause_account(task.account.name, now + delay)
            next_at = now + max(delay, 1.0)
        else:
            task.attempts = 0
        finally:
            self._scheduler.finished(task.id, next_at, Trigger.POLL, self._clock.monotonic())
            self._wake.set()

    def add_stream(self, spec: StreamSpec) -> None:
        """A calendar joined an account's list: its first pass is a full sync.

        If the stream had a checkpoint (it was synced before), its generations go on from
        there: the full sync is a new generation, so consumers drop rows of the old ones.
        """
        stream_id = spec.ref.stream_id
        previous = self.runtimes.get(stream_id)  # removed earlier, now back
        stored = self._stored.pop(stream_id, None) or (previous.committed if previous else None)
        committed = (
            replace(stored, phase=Phase.INCREMENTAL, sync_token=None, page_token=None)
            if stored is not None
            else None
        )
        self.runtimes[stream_id] = StreamRuntime(spec, committed)
        self._account_budgets.setdefault(spec.account.name, RequestBudget(self._account_limit))
        if self._channels is not None:
            self._channels.add_stream(stream_id, None)
        self._scheduler.add(stream_id, spec.account.name, self._clock.monotonic(), Trigger.STARTUP)
        self._wake.set()

    def _remove(self, rt: StreamRuntime) -> None:
        """On the stream's own worker: an empty CALENDAR_GONE generation, channel stopped."""
        stream_id = rt.spec.ref.stream_id
        try:
            if rt.committed is not None and not is_gone(rt.committed):
                current = sync.Pass(rt.committed, Trigger.POLL)
                gone = sync.on_calendar_gone(current, rt.committed)
                result = sync.calendar_gone_result(gone, self._clock.now_ms())
                self._passes.settle(rt, self._passes.submit(rt, result))
            if self._channels is not None and rt.committed is not None:
                self._channels.retire(stream_id, rt.committed.channel)
                self._observer.channel_state(stream_id, "closed", None)
            rt.state = "removed"
            self._observer.stream_state(stream_id, rt.spec.account.name, "removed")
            self._scheduler.remove(stream_id)
            log.info(
                "calendar left the account's list: stream removed", extra={"stream": stream_id}
            )
        except ConnectorError as exc:
            log.warning("cannot remove the stream yet: %s", exc, extra={"stream": stream_id})
            self._scheduler.finished(
                stream_id, self._clock.monotonic() + 30, Trigger.POLL, self._clock.monotonic()
            )
        finally:
            self._wake.set()

    # -- push channels ---------------------------------------------------------------------
    def _maintain_channel(self, rt: StreamRuntime) -> bool:
        """Open or renew the stream's push channel; store it in the checkpoint, then stop the
        one it replaces. Runs on the stream's worker, so the checkpoint has one writer."""
        channels = self._channels
        committed = rt.committed
        if channels is None or committed is None or committed.phase is not Phase.INCREMENTAL:
            return False
        spec = rt.spec
        old = committed.channel
        new = channels.maintain(
            spec.ref.stream_id,
            spec.ref.calendar_id,
            spec.query(None),
            self._sources[spec.account.name],
            old,
            self._clock.now_ms(),
        )
        if new is None:
            if channels.is_failing(spec.ref.stream_id):
                self._observer.channel_state(spec.ref.stream_id, "failed", None)
            return False
        checkpoint = replace(committed, channel=new)
        try:
            self._publisher.submit([self._encoder.checkpoint(checkpoint)]).result()
        except ConnectorError:
            channels.retire(spec.ref.stream_id, new)  # not stored: do not leave it open
            raise
        rt.committed = checkpoint
        channels.retire(spec.ref.stream_id, old)
        self._observer.channel_state(spec.ref.stream_id, "open", new.expiration_ms)
        return True

    def _poll_seconds(self, rt: StreamRuntime) -> float:
        """Safety poll: slow while the push channel is healthy, fast when missing or failing,
        and never later than the channel's renewal time."""
        fast = rt.spec.options.poll_interval_seconds
        channels = self._channels
        channel = rt.committed.channel if rt.committed is not None else None
        now_ms = self._clock.now_ms()
        if channels is None or channel is None or channels.is_failing(rt.spec.ref.stream_id):
            return fast
        if channel.expiration_ms <= now_ms:
            return fast
        renew_ms = push.renewal_due_ms(channel, channels.settings.renew_before_seconds * 1000)
        return max(1.0, min(self._healthy_poll, (renew_ms - now_ms) / 1000))

    def _acquire_budget(self, account: str) -> None:
        while True:
            with self._budget_lock:
                wait = try_acquire_all(
                    (self._account_budgets[account], self._global_budget),
                    self._clock.monotonic(),
                )
            if wait <= 0:
                return
            self._observer.backoff(account, "client_budget", wait)
            if self._stop.wait(min(wait, 1.0)):
                raise RetriableError("stopping while waiting for the request budget")

    def _jitter(self, seconds: float) -> float:
        return seconds * (0.9 + 0.2 * self._rng.random())
