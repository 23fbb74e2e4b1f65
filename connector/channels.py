"""Push channels: which are live, verifying notifications, opening, renewing and stopping.

The registry is shared by the webhook handler (verification, which must answer at once) and
the sync workers (which open and renew a stream's channel after its pass, so a stream's channel
and checkpoint change only on the thread that owns the stream). Stopping channels is an API
call, so it is queued and done by a background thread, never inside a webhook request.

Google offers no way to list channels, so each stream's channel is kept in its checkpoint
(and each account's calendarList channel in a checkpoint-topic record of its own, see
``connector.calendar_lists``); at start-up the registry is loaded from them, and a stream whose
channel is missing or about to expire gets a new one (new id), after which the old one is stopped.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from connector.core import push
from connector.core.calendar_source import CalendarSource, ListQuery
from connector.core.records import Channel
from connector.errors import ConnectorError

log = logging.getLogger(__name__)

# (stream id or None, channel id, resource id): stop this channel with the stream's account.
StopRequest = tuple[str | None, str, str]


@dataclass(frozen=True)
class ChannelSettings:
    secret: bytes
    address: str
    ttl_seconds: int
    renew_before_seconds: int


class ChannelManager:
    def __init__(
        self,
        settings: ChannelSettings,
        stopper: Callable[[StopRequest], None],
        *,
        nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
        on_decision: Callable[[push.Decision], None] | None = None,
    ) -> None:
        self.settings = settings
        self._stopper = stopper
        self._nonce = nonce
        self._on_decision = on_decision
        self._lock = threading.Lock()
        self._known: dict[str, push.KnownChannel] = {}
        self._last_number: dict[str, int] = {}
        self._streams_by_hash: dict[str, str] = {}
        self._failing: set[str] = set()
        self._stops: queue.Queue[StopRequest | None] = queue.Queue()
        self._thread = threading.Thread(target=self._stop_loop, name="channel-stops", daemon=True)
        self._thread.start()

    # -- registry --------------------------------------------------------------------------
    def add_stream(self, stream_id: str, channel: Channel | None) -> None:
        with self._lock:
            self._streams_by_hash[push.stream_hash(stream_id)] = stream_id
            if channel is not None:
                self._known[channel.id] = push.KnownChannel(stream_id, channel.resource_id)

    def is_failing(self, stream_id: str) -> bool:
        with self._lock:
            return stream_id in self._failing

    # -- webhook side ----------------------------------------------------------------------
    def on_notification(self, headers: Mapping[str, str]) -> push.Decision:
        """Verify one notification; never blocks on I/O."""
        note = push.parse(headers)
        with self._lock:
            known = self._known.get(note.channel_id) if note is not None else None
            last = self._last_number.get(note.channel_id) if note is not None else None
            decision = push.decide(note, known, self.settings.secret, last)
            if note is not None and decision.action in (push.Action.ACK, push.Action.SYNC):
                self._last_number[note.channel_id] = note.message_number
            stream_id = None
            if note is not None and decision.action is push.Action.STOP:
                stream_hash = push.stream_hash_of(note.channel_id)
                stream_id = self._streams_by_hash.get(stream_hash) if stream_hash else None
        if note is not None and decision.action is push.Action.STOP:
            self._stops.put((stream_id, note.channel_id, note.resource_id))
        if self._on_decision is not None:
            self._on_decision(decision)
        return decision

    # -- worker side -----------------------------------------------------------------------
    def maintain(
        self,
        stream_id: str,
        calendar_id: str | None,
        query: ListQuery,
        source: CalendarSource,
        current: Channel | None,
        now_ms: int,
    ) -> Channel | None:
        """Open or renew a channel if due; returns the new channel, else None.

        ``calendar_id`` None watches the account's calendar list instead of a calendar's
        events. The caller stores the new channel (a stream's goes in its checkpoint), then
        calls ``retire`` with the old one. A failure marks the stream's push as failing
        (faster safety polls).
        """
        renew_ms = self.settings.renew_before_seconds * 1000
        if not push.needs_renewal(current, now_ms, renew_ms):
            return None
        channel_id = push.new_channel_id(stream_id, self._nonce())
        with self._lock:
            # Known before Google answers: its `sync` message may arrive before the response.
            self._known[channel_id] = push.KnownChannel(stream_id, None)
        token = push.channel_token(self.settings.secret, channel_id)
        try:
            if calendar_id is None:
                result = source.watch_calendar_list(
                    channel_id=channel_id,
                    address=self.settings.address,
                    token=token,
                    ttl_seconds=self.settings.ttl_seconds,
                )
            else:
                result = source.watch_events(
                    calendar_id,
                    query,
                    channel_id=channel_id,
                    address=self.settings.address,
                    token=token,
                    ttl_seconds=self.settings.ttl_seconds,
                )
        except ConnectorError as exc:
            with self._lock:
                self._known.pop(channel_id, None)
                self._failing.add(stream_id)
            log.warning("cannot open a push channel: %s", exc, extra={"stream": stream_id})
            return None
        expiration = result.expiration_ms or now_ms + self.settings.ttl_seconds * 1000
        with self._lock:
            self._known[channel_id] = push.KnownChannel(stream_id, result.resource_id)
            self._failing.discard(stream_id)
        log.info("push channel open", extra={"stream": stream_id, "expires_ms": expiration})
        return Channel(channel_id, result.resource_id, expiration)

    def retire(self, stream_id: str, channel: Channel | None) -> None:
        """Forget a replaced channel and stop it at Google (in the background)."""
        if channel is None:
            return
        with self._lock:
            self._known.pop(channel.id, None)
            self._last_number.pop(channel.id, None)
        self._stops.put((stream_id, channel.id, channel.resource_id))

    # -- background stops ------------------------------------------------------------------
    def _stop_loop(self) -> None:
        while True:
            request = self._stops.get()
            if request is None:
                return
            try:
                self._stopper(request)
            except ConnectorError as exc:
                log.warning("cannot stop a push channel: %s", exc, extra={"stream": request[0]})

    def drain(self, timeout: float = 10.0) -> None:
        """Stop the background thread once the queued stops are done (at shutdown)."""
        self._stops.put(None)
        self._thread.join(timeout)
