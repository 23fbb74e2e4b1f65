"""Which streams exist: ids, primary resolution, 'all' with filters, stable fingerprints."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from connector.config import (
    AccountSettings,
    CalendarFilter,
    CredentialSettings,
    Settings,
    SyncOptions,
)
from connector.core.calendar_source import CalendarInfo, CalendarListPage
from connector.errors import AuthError, ConnectorError
from connector.streams import (
    AccountRef,
    accounts_of,
    calendar_kind,
    fingerprint,
    full_sync_time_min,
    resolve_all,
    resolve_streams,
    select_calendars,
)
from tests.fakes import FakeCalendar, FakeCalendarSource


def account(**kwargs: object) -> AccountSettings:
    base: dict[str, object] = {
        "name": "alice",
        "credentials": CredentialSettings(kind="authorized_user", path=Path("/dev/null")),
    }
    return AccountSettings(**{**base, **kwargs})  # type: ignore[arg-type]


def cal(cal_id: str, role: str = "owner", deleted: bool = False) -> CalendarInfo:
    return CalendarInfo(cal_id, cal_id, role, deleted=deleted)


def test_calendar_kinds() -> None:
    assert calendar_kind("en.german#holiday@group.v.calendar.google.com") == "holiday"
    assert calendar_kind("addressbook#contacts@group.v.calendar.google.com") == "birthday"
    assert calendar_kind("x@import.calendar.google.com") == "import"
    assert calendar_kind("team@group.calendar.google.com") == "group"
    assert calendar_kind("alice@example.com") == "user"


def test_all_calendars_skip_holidays_birthdays_and_deleted_by_default() -> None:
    calendars = [
        cal("alice@example.com"),
        cal("team@group.calendar.google.com", "writer"),
        cal("en.german#holiday@group.v.calendar.google.com", "reader"),
        cal("addressbook#contacts@group.v.calendar.google.com", "reader"),
        cal("old@group.calendar.google.com", deleted=True),
    ]
    assert select_calendars(account(calendars="all"), calendars) == [
        "alice@example.com",
        "team@group.calendar.google.com",
    ]


def test_include_and_exclude_filters() -> None:
    calendars = [cal("a@x.com"), cal("b@x.com", "reader"), cal("c@x.com", "freeBusyReader")]
    only_owned = account(calendars="all", include=CalendarFilter(access_roles=("owner",)))
    assert select_calendars(only_owned, calendars) == ["a@x.com"]
    no_b = account(calendars="all", exclude=CalendarFilter(ids=("b@x.com",)))
    assert select_calendars(no_b, calendars) == ["a@x.com", "c@x.com"]


def test_primary_is_resolved_before_it_becomes_part_of_a_stream_id() -> None:
    source = FakeCalendarSource()
    source.primary = "alice@example.com"
    settings = Settings(accounts=(account(calendars=("primary", "team@x.com")),))
    specs = resolve_streams(settings, AccountRef("alice", settings.accounts[0]), source)
    assert [s.ref.stream_id for s in specs] == ["alice/alice@example.com", "alice/team@x.com"]
    assert all("primary" not in s.ref.stream_id for s in specs)


def test_all_mode_lists_the_calendars() -> None:
    source = FakeCalendarSource()
    source.calendars = {"a@x.com": FakeCalendar(), "b@x.com": FakeCalendar()}
    settings = Settings(accounts=(account(calendars="all"),))
    specs = resolve_streams(settings, AccountRef("alice", settings.accounts[0]), source)
    assert [s.ref.calendar_id for s in specs] == ["a@x.com", "b@x.com"]


def test_service_account_subjects_are_accounts_of_their_own() -> None:
    sa = AccountSettings(
        name="corp",
        credentials=CredentialSettings(
            kind="service_account", path=Path("/dev/null"), subjects=("a@corp.com", "b@corp.com")
        ),
    )
    refs = accounts_of(Settings(accounts=(sa, account())))
    assert [(r.name, r.subject) for r in refs] == [
        ("corp:a@corp.com", "a@corp.com"),
        ("corp:b@corp.com", "b@corp.com"),
        ("alice", None),
    ]


def test_fingerprint_changes_with_the_query_and_not_with_the_clock() -> None:
    base = SyncOptions(full_sync_window_days=30)
    assert fingerprint(base) == fingerprint(SyncOptions(full_sync_window_days=30))
    assert fingerprint(base) != fingerprint(SyncOptions(full_sync_window_days=31))
    assert fingerprint(base) != fingerprint(
        SyncOptions(full_sync_window_days=30, single_events=True)
    )
    # Poll intervals do not change what a generation contains.
    assert fingerprint(base) == fingerprint(
        SyncOptions(full_sync_window_days=30, poll_interval_seconds=5)
    )
    assert full_sync_time_min(base, 1_767_225_600_000) == "2025-12-02T00:00:00Z"
    assert full_sync_time_min(SyncOptions(), 1_767_225_600_000) is None


class SlowListing(FakeCalendarSource):
    """A calendar list that answers only once ``wanted`` listings are under way at once."""

    def __init__(self, barrier: threading.Barrier, error: ConnectorError | None = None) -> None:
        super().__init__()
        self.barrier = barrier
        self.error = error

    def list_calendars(self, **kwargs: Any) -> CalendarListPage:
        self.barrier.wait(timeout=10)  # raises BrokenBarrierError if they run one by one
        if self.error is not None:
            raise self.error
        return super().list_calendars(**kwargs)


def test_accounts_are_listed_in_parallel_and_kept_in_their_order() -> None:
    names = [f"u{i}" for i in range(6)]
    settings = Settings(accounts=tuple(account(name=n, calendars="all") for n in names), workers=3)
    accounts = accounts_of(settings)
    barrier = threading.Barrier(3)
    sources: dict[str, FakeCalendarSource] = {}
    for n in names:
        error = AuthError("invalid_grant", status=401) if n == "u4" else None
        sources[n] = SlowListing(barrier, error)
        sources[n].calendars = {f"{n}-cal@x.com": FakeCalendar()}
    finished: list[str] = []

    def done() -> None:
        finished.append(threading.current_thread().name)

    results = resolve_all(settings, accounts, sources, done)
    assert isinstance(results[4], AuthError)
    listed = [[s.ref.stream_id for s in r] for r in results if not isinstance(r, ConnectorError)]
    assert listed == [[f"{n}/{n}-cal@x.com"] for n in names if n != "u4"]
    assert sorted(finished) == ["list-0", "list-1", "list-2"]  # each thread closes its own
