"""events.list / events.instances query parameters and the materialised-result cache."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connector.emulator import errors, params
from connector.emulator.events import EVENT_TYPES

MAX_RESULTS = 2500
SCAN_LIMIT = 10_000
FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
SYNC_KEYS = ("singleEvents", "eventTypes", "showHiddenInvitations")
IGNORED = (
    "pageToken",
    "maxResults",
    "alt",
    "prettyPrint",
    "fields",
    "quotaUser",
    "key",
    "oauth_token",
    "userIp",
    "alwaysIncludeEmail",
)


@dataclass
class EventQuery:
    raw: params.Params
    max_results: int
    page_token: str | None
    sync_token: str | None
    show_deleted: bool | None
    single_events: bool
    time_min: datetime | None
    time_max: datetime | None
    updated_min: datetime | None
    order_by: str | None
    q: str | None
    ical_uid: str | None
    event_types: list[str]
    time_zone: str | None
    max_attendees: int | None
    private_ext: list[str] = field(default_factory=list)
    shared_ext: list[str] = field(default_factory=list)
    original_start: str | None = None


def parse_query(raw: params.Params, default_max: int) -> EventQuery:
    event_types = params.many(raw, "eventTypes")
    if any(t not in EVENT_TYPES for t in event_types):
        raise errors.invalid_param("eventTypes")
    query = EventQuery(
        raw=raw,
        max_results=min(params.integer(raw, "maxResults") or default_max, MAX_RESULTS),
        page_token=params.one(raw, "pageToken"),
        sync_token=params.one(raw, "syncToken"),
        show_deleted=params.boolean(raw, "showDeleted"),
        single_events=bool(params.boolean(raw, "singleEvents")),
        time_min=params.timestamp(raw, "timeMin"),
        time_max=params.timestamp(raw, "timeMax"),
        updated_min=params.timestamp(raw, "updatedMin"),
        order_by=params.enum(raw, "orderBy", ("startTime", "updated")),
        q=params.one(raw, "q"),
        ical_uid=params.one(raw, "iCalUID"),
        event_types=event_types,
        time_zone=params.time_zone(raw),
        max_attendees=params.integer(raw, "maxAttendees"),
        private_ext=raw.get("privateExtendedProperty", []),
        shared_ext=raw.get("sharedExtendedProperty", []),
        original_start=params.one(raw, "originalStart"),
    )
    if query.time_min and query.time_max and query.time_max <= query.time_min:
        raise errors.time_range_empty()
    return query


class ListCache:
    """Materialised results keyed by calendar version and query (a small LRU)."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[tuple[Any, ...], list[tuple[tuple[Any, ...], dict[str, Any]]]]
        self._items = OrderedDict()
        self._size = size

    def get(self, key: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], dict[str, Any]]] | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(
        self, key: tuple[Any, ...], value: list[tuple[tuple[Any, ...], dict[str, Any]]]
    ) -> None:
        self._items[key] = value
        if len(self._items) > self._size:
            self._items.popitem(last=False)
