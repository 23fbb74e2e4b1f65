"""``GoogleCalendarSource``: the ``CalendarSource`` over google-api-python-client and google-auth.

It speaks to Google or to the emulator (``api_endpoint="http://127.0.0.1:PORT/calendar/v3/"``),
which serves the same REST API. Every call runs with ``num_retries=0``: whether and when to retry
is the core's decision (``connector.core.backoff``), not the client library's. Third-party errors
are translated in one place, ``connector.adapters.google_errors.to_connector_error``.

Threads and accounts: httplib2 objects are not thread-safe, so each thread gets its own
``httplib2.Http``, discovery service and collections (``service.events()`` is built once per
thread: building it costs about 1.5 ms), but those are shared by every account's source
(``SharedTransport``, in ``connector.adapters.google_transport``): with N accounts and W worker
threads there are W services and transports, not N x W. Nothing account-specific lives in them:
each call wraps the thread's ``Http`` in a throw-away ``AuthorizedHttp`` for the account's
credentials and passes it to ``request.execute(http=...)``, so a token (or a revoked grant) of
one account never reaches another account's requests. The credentials object is shared between
threads; google-auth tolerates concurrent refreshes (the worst case is a redundant token
request).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import google.auth.credentials
import google.auth.exceptions
import google_auth_httplib2
import httplib2
from google.api_core import universe
from googleapiclient.errors import HttpError

from connector.adapters.google_errors import CallContext, to_connector_error
from connector.adapters.google_transport import HttpFactory, SharedTransport, shared_transport
from connector.adapters.page_decoder import PreparedEvent
from connector.core.calendar_source import (
    CalendarInfo,
    CalendarListPage,
    EventsPage,
    ListQuery,
    WatchResult,
)
from connector.errors import CalendarGoneError

log = logging.getLogger(__name__)

CALENDAR_LIST_PAGE = 250


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One API call as seen on the wire, for metrics: status 0 when no HTTP answer came back."""

    method: str
    status: int
    duration_s: float


