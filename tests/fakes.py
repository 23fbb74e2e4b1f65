"""Fakes of our own interfaces (never of confluent-kafka or googleapiclient) for unit tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from connector.adapters.kafka_records import KafkaRecord
from connector.core.calendar_source import (
    CalendarInfo,
    CalendarListPage,
    EventsPage,
    ListQuery,
    WatchResult,
)
from connector.errors import CalendarGoneError, FullSyncRequired, PageTokenRejected


@dataclass
class FakeCalendar:
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)  # event id -> change sequence
    seq: int = 0
    epoch: int = 0  # bumping it invalidates every sync token (410)
    gone: bool = False


class FakeCalendarSource:
    """A calendar service with Google's paging rules; tokens are readable strings.

    Sync tokens are ``<epoch>:<seq>``; page tokens ``<epoch>:<from seq>:<offset>``. Errors can
    be scripted per call with ``fail_next``.
    """

    def __init__(self, page_size: int = 2) -> None:
        self.calendars: dict[str, FakeCalendar] = {}
        self.page_size = page_size
        self.calls: list[dict[str, Any]] = []
        self.failures: list[BaseException] = []
        self.primary = "me@example.com"
        self._lock = threading.Lock()

    # -- test controls -----------------------------------------------------------------
    def put(self, calendar_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            cal = self.calendars.setdefault(calendar_id, FakeCalendar())
            cal.seq += 1
            cal.events[event["id"]] = {"kind": "calendar#event", "status": "confirmed", **event}
            cal.changed[event["id"]] = cal.seq

    def delete(self, calendar_id: str, event_id: str) -> None:
        with self._lock:
            cal = self.calendars[calendar_id]
            cal.seq += 1
            cal.events[event_id] = {"kind": "calendar#event", "id": event_id, "status": "cancelled"}
            cal.changed[event_id] = cal.seq

    def invalidate(self, calendar_id: str) -> None:
        self.calendars[calendar_id].epoch += 1

    def fail_next(self, error: BaseException) -> None:
        self.failures.append(error)

    # -- CalendarSource ----------------------------------------------------------------
    def list_events(
        self,
        calendar_id: str,
        query: ListQuery,
        *,
        sync_token: str | None,
        page_token: str | None,
    ) -> EventsPage:
        with self._lock:
            self.calls.append(
                {
                    "calendar": calendar_id,
                    "sync_token": sync_token,
                    "page_token": page_token,
                    "query": query,
                }
            )
            if self.failures:
                raise self.failures.pop(0)
            cal = self.calendars.get(calendar_id)
            if cal is None or cal.gone:
                raise CalendarGoneError("Not Found", status=404)
            if sync_token is not None:
                epoch, since = (int(x) for x in sync_token.split(":"))
                if epoch != cal.epoch:
                    raise FullSyncRequired("fullSyncRequired")
            else:
                since = 0
            if page_token is not None:
                try:
                    epoch, since, offset = (int(x) for x in page_token.split(":"))
                except ValueError:
                    raise PageTokenRejected() from None
            else:
                offset = 0
            ids = sorted(
                (i for i, s in cal.changed.items() if s > since), key=lambda i: cal.changed[i]
            )
            if sync_token is None:
                ids = [
                    i
                    for i in ids
                    if cal.events[i]["status"] != "cancelled" or "recurringEventId" in cal.events[i]
                ]
            chunk = ids[offset : offset + self.page_size]
            items = [dict(cal.events[i]) for i in chunk]
            if offset + self.page_size < len(ids):
                return EventsPage(items, f"{cal.epoch}:{since}:{offset + self.page_size}", None)
            return EventsPage(items, None, f"{cal.epoch}:{cal.seq}")

    def get_calendar(self, calendar_id: str) -> CalendarInfo:
        real = self.primary if calendar_id == "primary" else calendar_id
        return CalendarInfo(real, real, "owner", primary=real == self.primary)

    def list_calendars(
        self, *, sync_token: str | None = None, page_token: str | None = None
    ) -> CalendarListPage:
        items = [CalendarInfo(c, c, "owner") for c in sorted(self.calendars)]
        return CalendarListPage(items, None, "cl-1")

    def watch_events(
        self,
        calendar_id: str,
        query: ListQuery,
        *,
        channel_id: str,
        address: str,
        token: str,
        ttl_seconds: int | None = None,
    ) -> WatchResult:
        return WatchResult(channel_id, f"res-{calendar_id}", None)

    def watch_calendar_list(
        self, *, channel_id: str, address: str, token: str, ttl_seconds: int | None = None
    ) -> WatchResult:
        return WatchResult(channel_id, "res-calendarlist", None)

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        pass


class InMemoryPublisher:
    """Commits each submitted batch at once into ``committed``; can be told to fail."""

    def __init__(self) -> None:
        self.committed: list[KafkaRecord] = []
        self.batches = 0
        self.fail_with: Callable[[list[KafkaRecord]], BaseException | None] | None = None
        self._lock = threading.Lock()

    def submit(self, records: list[KafkaRecord]) -> Future[None]:
        future: Future[None] = Future()
        error = self.fail_with(records) if self.fail_with is not None else None
        if error is not None:
            future.set_exception(error)
            return future
        with self._lock:
            self.committed.extend(records)
            self.batches += 1
        future.set_result(None)
        return future


class ManualClock:
    def __init__(self, now_ms: int = 1_767_225_600_000) -> None:
        self.ms = now_ms

    def now_ms(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.ms / 1000
