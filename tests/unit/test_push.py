"""Push notifications: verification, replay refusal, channel identity, renewal decisions."""

from __future__ import annotations

import threading

from connector.channels import ChannelManager, ChannelSettings, StopRequest
from connector.core import push
from connector.core.calendar_source import ListQuery
from connector.core.records import Channel
from tests.fakes import FakeCalendarSource

SECRET = b"0123456789abcdef-secret"


def headers(
    channel_id: str,
    *,
    state: str = "exists",
    number: int = 5,
    resource: str = "res-1",
    token: str | None = "auto",
) -> dict[str, str]:
    h = {
        "X-Goog-Channel-ID": channel_id,
        "X-Goog-Resource-ID": resource,
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
    }
    if token == "auto":
        h["X-Goog-Channel-Token"] = push.channel_token(SECRET, channel_id)
    elif token is not None:
        h["X-Goog-Channel-Token"] = token
    return h


def test_channel_ids_name_their_stream() -> None:
    cid = push.new_channel_id("alice/cal@x", "abc123")
    assert cid.startswith("gk-") and len(cid) <= 64
    assert push.stream_hash_of(cid) == push.stream_hash("alice/cal@x")
    assert push.stream_hash_of("someone-elses-channel") is None


def test_decisions() -> None:
    known = push.KnownChannel("alice/cal", "res-1")
    cid = "gk-0000000000000000-n1"

    def decide(
        h: dict[str, str], k: push.KnownChannel | None = known, last: int | None = None
    ) -> push.Decision:
        return push.decide(push.parse(h), k, SECRET, last)

    assert decide(headers(cid, state="sync", number=1)).action is push.Action.ACK
    ok = decide(headers(cid))
    assert (ok.status, ok.action, ok.stream_id) == (200, push.Action.SYNC, "alice/cal")
    forged = decide(headers(cid, token="guess"))
    assert (forged.status, forged.action) == (403, push.Action.REJECT)
    assert decide(headers(cid, token=None)).status == 403
    assert decide(headers(cid, resource="res-other")).status == 403
    replay = decide(headers(cid, number=5), last=5)
    assert (replay.status, replay.action) == (409, push.Action.REJECT)
    assert decide(headers(cid, number=9), last=5).action is push.Action.SYNC
    unknown = decide(headers(cid), k=None)
    assert (unknown.status, unknown.action) == (404, push.Action.STOP)
    assert decide({"X-Goog-Channel-ID": cid}).status == 400
    assert decide(headers(cid, number=0)).status == 400
    assert decide(headers(cid, state="add")).status == 400  # Drive's states are not Calendar's
    # Before Google answered the watch, the resource id is unknown: the signed `sync` passes.
    pending = push.KnownChannel("alice/cal", None)
    assert decide(headers(cid, state="sync", number=1), k=pending).status == 200


def test_renewal_decisions() -> None:
    channel = Channel("gk-x", "res", expiration_ms=100_000)
    assert push.needs_renewal(None, 0, 10_000)
    assert not push.needs_renewal(channel, 50_000, 10_000)
    assert push.needs_renewal(channel, 90_000, 10_000)
    assert push.renewal_due_ms(channel, 10_000) == 90_000


class Stops:
    def __init__(self) -> None:
        self.done: list[StopRequest] = []
        self.event = threading.Event()

    def __call__(self, request: StopRequest) -> None:
        self.done.append(request)
        self.event.set()


def manager(stops: Stops) -> ChannelManager:
    nonces = iter(f"n{i}" for i in range(100))
    return ChannelManager(
        ChannelSettings(SECRET, "https://hooks.example.com/g", 3600, 600),
        stops,
        nonce=lambda: next(nonces),
    )


def test_open_renew_and_retire_a_channel() -> None:
    stops = Stops()
    channels = manager(stops)
    source = FakeCalendarSource()
    channels.add_stream("alice/cal", None)
    first = channels.maintain("alice/cal", "cal", ListQuery(), source, None, now_ms=0)
    assert first is not None and first.expiration_ms == 3_600_000
    assert channels.maintain("alice/cal", "cal", ListQuery(), source, first, now_ms=1000) is None
    note = headers(first.id, resource=first.resource_id)
    assert channels.on_notification(note).action is push.Action.SYNC
    assert channels.on_notification(note).status == 409  # replayed
    second = channels.maintain("alice/cal", "cal", ListQuery(), source, first, now_ms=3_100_000)
    assert second is not None and second.id != first.id
    channels.retire("alice/cal", first)
    assert stops.event.wait(5)
    assert stops.done == [("alice/cal", first.id, first.resource_id)]
    # A late notification on the retired channel: ours (signed), unknown now -> stop it again.
    late = channels.on_notification(headers(first.id, resource=first.resource_id, number=99))
    assert (late.status, late.action) == (404, push.Action.STOP)
    channels.drain()
    assert stops.done[-1] == ("alice/cal", first.id, first.resource_id)


def test_a_failed_watch_marks_the_stream_failing() -> None:
    from connector.errors import RetriableError

    class Failing(FakeCalendarSource):
        def watch_events(self, *args: object, **kwargs: object):  # type: ignore[override]
            raise RetriableError("503", status=503)

    channels = manager(Stops())
    assert channels.maintain("alice/cal", "cal", ListQuery(), Failing(), None, 0) is None
    assert channels.is_failing("alice/cal")
    channels.drain()
