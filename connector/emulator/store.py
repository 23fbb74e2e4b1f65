"""The emulator's data: users, calendars, calendarList entries and events, with change counters.

One monotonic counter (``seq``) numbers every committed change. Each calendar keeps its events in
a dict plus an index ordered by the seq of their last change, so an incremental list ("changes
after seq S") and a full list in change order both cost O(page), whatever the calendar's size.
Deleted events stay as tombstones (``status: cancelled``) until the purge horizon; purging raises
the calendar's ``purge_floor`` and any sync token below it answers 410.

One re-entrant lock (``Store.lock``) guards everything; callers in this package take it.
"""

from __future__ import annotations

import random
import secrets
import threading
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.emulator import recurrence
from connector.emulator.times import edt_to_utc

ROLE_RANK = {
    "none": 0,
    "freeBusyReader": 1,
    "reader": 2,
    "writerWithoutPrivateAccess": 3,
    "writer": 4,
    "owner": 5,
}
_B32HEX = "0123456789abcdefghijklmnopqrstuv"


@dataclass
class StoreConfig:
    """Knobs (all changeable at run time through the control API)."""

    tombstone_horizon: float = 30 * 86400.0  # seconds a deletion tombstone is kept
    updated_min_window: float = 29 * 86400.0  # updatedMin older than this -> 410
    instances_horizon: float = 365 * 86400.0  # expansion cap for infinite series, past "now"
    max_results_default: int = 250
    calendar_list_default: int = 100
    empty_pages: int = 0  # empty non-final pages emitted before each data page
    token_lifetime: int = 3600  # access token lifetime, seconds


@dataclass
class EventRecord:
    body: dict[str, Any]
    seq: int
    start_utc: datetime | None
    end_utc: datetime | None
    series_end: datetime | None
    cancelled_at: datetime | None = None
    reminder_rev: int = 0

    @property
    def cancelled(self) -> bool:
        return self.body.get("status") == "cancelled"

    @property
    def is_master(self) -> bool:
        return bool(self.body.get("recurrence"))

    @property
    def master_id(self) -> str | None:
        value = self.body.get("recurringEventId")
        return value if isinstance(value, str) else None


@dataclass
class CalendarRecord:
    id: str
    summary: str
    time_zone: str
    description: str | None = None
    location: str | None = None
    owner: str | None = None
    primary_of: str | None = None
    default_reminders: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, EventRecord] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    by_seq: dict[int, str] = field(default_factory=dict)
    exceptions: dict[str, set[str]] = field(default_factory=dict)
    version: int = 0
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    token_epoch: int = 0
    purge_floor: int = 0

    def changed_after(self, seq: int) -> Iterator[EventRecord]:
        """Records whose last change is after ``seq``, in change order."""
        start = bisect_right(self.order, seq)
        for s in self.order[start:]:
            yield self.events[self.by_seq[s]]

    def iter_from(self, seq: int) -> Iterator[EventRecord]:
        """Records from ``seq`` (inclusive) on, in change order; a snapshot-safe cursor."""
        index = bisect_left(self.order, seq)
        while index < len(self.order):
            s = self.order[index]
            index += 1
            event_id = self.by_seq.get(s)
            if event_id is not None:
                yield self.events[event_id]


@dataclass
class ListEntry:
    calendar_id: str
    access_role: str
    seq: int
    primary: bool = False
    hidden: bool = False
    selected: bool = True
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # summaryOverride, colorId, ...


@dataclass
class UserRecord:
    email: str
    refresh_token: str
    primary_id: str
    revoked: bool = False
    entries: dict[str, ListEntry] = field(default_factory=dict)
    list_epoch: int = 0


ChangeListener = Callable[[str, str], None]  # (kind "events"|"calendarList", calendar id|email)


