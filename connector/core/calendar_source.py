"""The interface through which the sync core reads a calendar: ``CalendarSource`` and its data.

The Google adapter (``connector.adapters.google_source.GoogleCalendarSource``) implements it over
google-api-python-client; tests implement it with fakes of their own. Everything here is plain data
with no I/O, so the core can be driven without a network.

Errors an implementation raises (all from ``connector.errors``): ``FullSyncRequired`` (410 on a
sync-token call), ``PageTokenRejected`` (a stored page token was refused), ``RetriableError`` /
``QuotaExceededError`` (back off), ``AuthError`` (the account's credentials stopped working),
``CalendarGoneError`` (404) and ``StreamFailedError`` (anything else that retrying will not fix).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.errors import ConfigError

MAX_EVENTS_PAGE = 2500


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A stream's ``events.list`` parameters, identical on every call of that stream.

    ``time_min`` bounds the history of a full pass and is never sent with a sync token (Google
    answers 400). Everything except ``max_results`` defines a generation: when it changes, the
    stored sync token no longer describes the same set of events (a ``QUERY_CHANGED`` reset).
    """

    single_events: bool = False
    event_types: tuple[str, ...] = ()
    time_min: str | None = None
    time_zone: str | None = None
    max_results: int = MAX_EVENTS_PAGE

    def __post_init__(self) -> None:
        if not 1 <= self.max_results <= MAX_EVENTS_PAGE:
            raise ConfigError([f"max_results must be between 1 and {MAX_EVENTS_PAGE}"])

    def fingerprint(self) -> str:
        """A stable hash of the parameters that define a generation (not ``max_results``).

        ``event_types`` is compared as a set: Google does not care about its order.
        """
        canonical = json.dumps(
            {
                "v": 1,
                "singleEvents": self.single_events,
                "eventTypes": sorted(set(self.event_types)),
                "timeMin": self.time_min,
                "timeZone": self.time_zone,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class EventsPage:
    """One page of ``events.list``. ``next_sync_token`` is set on the last page only."""

    items: list[Mapping[str, Any]]  # Google event JSON objects (dicts, or mappings of them)
    next_page_token: str | None
    next_sync_token: str | None
    time_zone: str | None = None
    access_role: str | None = None
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarInfo:
    """A calendar as the account sees it (a ``calendarList`` entry, or ``calendars.get``)."""

    id: str
    summary: str | None
    access_role: str
    primary: bool = False
    deleted: bool = False
    hidden: bool = False
    time_zone: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CalendarListPage:
    items: list[CalendarInfo]
    next_page_token: str | None
    next_sync_token: str | None


@dataclass(frozen=True, slots=True)
class WatchResult:
    """A push channel Google accepted; ``expiration_ms`` is Unix milliseconds when known."""

    id: str
    resource_id: str
    expiration_ms: int | None


class CalendarSource(Protocol):
    """Read access to one account's calendars (one instance per account)."""

    def list_events(
        self,
        calendar_id: str,
        query: ListQuery,
        *,
        sync_token: str | None,
        page_token: str | None,
    ) -> EventsPage: ...

    def get_calendar(self, calendar_id: str) -> CalendarInfo:
        """Resolve a calendar id (``primary`` included) to its real id and access role."""
        ...

    def list_calendars(
        self, *, sync_token: str | None = None, page_token: str | None = None
    ) -> CalendarListPage: ...

    def watch_events(
        self,
        calendar_id: str,
        query: ListQuery,
        *,
        channel_id: str,
        address: str,
        token: str,
        ttl_seconds: int | None = None,
    ) -> WatchResult: ...

    def watch_calendar_list(
        self, *, channel_id: str, address: str, token: str, ttl_seconds: int | None = None
    ) -> WatchResult: ...

    def stop_channel(self, channel_id: str, resource_id: str) -> None: ...
