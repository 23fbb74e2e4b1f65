"""Accounts in "all calendars" mode: follow the account's calendar list.

A task per such account re-reads the calendar list (periodically, and at once when its
calendarList push channel says something changed): new calendars become streams (their first
pass is a full sync), and calendars that left the list are removed (their stream publishes an
empty CALENDAR_GONE generation, so consumers drop the rows, and its channel is stopped).

The calendarList channel is kept in memory only: after a restart a new one is opened, and the
old one, when it next notifies, is recognised as ours but unknown and stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from connector.channels import ChannelManager
from connector.core.calendar_source import CalendarSource, ListQuery
from connector.core.records import Channel
from connector.streams import AccountRef, StreamSpec

log = logging.getLogger(__name__)

LIST_SUFFIX = "/#calendarList"


def task_id(account: str) -> str:
    """The scheduler id (and channel "stream" id) of an account's calendar-list task."""
    return f"{account}{LIST_SUFFIX}"


def is_task(stream_id: str) -> bool:
    return stream_id.endswith(LIST_SUFFIX)


@dataclass
class CalendarListTask:
    account: AccountRef
    source: CalendarSource
    resolve: Callable[[], list[StreamSpec]]
    interval_seconds: float
    channel: Channel | None = None
    attempts: int = 0

    @property
    def id(self) -> str:
        return task_id(self.account.name)

    def refresh(
        self,
        known: set[str],
        taken_calendars: dict[str, str],
    ) -> tuple[list[StreamSpec], set[str]]:
        """(streams to add, stream ids to remove) for this account.

        ``known`` are the account's current stream ids; ``taken_calendars`` maps calendar ids
        already synced to their stream id (a calendar is synced under one account only).
        """
        specs = self.resolve()
        wanted = {s.ref.stream_id for s in specs}
        added = [
            s
            for s in specs
            if s.ref.stream_id not in known
            and taken_calendars.get(s.ref.calendar_id, s.ref.stream_id) == s.ref.stream_id
        ]
        removed = known - wanted
        if added or removed:
            log.info(
                "calendar list changed: %d added, %d removed",
                len(added),
                len(removed),
                extra={"account": self.account.name},
            )
        return added, removed

    def maintain_channel(self, channels: ChannelManager, now_ms: int) -> None:
        new = channels.maintain(self.id, None, ListQuery(), self.source, self.channel, now_ms)
        if new is not None:
            channels.add_stream(self.id, None)
            channels.retire(self.id, self.channel)
            self.channel = new