class Store:
    def __init__(self, config: StoreConfig | None = None, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.config = config or StoreConfig()
        self.rng = random.Random(seed)
        self.listeners: list[ChangeListener] = []
        self.clear()

    def clear(self) -> None:
        with self.lock:
            self.users: dict[str, UserRecord] = {}
            self.calendars: dict[str, CalendarRecord] = {}
            self.seq = 0
            self.generation = getattr(self, "generation", 0) + 1
            self.secret = secrets.token_bytes(16)
            self._tombstones: deque[tuple[datetime, str, str, int]] = deque()

    # ids and counters -------------------------------------------------------------------
    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def new_id(self, length: int = 26) -> str:
        return "".join(self.rng.choice(_B32HEX) for _ in range(length))

    # users and calendars ----------------------------------------------------------------
    def add_user(self, email: str, refresh_token: str | None = None) -> UserRecord:
        with self.lock:
            user = self.users.get(email)
            if user is None:
                user = UserRecord(email, refresh_token or f"refresh-{email}", email)
                self.users[email] = user
            elif refresh_token:
                user.refresh_token = refresh_token
            return user

    def add_calendar(self, cal: CalendarRecord) -> CalendarRecord:
        with self.lock:
            existing = self.calendars.get(cal.id)
            if existing is not None:
                return existing
            cal.version = self.next_seq()
            self.calendars[cal.id] = cal
            return cal

    def put_entry(self, user: UserRecord, calendar_id: str, **changes: Any) -> ListEntry:
        """Create or change a calendarList entry; bumps the user's calendarList counter."""
        with self.lock:
            entry = user.entries.get(calendar_id)
            seq = self.next_seq()
            if entry is None:
                entry = ListEntry(calendar_id, changes.pop("access_role", "owner"), seq)
                user.entries[calendar_id] = entry
            entry.seq = seq
            for key, value in changes.items():
                setattr(entry, key, value)
            self.notify("calendarList", user.email)
            return entry

    def remove_calendar(self, cal: CalendarRecord) -> None:
        with self.lock:
            for user in self.users.values():
                if cal.id in user.entries and not user.entries[cal.id].deleted:
                    self.put_entry(user, cal.id, deleted=True)
            del self.calendars[cal.id]

    def user_for_refresh_token(self, token: str) -> UserRecord | None:
        with self.lock:
            for user in self.users.values():
                if user.refresh_token == token:
                    return user
            return None

    # events -----------------------------------------------------------------------------
    def commit_event(
        self,
        cal: CalendarRecord,
        body: dict[str, Any],
        now: datetime,
        *,
        reminder_only: bool = False,
    ) -> EventRecord:
        """Store ``body`` as the new state of its event and index it under a fresh seq."""
        with self.lock:
            event_id = str(body["id"])
            old = cal.events.get(event_id)
            if old is not None:
                index = bisect_left(cal.order, old.seq)
                if index < len(cal.order) and cal.order[index] == old.seq:
                    del cal.order[index]
                cal.by_seq.pop(old.seq, None)
            seq = self.next_seq()
            start = edt_to_utc(body.get("start"), cal.time_zone)
            end = edt_to_utc(body.get("end"), cal.time_zone)
            series_end = None
            if body.get("recurrence") and body.get("status") != "cancelled":
                series_end = recurrence.series_end(body, default_tz=cal.time_zone)
            record = EventRecord(body, seq, start, end, series_end)
            if old is not None:
                record.reminder_rev = old.reminder_rev + 1 if reminder_only else 0
            if record.cancelled:
                record.cancelled_at = (
                    old.cancelled_at if old is not None and old.cancelled_at else now
                )
                self._tombstones.append((now, cal.id, event_id, seq))
            cal.events[event_id] = record
            cal.order.append(seq)
            cal.by_seq[seq] = event_id
            master = record.master_id
            if master is not None:
                cal.exceptions.setdefault(master, set()).add(event_id)
            cal.version = seq
            cal.updated = now
            self.notify("events", cal.id)
            return record

    def purge(self, now: datetime) -> int:
        """Drop deletion tombstones older than the horizon; returns how many went."""
        horizon = timedelta(seconds=self.config.tombstone_horizon)
        purged = 0
        with self.lock:
            while self._tombstones and now - self._tombstones[0][0] > horizon:
                _, cal_id, event_id, seq = self._tombstones.popleft()
                cal = self.calendars.get(cal_id)
                record = cal.events.get(event_id) if cal else None
                if cal is None or record is None or record.seq != seq or not record.cancelled:
                    continue
                master_id = record.master_id
                if master_id is not None:
                    master = cal.events.get(master_id)
                    if master is not None and not master.cancelled:
                        continue  # a cancelled occurrence lives as long as its series
                del cal.events[event_id]
                index = bisect_left(cal.order, seq)
                if index < len(cal.order) and cal.order[index] == seq:
                    del cal.order[index]
                cal.by_seq.pop(seq, None)
                if master_id is not None:
                    cal.exceptions.get(master_id, set()).discard(event_id)
                cal.purge_floor = max(cal.purge_floor, seq)
                purged += 1
        return purged

    def tombstone_count(self) -> int:
        with self.lock:
            return sum(1 for c in self.calendars.values() for e in c.events.values() if e.cancelled)

    # change notification ---------------------------------------------------------------
    def notify(self, kind: str, key: str) -> None:
        for listener in list(self.listeners):
            listener(kind, key)


def role_at_least(role: str, minimum: str) -> bool:
    return ROLE_RANK.get(role, 0) >= ROLE_RANK.get(minimum, 0)