class GoogleCalendarSource:
    """One account's calendars over the Calendar API v3 (Google or the emulator).

    By default every source with the same ``timeout`` shares the process-wide
    ``shared_transport(timeout)``: one raw ``httplib2.Http(timeout)`` and one discovery service per
    thread. ``transport`` passes another ``SharedTransport``; ``http_factory`` (a raw
    httplib2-style transport, e.g. ``googleapiclient.http.HttpMockSequence`` in tests) gives this
    source a private one. Each call wraps the thread's transport in an ``AuthorizedHttp`` for this
    account's credentials that refreshes them once on a 401.
    """

    def __init__(
        self,
        credentials: google.auth.credentials.Credentials,
        *,
        api_endpoint: str | None = None,
        quota_user: str | None = None,
        timeout: float = 30.0,
        on_request: Callable[[RequestRecord], None] | None = None,
        http_factory: HttpFactory | None = None,
        transport: SharedTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if http_factory is not None and transport is not None:
            raise ValueError("pass http_factory or transport, not both")
        if transport is None:
            transport = (
                SharedTransport(http_factory, timeout=timeout)
                if http_factory is not None
                else shared_transport(timeout)
            )
        self._credentials = credentials
        self._api_endpoint = api_endpoint
        self._quota_user = quota_user
        self._on_request = on_request
        self._clock = clock
        self._transport = transport
        self._attach_lock = threading.Lock()
        self._universe_checked = False
        self._release = self._attach()

    @property
    def transport(self) -> SharedTransport:
        return self._transport

    def _attach(self) -> weakref.finalize[[], GoogleCalendarSource]:
        """Count this source as a user of the transport until ``close`` or garbage collection."""
        self._transport.acquire()
        return weakref.finalize(self, self._transport.release)

    def _service(self) -> Any:
        """This thread's shared discovery service (the source is reattached after ``close``)."""
        if not self._release.alive:
            with self._attach_lock:
                if not self._release.alive:
                    self._release = self._attach()
        service = self._transport.service(self._api_endpoint)
        if not self._universe_checked:
            # build() checked the credentials' universe when the service carried them; it is
            # shared now, so check this account's once (UniverseMismatchError, as before).
            client_universe = getattr(service, "_universe_domain", None)
            if client_universe:
                universe.compare_domains(client_universe, self._credentials)
            self._universe_checked = True
        return service

    def _resource(self, name: str) -> Any:
        """This thread's shared ``events`` / ``calendarList`` / ... collection."""
        self._service()
        return self._transport.resource(self._api_endpoint, name)

    def _authorized(self) -> google_auth_httplib2.AuthorizedHttp:
        """This account's credentials around this thread's shared transport, for one call."""
        return google_auth_httplib2.AuthorizedHttp(
            self._credentials,
            http=self._transport.http(),
            refresh_status_codes=(401,),
            max_refresh_attempts=1,
        )

    def close(self) -> None:
        """Stop using the shared transport; the last source to close closes its connections
        (httplib2 keeps sockets open between calls). A later call reopens them lazily."""
        self._release()

    def _execute(self, request: Any, ctx: CallContext) -> dict[str, Any]:
        """Run one request with no client-side retries, report it, translate its errors."""
        started = self._clock()
        status = 0
        try:
            response = request.execute(http=self._authorized(), num_retries=0)
            status = 200
        except HttpError as exc:
            status = int(exc.resp.status)
            raise _translated(exc, ctx) from exc
        except (google.auth.exceptions.GoogleAuthError, httplib2.HttpLib2Error, OSError) as exc:
            raise _translated(exc, ctx) from exc
        finally:
            if self._on_request is not None:
                self._on_request(RequestRecord(ctx.method, status, self._clock() - started))
        return response if isinstance(response, dict) else {}

    def _common(self) -> dict[str, Any]:
        return {"quotaUser": self._quota_user} if self._quota_user else {}

    @staticmethod
    def _query_params(query: ListQuery) -> dict[str, Any]:
        """The parameters allowed with a sync token: identical on every call of a stream."""
        params: dict[str, Any] = {"singleEvents": query.single_events}
        if query.event_types:
            params["eventTypes"] = list(query.event_types)
        if query.time_zone:
            params["timeZone"] = query.time_zone
        return params

    def list_events(
        self,
        calendar_id: str,
        query: ListQuery,
        *,
        sync_token: str | None,
        page_token: str | None,
    ) -> EventsPage:
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "maxResults": query.max_results,
            **self._query_params(query),
            **self._common(),
        }
        # showDeleted is never sent: it must be identical on full and incremental calls, and
        # leaving it out keeps cancelled exceptions in full passes with singleEvents=false.
        if sync_token:
            params["syncToken"] = sync_token
        elif query.time_min:
            params["timeMin"] = query.time_min
        if page_token:
            params["pageToken"] = page_token
        ctx = CallContext(
            "calendar.events.list", calendar_id, bool(sync_token), page_token_sent=bool(page_token)
        )
        body = self._execute(self._resource("events").list(**params), ctx)
        items = body.get("items") or []
        return EventsPage(
            items=[i for i in items if type(i) is dict or type(i) is PreparedEvent],
            next_page_token=body.get("nextPageToken") or None,
            next_sync_token=body.get("nextSyncToken") or None,
            time_zone=body.get("timeZone"),
            access_role=body.get("accessRole"),
            etag=body.get("etag"),
        )

    def get_calendar(self, calendar_id: str) -> CalendarInfo:
        """calendarList.get; if the calendar is not in the list (a calendar shared with a service
        account is not added to its list), calendars.get, whose access role is "unknown"."""
        try:
            entry = self._execute(
                self._resource("calendarList").get(calendarId=calendar_id, **self._common()),
                CallContext("calendar.calendarList.get", calendar_id),
            )
            return to_calendar_info(entry)
        except CalendarGoneError:
            log.debug("calendar %s is not in the calendar list; trying calendars.get", calendar_id)
        cal = self._execute(
            self._resource("calendars").get(calendarId=calendar_id, **self._common()),
            CallContext("calendar.calendars.get", calendar_id),
        )
        return to_calendar_info({**cal, "accessRole": cal.get("accessRole", "unknown")})

    def list_calendars(
        self, *, sync_token: str | None = None, page_token: str | None = None
    ) -> CalendarListPage:
        # showDeleted/showHidden=true on every call: allowed with a sync token (only false is
        # refused) and keeps full and incremental calls identical. minAccessRole is never sent.
        params: dict[str, Any] = {
            "maxResults": CALENDAR_LIST_PAGE,
            "showDeleted": True,
            "showHidden": True,
            **self._common(),
        }
        if sync_token:
            params["syncToken"] = sync_token
        if page_token:
            params["pageToken"] = page_token
        ctx = CallContext(
            "calendar.calendarList.list",
            sync_token_sent=bool(sync_token),
            page_token_sent=bool(page_token),
        )
        body = self._execute(self._resource("calendarList").list(**params), ctx)
        return CalendarListPage(
            items=[to_calendar_info(i) for i in body.get("items") or [] if isinstance(i, dict)],
            next_page_token=body.get("nextPageToken") or None,
            next_sync_token=body.get("nextSyncToken") or None,
        )

    def watch_events(
        self,
        calendar_id: str,
        query: ListQuery,
        *,
        channel_id: str,
        address: str,
        token: str,
        ttl_seconds: int | None = None,
    ) -> WatchResult:
        # The same filters as the incremental list (no timeMin, no sync token), so the channel
        # reports exactly the changes the next incremental pass will fetch.
        request = self._resource("events").watch(
            calendarId=calendar_id,
            body=_channel_body(channel_id, address, token, ttl_seconds),
            **self._query_params(query),
            **self._common(),
        )
        body = self._execute(request, CallContext("calendar.events.watch", calendar_id))
        return to_watch_result(body, channel_id)

    def watch_calendar_list(
        self, *, channel_id: str, address: str, token: str, ttl_seconds: int | None = None
    ) -> WatchResult:
        request = self._resource("calendarList").watch(
            body=_channel_body(channel_id, address, token, ttl_seconds),
            showDeleted=True,
            showHidden=True,
            **self._common(),
        )
        body = self._execute(request, CallContext("calendar.calendarList.watch"))
        return to_watch_result(body, channel_id)

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Stop a channel; a 404 (already expired or stopped) counts as done."""
        request = self._resource("channels").stop(
            body={"id": channel_id, "resourceId": resource_id}, **self._common()
        )
        try:
            self._execute(request, CallContext("calendar.channels.stop"))
        except CalendarGoneError:
            log.info("channel %s was already gone when stopped", channel_id)


def _translated(exc: BaseException, ctx: CallContext) -> BaseException:
    mapped = to_connector_error(exc, ctx)
    return mapped if mapped is not None else exc


def _channel_body(
    channel_id: str, address: str, token: str, ttl_seconds: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"id": channel_id, "type": "web_hook", "address": address}
    if token:
        body["token"] = token
    if ttl_seconds is not None:
        body["params"] = {"ttl": str(int(ttl_seconds))}
    return body


def to_calendar_info(entry: dict[str, Any]) -> CalendarInfo:
    """A ``calendarListEntry`` (or ``Calendar``) as ``CalendarInfo``; the raw JSON is kept."""
    return CalendarInfo(
        id=str(entry.get("id", "")),
        summary=entry.get("summaryOverride") or entry.get("summary"),
        access_role=str(entry.get("accessRole", "unknown")),
        primary=bool(entry.get("primary", False)),
        deleted=bool(entry.get("deleted", False)),
        hidden=bool(entry.get("hidden", False)),
        time_zone=entry.get("timeZone"),
        raw=entry,
    )


def to_watch_result(body: dict[str, Any], channel_id: str) -> WatchResult:
    """Google sends ``expiration`` as an int64 string or a number: accept both."""
    raw = body.get("expiration")
    try:
        expiration = int(raw) if raw is not None else None
    except (TypeError, ValueError):
        expiration = None
    return WatchResult(
        id=str(body.get("id") or channel_id),
        resource_id=str(body.get("resourceId", "")),
        expiration_ms=expiration,
    )
