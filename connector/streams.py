"""Which streams exist: accounts from the configuration, their calendars, stream ids, queries.

A stream is one calendar under one account with one set of list parameters. Its id is
``<account>/<calendar id>`` with the calendar id resolved (never ``primary``), so it is stable.
The query fingerprint comes from the configured options (the full-sync *window*, not the
absolute ``timeMin`` of a pass), so it changes only when the configuration does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connector.config import AccountSettings, CalendarFilter, Settings, SyncOptions
from connector.core.calendar_source import CalendarInfo, CalendarSource, ListQuery
from connector.core.records import StreamRef
from connector.errors import ConnectorError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccountRef:
    """One identity Google sees: an OAuth user, or one impersonated user of a service account."""

    name: str  # label used in stream ids: "<account>" or "<account>:<subject>"
    settings: AccountSettings
    subject: str | None = None


@dataclass(frozen=True)
class StreamSpec:
    ref: StreamRef
    account: AccountRef
    options: SyncOptions
    fingerprint: str

    def query(self, time_min: str | None) -> ListQuery:
        return ListQuery(
            single_events=self.options.single_events,
            event_types=self.options.event_types,
            time_min=time_min,
            time_zone=self.options.time_zone,
        )


def stream_id(account: str, calendar_id: str) -> str:
    return f"{account}/{calendar_id}"


def fingerprint(options: SyncOptions) -> str:
    canonical = json.dumps(
        {
            "v": 1,
            "singleEvents": options.single_events,
            "eventTypes": sorted(options.event_types),
            "window": options.full_sync_window_days,
            "timeZone": options.time_zone,
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def full_sync_time_min(options: SyncOptions, now_ms: int) -> str | None:
    """``timeMin`` for a full pass starting now, or None when all history is wanted."""
    if options.full_sync_window_days is None:
        return None
    start = datetime.fromtimestamp(now_ms / 1000, UTC) - timedelta(
        days=options.full_sync_window_days
    )
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def accounts_of(settings: Settings) -> list[AccountRef]:
    refs: list[AccountRef] = []
    for account in settings.accounts:
        if account.credentials.kind == "service_account":
            refs.extend(
                AccountRef(f"{account.name}:{subject}", account, subject)
                for subject in account.credentials.subjects
            )
        else:
            refs.append(AccountRef(account.name, account))
    return refs


def calendar_kind(calendar_id: str) -> str:
    if "#holiday@" in calendar_id:
        return "holiday"
    if "#contacts@" in calendar_id or "#birthday" in calendar_id:
        return "birthday"
    if calendar_id.endswith("@import.calendar.google.com"):
        return "import"
    if calendar_id.endswith("@group.calendar.google.com") or "@group.v.calendar" in calendar_id:
        return "group"
    return "user"


def matches(calendar: CalendarInfo, rule: CalendarFilter) -> bool:
    """True when the calendar matches any criterion the filter sets."""
    return (
        calendar.id in rule.ids
        or calendar.access_role in rule.access_roles
        or calendar_kind(calendar.id) in rule.kinds
    )


def select_calendars(account: AccountSettings, calendars: Iterable[CalendarInfo]) -> list[str]:
    """The calendar ids an ``all`` account syncs, after its include and exclude filters."""
    chosen = []
    for calendar in calendars:
        if calendar.deleted:
            continue
        if account.include is not None and not matches(calendar, account.include):
            continue
        if matches(calendar, account.exclude):
            continue
        chosen.append(calendar.id)
    return sorted(chosen)


def list_all_calendars(source: CalendarSource) -> list[CalendarInfo]:
    found: list[CalendarInfo] = []
    page_token: str | None = None
    while True:
        page = source.list_calendars(page_token=page_token)
        found.extend(page.items)
        page_token = page.next_page_token
        if page_token is None:
            return found


def resolve_streams(
    settings: Settings,
    account: AccountRef,
    source: CalendarSource,
) -> list[StreamSpec]:
    """The streams of one account: ``primary`` resolved, ``all`` expanded and filtered."""
    options = settings.sync_options_for(account.settings)
    if account.settings.calendars == "all":
        ids = select_calendars(account.settings, list_all_calendars(source))
    else:
        ids = []
        for calendar_id in account.settings.calendars:
            resolved = (
                source.get_calendar(calendar_id).id if calendar_id == "primary" else calendar_id
            )
            ids.append(resolved)
    fp = fingerprint(options)
    specs = []
    for calendar_id in dict.fromkeys(ids):
        ref = StreamRef(stream_id(account.name, calendar_id), account.name, calendar_id)
        specs.append(StreamSpec(ref, account, options, fp))
    return specs


SourceFactory = Callable[[AccountRef], CalendarSource]


def resolve_all(
    settings: Settings,
    accounts: list[AccountRef],
    sources: Mapping[str, CalendarSource],
    thread_done: Callable[[], object] = lambda: None,
) -> list[list[StreamSpec] | ConnectorError]:
    """Each account's streams, or why they cannot be listed, in the accounts' order.

    ``workers`` threads list them at once: each account costs a token refresh and a
    calendarList call, and 100 accounts one after another took about 9 s of start-up.
    ``thread_done`` runs at the end of each thread (to close its connections).
    """
    results: list[list[StreamSpec] | ConnectorError] = [[] for _ in accounts]
    todo = list(enumerate(accounts))
    todo.reverse()  # popped from the end: in the accounts' order
    lock = threading.Lock()

    def work() -> None:
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    index, account = todo.pop()
                try:
                    results[index] = resolve_streams(settings, account, sources[account.name])
                except ConnectorError as exc:
                    results[index] = exc
        finally:
            thread_done()

    threads = [
        threading.Thread(target=work, name=f"list-{i}", daemon=True)
        for i in range(max(1, min(settings.workers, len(accounts))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def unique_calendars(specs: list[StreamSpec]) -> list[StreamSpec]:
    """One stream per calendar id: the first account that lists it syncs it.

    Event keys carry the calendar id and event id but no account (the contract's key), and
    generations count per stream; two streams writing the same calendar's keys would let one
    stream's RESET_END delete the other's rows. A shared calendar is synced once.
    """
    seen: dict[str, str] = {}
    unique = []
    for spec in specs:
        owner = seen.get(spec.ref.calendar_id)
        if owner is not None:
            log.warning(
                "calendar already synced under another account: skipped",
                extra={"stream": spec.ref.stream_id, "synced_by": owner},
            )
            continue
        seen[spec.ref.calendar_id] = spec.ref.stream_id
        unique.append(spec)
    return unique
