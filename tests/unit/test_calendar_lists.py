"""calendarList channels: stored on the checkpoint topic, restored, renewed and dropped."""

from __future__ import annotations

from typing import Literal

import pytest

from connector.adapters.avro_codec import SingleObjectCodec
from connector.adapters.kafka_records import KafkaRecord, RecordEncoder, TopicNames
from connector.calendar_lists import (
    CalendarListTask,
    ChannelStore,
    list_checkpoint,
    restore_channels,
    split_stored,
    task_id,
)
from connector.config import AccountSettings, CredentialSettings
from connector.core import push
from connector.core.records import Channel, Checkpoint, Phase, StreamRef
from connector.errors import RetriableError
from connector.streams import AccountRef
from tests.fakes import FakeCalendarSource, InMemoryPublisher
from tests.unit.test_push import Stops, headers, manager

TOPICS = TopicNames("gcal.events", "gcal.checkpoints", "gcal.events.dlq")
CODEC = SingleObjectCodec()
HOUR_MS = 3_600_000


def account(name: str, calendars: Literal["all"] | tuple[str, ...] = "all") -> AccountRef:
    settings = AccountSettings(
        name=name,
        credentials=CredentialSettings(kind="authorized_user", path="/dev/null"),
        calendars=calendars,
    )
    return AccountRef(name, settings)


def make_task(acct: AccountRef, store: ChannelStore) -> CalendarListTask:
    return CalendarListTask(acct, FakeCalendarSource(), lambda: [], 3600.0, store=store)


def records(publisher: InMemoryPublisher) -> list[tuple[str, Checkpoint | None]]:
    out = []
    for r in publisher.committed:
        assert r.topic == TOPICS.checkpoints
        value = None if r.value is None else CODEC.decode_checkpoint(r.value)
        out.append((r.key.decode(), value))
    return out


def store_of(publisher: InMemoryPublisher) -> ChannelStore:
    return ChannelStore(publisher, RecordEncoder(CODEC, TOPICS, 3))


def stored(account_name: str, channel: Channel) -> dict[str, Checkpoint]:
    return {task_id(account_name): list_checkpoint(account_name, channel, 0)}


def test_the_record_is_a_sync_checkpoint_keyed_by_the_task_id_and_kept_apart() -> None:
    channel = Channel("gk-abc-n0", "res-list", 5 * HOUR_MS)
    record = RecordEncoder(CODEC, TOPICS, 3).checkpoint(list_checkpoint("alice", channel, 7))
    assert record.key == b"alice/#calendarList" and record.topic == TOPICS.checkpoints
    assert record.value is not None
    decoded = CODEC.decode_checkpoint(record.value)
    assert decoded.stream == StreamRef("alice/#calendarList", "alice", "#calendarList")
    assert decoded.channel == channel and decoded.extra == {"kind": "calendarList"}
    assert decoded.generation == 0 and decoded.sync_token is None
    stream = Checkpoint(StreamRef("alice/a@x", "alice", "a@x"), 1, Phase.INCREMENTAL, "f")
    streams, lists = split_stored({"alice/a@x": stream, **{"alice/#calendarList": decoded}})
    assert streams == {"alice/a@x": stream}
    assert lists == {"alice/#calendarList": decoded}


def test_a_live_stored_channel_is_reused_and_its_notifications_accepted() -> None:
    stops, publisher = Stops(), InMemoryPublisher()
    channels = manager(stops)
    store = store_of(publisher)
    task = make_task(account("alice"), store)
    kept = Channel(push.new_channel_id(task.id, "old"), "res-list", 5 * HOUR_MS)
    restore_channels([task], stored("alice", kept), channels, store)
    assert task.channel == kept
    decision = channels.on_notification(headers(kept.id, resource=kept.resource_id))
    assert (decision.action, decision.stream_id) == (push.Action.SYNC, task.id)
    task.maintain_channel(channels, now_ms=HOUR_MS)  # renewal due at 5 h - 600 s
    channels.drain()
    assert task.channel == kept and publisher.committed == [] and stops.done == []


