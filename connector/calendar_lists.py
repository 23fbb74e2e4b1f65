"""Accounts in "all calendars" mode: follow the account's calendar list.

A task per such account re-reads the calendar list (periodically, and at once when its
calendarList push channel says something changed): new calendars become streams (their first
pass is a full sync), and calendars that left the list are removed (their stream publishes an
empty CALENDAR_GONE generation, so consumers drop the rows, and its channel is stopped).

The calendarList channel is durable like a stream's (Google offers no way to list channels):
it is stored on the checkpoint topic under the task id, ``<account>/#calendarList``, as a
``SyncCheckpoint`` whose only state is the channel (generation 0, no tokens, ``extra`` kind
``calendarList``), written through the transactional publisher. At start-up the task gets its
stored channel back and the webhook accepts it; it is reused while live and renewed like any
channel: the new one is stored before the old one is stopped. The record of an account that no
longer follows its list (removed from the configuration, or no longer in ``all`` mode) is
tombstoned and its channel stopped. A task of an explicit account (which only retries resolving
its calendars after a failure at start-up) opens no channel.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from connector.adapters.kafka_records import RecordEncoder
from connector.channels import ChannelManager
from connector.core.calendar_source import CalendarSource, ListQuery
from connector.core.records import Channel, Checkpoint, Phase, StreamRef
from connector.errors import ConnectorError
from connector.passes import ChangePublisher
from connector.streams import AccountRef, StreamSpec

log = logging.getLogger(__name__)

LIST_SUFFIX = "/#calendarList"
LIST_CALENDAR_ID = LIST_SUFFIX[1:]  # the "calendar id" of a calendarList channel record
LIST_KIND = "calendarList"


def task_id(account: str) -> str:
    """The scheduler id (and channel "stream" id) of an account's calendar-list task."""
    return f"{account}{LIST_SUFFIX}"


def is_task(stream_id: str) -> bool:
    return stream_id.endswith(LIST_SUFFIX)


def list_checkpoint(account: str, channel: Channel, now_ms: int) -> Checkpoint:
    """The checkpoint-topic record that keeps an account's calendarList channel."""
    return Checkpoint(
        stream=StreamRef(task_id(account), account, LIST_CALENDAR_ID),
        generation=0,
        phase=Phase.INCREMENTAL,
        query_fingerprint="",
        last_success_at_ms=now_ms,
        channel=channel,
        extra={"kind": LIST_KIND},
    )


def split_stored(
    checkpoints: Mapping[str, Checkpoint],
) -> tuple[dict[str, Checkpoint], dict[str, Checkpoint]]:
    """(the streams' checkpoints, the calendarList channel records) read at start-up."""
    streams: dict[str, Checkpoint] = {}
    lists: dict[str, Checkpoint] = {}
    for stream_id, checkpoint in checkpoints.items():
        (lists if is_task(stream_id) else streams)[stream_id] = checkpoint
    return streams, lists


class ChannelStore:
    """Writes and drops calendarList channel records, each in its own Kafka transaction."""

    def __init__(self, publisher: ChangePublisher, encoder: RecordEncoder) -> None:
        self._publisher = publisher
        self._encoder = encoder

    def save(self, account: str, channel: Channel, now_ms: int) -> None:
        record = self._encoder.checkpoint(list_checkpoint(account, channel, now_ms))
        self._publisher.submit([record]).result()

    def drop(self, list_task_id: str) -> None:
        self._publisher.submit([self._encoder.checkpoint_tombstone(list_task_id)]).result()


@dataclass
class CalendarListTask:
    account: AccountRef
    source: CalendarSource
    resolve: Callable[[], list[StreamSpec]]
    interval_seconds: float
    channel: Channel | None = None
    attempts: int = 0
    store: ChannelStore | None = None

    @property
    def id(self) -> str:
        return task_id(self.account.name)

    @property
    def follows_list(self) -> bool:
        """True in "all calendars" mode: the task watches the calendar list by push."""
        return self.account.settings.calendars == "all"

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
        """Open or renew the calendarList channel if due: store the new one, then stop the old.

        Runs on the task's worker only, so the record has one writer. If the new channel
        cannot be stored it is stopped again and the error propagates (the task backs off).
        """
        if not self.follows_list:
            return
        new = channels.maintain(self.id, None, ListQuery(), self.source, self.channel, now_ms)
        if new is None:
            return
        channels.add_stream(self.id, None)
        if self.store is not None:
            try:
                self.store.save(self.account.name, new, now_ms)
            except ConnectorError:
                channels.retire(self.id, new)  # not stored: do not leave it open
                raise
        channels.retire(self.id, self.channel)
        self.channel = new


def restore_channels(
    tasks: Iterable[CalendarListTask],
    stored: Mapping[str, Checkpoint],
    channels: ChannelManager,
    store: ChannelStore,
) -> None:
    """At start-up, before the webhook listens: give each task its stored channel and make
    the registry accept its notifications (the task's first run renews it if it is expired or
    due); tombstone the records no task follows any more and stop their channels."""
    following = set()
    for task in tasks:
        checkpoint = stored.get(task.id) if task.follows_list else None
        task.channel = checkpoint.channel if checkpoint is not None else None
        channels.add_stream(task.id, task.channel)
        if task.follows_list:
            following.add(task.id)
    for list_task_id, checkpoint in stored.items():
        if list_task_id in following:
            continue
        log.info(
            "calendarList channel no longer followed: dropping it", extra={"stream": list_task_id}
        )
        try:
            store.drop(list_task_id)
        except ConnectorError as exc:
            # Still stopped below; the next start drops the record (its stop then fails).
            log.warning("cannot drop a calendarList channel record: %s", exc)
        channels.retire(list_task_id, checkpoint.channel)