def test_an_expired_stored_channel_is_replaced_stored_and_stopped() -> None:
    stops, publisher = Stops(), InMemoryPublisher()
    channels = manager(stops)
    store = store_of(publisher)
    task = make_task(account("alice"), store)
    old = Channel(push.new_channel_id(task.id, "old"), "res-old", HOUR_MS)
    restore_channels([task], stored("alice", old), channels, store)
    now = HOUR_MS - 1000  # within the 600 s renewal margin
    task.maintain_channel(channels, now_ms=now)
    channels.drain()
    new = task.channel
    assert new is not None and new.id != old.id and new.expiration_ms == now + HOUR_MS
    assert [(key, cp.channel if cp else None) for key, cp in records(publisher)] == [
        ("alice/#calendarList", new)
    ]
    assert stops.done == [(task.id, old.id, old.resource_id)]
    assert channels.on_notification(headers(old.id, resource="res-old")).action is (
        push.Action.STOP
    )
    good = channels.on_notification(headers(new.id, resource=new.resource_id))
    assert good.action is push.Action.SYNC


def test_records_no_task_follows_are_tombstoned_and_their_channels_stopped() -> None:
    stops, publisher = Stops(), InMemoryPublisher()
    channels = manager(stops)
    store = store_of(publisher)
    explicit = make_task(account("bob", ("primary",)), store)  # retries resolution only
    gone = Channel(push.new_channel_id("carol/#calendarList", "x"), "res-carol", 5 * HOUR_MS)
    was_all = Channel(push.new_channel_id(explicit.id, "y"), "res-bob", 5 * HOUR_MS)
    restore_channels(
        [explicit], {**stored("carol", gone), **stored("bob", was_all)}, channels, store
    )
    explicit.maintain_channel(channels, now_ms=0)  # an explicit account opens no channel
    channels.drain()
    assert explicit.channel is None
    assert records(publisher) == [("carol/#calendarList", None), ("bob/#calendarList", None)]
    assert sorted(stops.done) == sorted(
        [
            ("carol/#calendarList", gone.id, gone.resource_id),
            ("bob/#calendarList", was_all.id, was_all.resource_id),
        ]
    )


def test_a_channel_that_cannot_be_stored_is_stopped_and_the_old_one_kept() -> None:
    stops, publisher = Stops(), InMemoryPublisher()
    channels = manager(stops)
    store = store_of(publisher)
    task = make_task(account("alice"), store)
    old = Channel(push.new_channel_id(task.id, "old"), "res-old", HOUR_MS)
    restore_channels([task], stored("alice", old), channels, store)

    def fail(_records: list[KafkaRecord]) -> BaseException:
        return RetriableError("broker down")

    publisher.fail_with = fail
    with pytest.raises(RetriableError):
        task.maintain_channel(channels, now_ms=HOUR_MS)
    channels.drain()
    assert task.channel == old
    assert len(stops.done) == 1 and stops.done[0][1] != old.id  # the unstored new one


def test_checkpoints_list_shows_a_calendar_list_record_as_a_channel_not_a_stream() -> None:
    from connector.cli import checkpoint_line

    channel = Channel("ch-1", "res-1", 1_767_225_600_000)  # 2026-01-01T00:00:00Z
    record = list_checkpoint("alice", channel, now_ms=1_767_000_000_000)
    row = checkpoint_line(record.stream.stream_id, record)
    assert row.split() == [
        "alice/#calendarList",
        "-",
        "list",
        "channel",
        "-",
        "expires",
        "2026-01-01T00:00:00Z",
    ]
    stream = Checkpoint(
        stream=StreamRef("alice/a@x", "alice", "a@x"),
        generation=3,
        phase=Phase.INCREMENTAL,
        query_fingerprint="f",
        sync_token="tok",
        last_success_at_ms=1_767_225_600_000,
    )
    assert checkpoint_line("alice/a@x", stream).split() == [
        "alice/a@x",
        "3",
        "INCREMENTAL",
        "yes",
        "2026-01-01T00:00:00Z",
    ]
