"""GoogleCalendarSource against Google's own offline transport (HttpMockSequence) and golden bodies.

No sockets: every response comes from tests/data/google/, copied from the API reference, except in
the tests marked ``integration`` at the end, which talk to the emulator in-process on loopback.
"""

from __future__ import annotations

import itertools
import json
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.http import HttpMockSequence

from connector.adapters.google_errors import CallContext, to_connector_error
from connector.adapters.google_source import (
    GoogleCalendarSource,
    RequestRecord,
    SharedTransport,
    shared_transport,
)
from connector.core.calendar_source import ListQuery
from connector.emulator.server import EmulatorServer
from connector.errors import (
    AuthError,
    CalendarGoneError,
    ConfigError,
    FullSyncRequired,
    PageTokenRejected,
    QuotaExceededError,
    RetriableError,
    StreamFailedError,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "google"
TOKEN_URI = "https://oauth2.example.test/token"
CAL = "alice@example.com"
FORBIDDEN_WITH_SYNC_TOKEN = {
    "timeMin",
    "timeMax",
    "updatedMin",
    "orderBy",
    "q",
    "iCalUID",
    "privateExtendedProperty",
    "sharedExtendedProperty",
    "showDeleted",
}
QUERY = ListQuery(
    single_events=False,
    event_types=("default", "focusTime"),
    time_min="2025-09-01T00:00:00Z",
    time_zone="UTC",
)


def body(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def ok(name: str) -> tuple[dict[str, str], str]:
    return {"status": "200"}, body(name)


def err(status: int, name: str, **headers: str) -> tuple[dict[str, str], str]:
    return {"status": str(status), **headers}, body(name)


def make(
    responses: list[tuple[dict[str, str], str]], **kwargs: Any
) -> tuple[GoogleCalendarSource, HttpMockSequence, Credentials]:
    seq = HttpMockSequence(responses)
    creds = Credentials(
        token="access-0",
        refresh_token="secret-refresh-token",
        token_uri=TOKEN_URI,
        client_id="client-id",
        client_secret="client-secret",
    )
    source = GoogleCalendarSource(creds, http_factory=lambda: seq, **kwargs)
    return source, seq, creds


def query_of(uri: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(uri).query)


def calendar_calls(seq: HttpMockSequence) -> list[tuple[str, str, Any, Any]]:
    return [r for r in seq.request_sequence if not r[0].startswith(TOKEN_URI)]


def token_calls(seq: HttpMockSequence) -> list[tuple[str, str, Any, Any]]:
    return [r for r in seq.request_sequence if r[0].startswith(TOKEN_URI)]


# --- the exact parameters sent -------------------------------------------------------------


def test_full_pass_sends_time_min_and_the_stream_filters_but_never_show_deleted() -> None:
    source, seq, _ = make([ok("events_page_1.json")])
    source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    (uri, method, _, _) = seq.request_sequence[0]
    assert method == "GET"
    assert unquote(urlsplit(uri).path) == f"/calendar/v3/calendars/{CAL}/events"
    assert query_of(uri) == {
        "alt": ["json"],
        "maxResults": ["2500"],
        "singleEvents": ["false"],
        "eventTypes": ["default", "focusTime"],
        "timeZone": ["UTC"],
        "timeMin": ["2025-09-01T00:00:00Z"],
    }


def test_incremental_pass_sends_only_the_parameters_allowed_with_a_sync_token() -> None:
    source, seq, _ = make([ok("events_page_1.json"), ok("events_page_last.json")])
    source.list_events(CAL, QUERY, sync_token="CPDAlvWDx70CEPDAlvWDx", page_token=None)
    source.list_events(
        CAL, QUERY, sync_token="CPDAlvWDx70CEPDAlvWDx", page_token="CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA"
    )
    first, second = (query_of(r[0]) for r in seq.request_sequence)
    assert first == {
        "alt": ["json"],
        "maxResults": ["2500"],
        "singleEvents": ["false"],
        "eventTypes": ["default", "focusTime"],
        "timeZone": ["UTC"],
        "syncToken": ["CPDAlvWDx70CEPDAlvWDx"],
    }
    assert not FORBIDDEN_WITH_SYNC_TOKEN & first.keys()
    # The next page repeats the exact same request plus pageToken (the doc's own example).
    assert second == {**first, "pageToken": ["CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA"]}


def test_full_pass_pages_repeat_the_first_request_plus_page_token() -> None:
    source, seq, _ = make([ok("events_page_1.json"), ok("events_page_last.json")])
    first = source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    source.list_events(CAL, QUERY, sync_token=None, page_token=first.next_page_token)
    q1, q2 = (query_of(r[0]) for r in seq.request_sequence)
    assert q2 == {**q1, "pageToken": ["CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA"]}


def test_minimal_query_sends_no_optional_filters() -> None:
    source, seq, _ = make([ok("events_page_1.json")])
    source.list_events("primary", ListQuery(), sync_token=None, page_token=None)
    assert query_of(seq.request_sequence[0][0]) == {
        "alt": ["json"],
        "maxResults": ["2500"],
        "singleEvents": ["false"],
    }


def test_quota_user_and_api_endpoint_are_used_on_every_call() -> None:
    source, seq, _ = make(
        [ok("events_page_1.json"), ok("calendar_list_page.json")],
        api_endpoint="http://127.0.0.1:8765/calendar/v3/",
        quota_user="alice@example.com",
    )
    source.list_events(CAL, ListQuery(), sync_token=None, page_token=None)
    source.list_calendars()
    for uri, *_ in seq.request_sequence:
        assert uri.startswith("http://127.0.0.1:8765/calendar/v3/")
        assert query_of(uri)["quotaUser"] == ["alice@example.com"]


def test_pages_are_parsed_and_an_empty_page_keeps_its_page_token() -> None:
    source, _, _ = make(
        [ok("events_page_1.json"), ok("events_page_2_empty.json"), ok("events_page_last.json")]
    )
    p1 = source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    p2 = source.list_events(CAL, QUERY, sync_token=None, page_token=p1.next_page_token)
    p3 = source.list_events(CAL, QUERY, sync_token=None, page_token=p2.next_page_token)
    assert [i["id"] for i in p1.items] == ["evt001"]
    assert (p1.next_page_token, p1.next_sync_token) == ("CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXA", None)
    assert (p1.time_zone, p1.access_role, p1.etag) == (
        "Europe/Berlin",
        "owner",
        '"p33c9mvpnrbjoo0g"',
    )
    assert p2.items == [] and p2.next_page_token == "CiAKGjBpNDd2Nmp2Zml2cXRwYjBpOXB"
    assert p3.next_page_token is None and p3.next_sync_token == "CPDAlvWDx70CEPDAlvWDx70CGAU="
    assert p3.items == [json.loads(body("events_page_last.json"))["items"][0]]


def test_the_client_never_retries_by_itself() -> None:
    source, seq, _ = make([err(500, "error_500_backend.json"), ok("events_page_1.json")])
    with pytest.raises(RetriableError):
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert len(seq.request_sequence) == 1


# --- the error table -----------------------------------------------------------------------

ERROR_CASES = [
    # (status, golden body, extra headers, sync token sent, page token sent, expected, reason)
    (
        410,
        "error_410_full_sync_required.json",
        {},
        True,
        False,
        FullSyncRequired,
        "fullSyncRequired",
    ),
    (410, "error_410_deleted.json", {}, True, True, FullSyncRequired, "deleted"),
    (400, "error_400_page_token.json", {}, False, True, PageTokenRejected, None),
    (400, "error_400_page_token.json", {}, True, True, PageTokenRejected, None),
    (400, "error_400_page_token.json", {}, False, False, StreamFailedError, "invalid"),
    (400, "error_400_time_range_empty.json", {}, False, True, StreamFailedError, "timeRangeEmpty"),
    (
        400,
        "error_400_sync_token_restrictions.json",
        {},
        True,
        False,
        StreamFailedError,
        "syncTokenWithRequestRestrictions",
    ),
    (
        403,
        "error_403_user_rate_limit.json",
        {},
        False,
        False,
        RetriableError,
        "userRateLimitExceeded",
    ),
    (403, "error_403_rate_limit.json", {}, True, False, RetriableError, "rateLimitExceeded"),
    (429, "error_429_rate_limit.json", {}, False, False, RetriableError, "rateLimitExceeded"),
    (403, "error_403_quota_exceeded.json", {}, False, False, QuotaExceededError, "quotaExceeded"),
    (
        403,
        "error_403_insufficient_permissions.json",
        {},
        False,
        False,
        StreamFailedError,
        "insufficientPermissions",
    ),
    (
        403,
        "error_403_forbidden_for_non_organizer.json",
        {},
        False,
        False,
        StreamFailedError,
        "forbiddenForNonOrganizer",
    ),
    (404, "error_404_not_found.json", {}, True, False, CalendarGoneError, "notFound"),
    (500, "error_500_backend.json", {}, False, False, RetriableError, "backendError"),
]


@pytest.mark.parametrize(
    ("status", "name", "headers", "with_sync", "with_page", "expected", "reason"), ERROR_CASES
)
def test_google_errors_map_to_the_error_tree(
    status: int,
    name: str,
    headers: dict[str, str],
    with_sync: bool,
    with_page: bool,
    expected: type[BaseException],
    reason: str | None,
) -> None:
    source, _, _ = make([err(status, name, **headers)])
    with pytest.raises(expected) as info:
        source.list_events(
            CAL,
            QUERY,
            sync_token="tok" if with_sync else None,
            page_token="page" if with_page else None,
        )
    assert type(info.value) is expected  # not a subclass: 403 rate limit is not a quota error
    if reason is not None:
        assert getattr(info.value, "reason", None) == reason
    if isinstance(info.value, RetriableError | StreamFailedError):
        assert info.value.status == status


def test_rate_limit_carries_retry_after_from_the_header() -> None:
    source, _, _ = make([err(429, "error_429_rate_limit.json", **{"retry-after": "17"})])
    with pytest.raises(RetriableError) as info:
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert info.value.retry_after == 17.0


def test_a_5xx_without_a_json_body_is_retriable() -> None:
    source, _, _ = make([({"status": "503"}, "<html>Service Unavailable</html>")])
    with pytest.raises(RetriableError) as info:
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert (info.value.status, info.value.reason) == (503, None)


def test_410_without_a_sync_token_is_not_a_reset_signal() -> None:
    source, _, _ = make([err(410, "error_410_deleted.json")])
    with pytest.raises(StreamFailedError):
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)


# --- 401: exactly one refresh --------------------------------------------------------------


def test_401_refreshes_once_and_retries_with_the_new_token() -> None:
    source, seq, creds = make(
        [err(401, "error_401_auth.json"), ok("token_response.json"), ok("events_page_1.json")]
    )
    page = source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert page.items[0]["id"] == "evt001"
    assert len(token_calls(seq)) == 1
    first, retried = calendar_calls(seq)
    assert first[3]["authorization"] == "Bearer access-0"
    assert retried[3]["authorization"] == "Bearer ya29.refreshed-access-token"
    assert creds.token == "ya29.refreshed-access-token"


def test_401_after_the_refresh_is_an_auth_error_without_a_second_refresh() -> None:
    source, seq, _ = make(
        [
            err(401, "error_401_auth.json"),
            ok("token_response.json"),
            err(401, "error_401_auth.json"),
        ]
    )
    with pytest.raises(AuthError) as info:
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert info.value.status == 401
    assert len(token_calls(seq)) == 1 and len(calendar_calls(seq)) == 2


def test_a_failed_refresh_is_an_auth_error_that_does_not_leak_secrets() -> None:
    source, seq, _ = make([err(401, "error_401_auth.json"), err(400, "token_invalid_grant.json")])
    with pytest.raises(AuthError) as info:
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert info.value.reason == "invalid_grant"
    assert "secret-refresh-token" not in str(info.value)
    assert "client-secret" not in str(info.value)
    assert len(token_calls(seq)) == 1


# --- transport failures --------------------------------------------------------------------


class RaisingHttp:
    """An httplib2-style transport whose every request fails the way a socket would."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    def request(self, uri: str, method: str = "GET", **kwargs: Any) -> Any:
        self.calls += 1
        raise self.exc


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError("timed out"), "timeout"),
        (ConnectionRefusedError(111, "Connection refused"), "network"),
        (httplib2.ServerNotFoundError("Unable to find the server"), "network"),
    ],
)
def test_transport_failures_are_retriable_and_reported_with_status_0(
    exc: BaseException, reason: str
) -> None:
    records: list[RequestRecord] = []
    creds = Credentials(token="access-0")
    http = RaisingHttp(exc)
    source = GoogleCalendarSource(
        creds,
        http_factory=lambda: http,
        on_request=records.append,
        clock=itertools.count().__next__,
    )
    with pytest.raises(RetriableError) as info:
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert info.value.reason == reason and info.value.status is None
    assert http.calls == 1
    assert records == [RequestRecord("calendar.events.list", 0, 1)]


def test_foreign_exceptions_are_left_alone() -> None:
    assert to_connector_error(KeyError("x"), CallContext("calendar.events.list")) is None


def test_on_request_receives_method_status_and_duration() -> None:
    records: list[RequestRecord] = []
    source, _, _ = make(
        [ok("events_page_1.json"), err(404, "error_404_not_found.json")],
        on_request=records.append,
        clock=iter([10.0, 10.25, 20.0, 20.5]).__next__,
    )
    source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    with pytest.raises(CalendarGoneError):
        source.list_events(CAL, QUERY, sync_token="tok", page_token=None)
    assert records == [
        RequestRecord("calendar.events.list", 200, 0.25),
        RequestRecord("calendar.events.list", 404, 0.5),
    ]


# --- calendars, channels, threads ----------------------------------------------------------


def test_get_calendar_resolves_primary_through_the_calendar_list() -> None:
    source, seq, _ = make([ok("calendar_list_entry_primary.json")])
    info = source.get_calendar("primary")
    assert (info.id, info.access_role, info.primary, info.time_zone) == (
        "alice@example.com",
        "owner",
        True,
        "Europe/Berlin",
    )
    assert urlsplit(seq.request_sequence[0][0]).path == "/calendar/v3/users/me/calendarList/primary"


def test_get_calendar_falls_back_to_calendars_get_when_not_in_the_list() -> None:
    source, seq, _ = make([err(404, "error_404_not_found.json"), ok("calendar_get.json")])
    info = source.get_calendar("team@group.calendar.google.com")
    assert (info.id, info.access_role, info.summary) == (
        "team@group.calendar.google.com",
        "unknown",
        "Team",
    )
    assert unquote(urlsplit(seq.request_sequence[1][0]).path) == (
        "/calendar/v3/calendars/team@group.calendar.google.com"
    )


def test_get_calendar_of_an_inaccessible_calendar_is_calendar_gone() -> None:
    source, _, _ = make(
        [err(404, "error_404_not_found.json"), err(404, "error_404_not_found.json")]
    )
    with pytest.raises(CalendarGoneError):
        source.get_calendar("nobody@example.com")


def test_list_calendars_parameters_and_entries() -> None:
    source, seq, _ = make([ok("calendar_list_page.json"), ok("calendar_list_page.json")])
    page = source.list_calendars()
    source.list_calendars(sync_token="CKCb", page_token="p2")
    full, incremental = (query_of(r[0]) for r in seq.request_sequence)
    assert full == {
        "alt": ["json"],
        "maxResults": ["250"],
        "showDeleted": ["true"],
        "showHidden": ["true"],
    }
    assert incremental == {**full, "syncToken": ["CKCb"], "pageToken": ["p2"]}
    assert [(c.id, c.access_role, c.primary, c.hidden, c.deleted) for c in page.items] == [
        ("alice@example.com", "owner", True, False, False),
        ("team@group.calendar.google.com", "reader", False, True, False),
        ("gone@group.calendar.google.com", "reader", False, False, True),
    ]
    assert page.items[1].summary == "My team"
    assert page.next_sync_token == "CKCbnJOYx4ADEhFhbGljZUBleGFtcGxlLmNvbQ=="


def test_calendar_list_410_with_a_sync_token_requires_a_full_sync() -> None:
    source, _, _ = make([err(410, "error_410_full_sync_required.json")])
    with pytest.raises(FullSyncRequired):
        source.list_calendars(sync_token="old")


def test_watch_events_uses_the_incremental_filters_and_parses_the_channel() -> None:
    source, seq, _ = make([ok("watch_response.json")])
    result = source.watch_events(
        CAL,
        QUERY,
        channel_id="01234567-89ab-cdef-0123-456789abcdef",
        address="https://hooks.example.com/gcal",
        token="target=stream-1",
        ttl_seconds=3600,
    )
    uri, method, sent, _ = seq.request_sequence[0]
    assert method == "POST"
    assert unquote(urlsplit(uri).path) == f"/calendar/v3/calendars/{CAL}/events/watch"
    assert query_of(uri) == {
        "alt": ["json"],
        "singleEvents": ["false"],
        "eventTypes": ["default", "focusTime"],
        "timeZone": ["UTC"],
    }
    assert json.loads(sent) == {
        "id": "01234567-89ab-cdef-0123-456789abcdef",
        "type": "web_hook",
        "address": "https://hooks.example.com/gcal",
        "token": "target=stream-1",
        "params": {"ttl": "3600"},
    }
    assert (result.id, result.resource_id, result.expiration_ms) == (
        "01234567-89ab-cdef-0123-456789abcdef",
        "o3hgv1538sdjfh",
        1426325213000,
    )


def test_watch_calendar_list_and_stop_channel() -> None:
    source, seq, _ = make(
        [ok("watch_response.json"), ({"status": "204"}, ""), err(404, "error_404_not_found.json")]
    )
    result = source.watch_calendar_list(channel_id="c1", address="https://h.example/x", token="t")
    source.stop_channel(result.id, result.resource_id)
    source.stop_channel("expired", "r")  # 404: already gone counts as stopped
    watch, stop, _ = seq.request_sequence
    assert urlsplit(watch[0]).path == "/calendar/v3/users/me/calendarList/watch"
    assert urlsplit(stop[0]).path == "/calendar/v3/channels/stop"
    assert json.loads(stop[2]) == {
        "id": "01234567-89ab-cdef-0123-456789abcdef",
        "resourceId": "o3hgv1538sdjfh",
    }


def test_each_thread_gets_its_own_http_object() -> None:
    made: list[HttpMockSequence] = []

    def factory() -> HttpMockSequence:
        made.append(HttpMockSequence([ok("events_page_1.json"), ok("events_page_1.json")]))
        return made[-1]

    source = GoogleCalendarSource(Credentials(token="access-0"), http_factory=factory)
    source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    worker = threading.Thread(
        target=source.list_events,
        args=(CAL, QUERY),
        kwargs={"sync_token": None, "page_token": None},
    )
    worker.start()
    worker.join()
    source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert [len(m.request_sequence) for m in made] == [2, 1]


# --- ListQuery -----------------------------------------------------------------------------


def test_fingerprint_ignores_page_size_and_event_type_order_but_not_filters() -> None:
    base = ListQuery(event_types=("default", "focusTime"), time_zone="UTC")
    assert (
        base.fingerprint()
        == ListQuery(
            event_types=("focusTime", "default"), time_zone="UTC", max_results=10
        ).fingerprint()
    )
    assert base.fingerprint() != ListQuery(event_types=("default",), time_zone="UTC").fingerprint()
    assert (
        base.fingerprint()
        != ListQuery(
            single_events=True, event_types=("default", "focusTime"), time_zone="UTC"
        ).fingerprint()
    )
    assert (
        base.fingerprint()
        != ListQuery(
            event_types=("default", "focusTime"), time_zone="UTC", time_min="2025-01-01T00:00:00Z"
        ).fingerprint()
    )


@pytest.mark.parametrize("size", [0, 2501])
def test_page_size_outside_googles_limits_is_a_config_error(size: int) -> None:
    with pytest.raises(ConfigError):
        ListQuery(max_results=size)


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "network"),
        (httplib2.ServerNotFoundError("Unable to find the server"), "tokenTransport"),
    ],
)
def test_an_unreachable_token_endpoint_is_retriable_not_an_auth_failure(
    exc: BaseException, reason: str
) -> None:
    creds = Credentials(
        token=None,
        refresh_token="secret-refresh-token",
        token_uri=TOKEN_URI,
        client_id="client-id",
        client_secret="client-secret",
    )
    http = RaisingHttp(exc)
    source = GoogleCalendarSource(creds, http_factory=lambda: http)
    with pytest.raises(RetriableError) as info:
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert info.value.reason == reason
    assert "secret-refresh-token" not in str(info.value)


def test_a_retryable_refresh_error_is_retriable_and_a_revoked_grant_is_not() -> None:
    ctx = CallContext("calendar.events.list")
    data = {"error": "internal_failure"}
    transient = RefreshError("internal_failure: Backend", data, retryable=True)
    revoked = RefreshError("invalid_grant: Token has been expired or revoked.", {})
    assert type(to_connector_error(transient, ctx)) is RetriableError
    mapped = to_connector_error(revoked, ctx)
    assert isinstance(mapped, AuthError) and mapped.reason == "invalid_grant"


class ClosableSequence(HttpMockSequence):  # type: ignore[misc]
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_close_closes_the_connections_of_every_thread() -> None:
    made: list[ClosableSequence] = []

    def factory() -> ClosableSequence:
        made.append(ClosableSequence([ok("events_page_1.json")]))
        return made[-1]

    source = GoogleCalendarSource(Credentials(token="access-0"), http_factory=factory)
    source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    worker = threading.Thread(
        target=source.list_events,
        args=(CAL, QUERY),
        kwargs={"sync_token": None, "page_token": None},
    )
    worker.start()
    worker.join()
    source.close()
    assert [m.closed for m in made] == [1, 1]
    source.list_events(CAL, QUERY, sync_token=None, page_token=None)  # reopens lazily
    assert len(made) == 3


# --- one transport and one discovery service per thread, shared by every account ------------


def api_headers(seq: HttpMockSequence) -> list[tuple[str, str]]:
    """(authorization, quotaUser) of every Calendar API call, in order."""
    return [(r[3]["authorization"], query_of(r[0])["quotaUser"][0]) for r in calendar_calls(seq)]


def test_accounts_share_the_threads_transport_and_service_but_send_their_own_token() -> None:
    made: list[HttpMockSequence] = []

    def factory() -> HttpMockSequence:
        made.append(HttpMockSequence([ok("events_page_1.json")] * 4))
        return made[-1]

    transport = SharedTransport(factory)
    alice = GoogleCalendarSource(
        Credentials(token="token-alice"), quota_user="alice", transport=transport
    )
    bob = GoogleCalendarSource(
        Credentials(token="token-bob"), quota_user="bob", transport=transport
    )
    for source in (alice, bob, bob, alice):
        source.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert len(made) == 1
    assert alice._service() is bob._service() is transport.service(None)
    # The events collection is built once per thread (about 1.5 ms each time), not per call.
    events = transport.resource(None, "events")
    assert alice._resource("events") is bob._resource("events") is events
    assert transport.resource(None, "calendarList") is not events
    assert api_headers(made[0]) == [
        ("Bearer token-alice", "alice"),
        ("Bearer token-bob", "bob"),
        ("Bearer token-bob", "bob"),
        ("Bearer token-alice", "alice"),
    ]

    services: list[object] = []

    def other_thread() -> None:
        alice.list_events(CAL, QUERY, sync_token=None, page_token=None)
        bob.list_events(CAL, QUERY, sync_token=None, page_token=None)
        services.extend([alice._service(), bob._service()])
        services.extend([alice._resource("events"), bob._resource("events")])

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    assert len(made) == 2  # one per thread, not one per account per thread
    assert services[0] is services[1] and services[0] is not transport.service(None)
    assert services[2] is services[3] and services[2] is not events
    assert api_headers(made[1]) == [("Bearer token-alice", "alice"), ("Bearer token-bob", "bob")]


def _text(body: str | bytes) -> str:
    return body.decode() if isinstance(body, bytes) else body


def test_a_revoked_account_does_not_poison_the_shared_transport() -> None:
    seq = HttpMockSequence(
        [
            err(401, "error_401_auth.json"),  # alice's token is refused ...
            err(400, "token_invalid_grant.json"),  # ... and her grant was revoked
            ok("events_page_1.json"),  # bob, on the same Http, right after
            err(401, "error_401_auth.json"),  # bob's token expired: he refreshes his own
            ok("token_response.json"),
            ok("events_page_1.json"),
        ]
    )
    transport = SharedTransport(lambda: seq)
    alice_creds = Credentials(
        token="token-alice",
        refresh_token="alice-refresh",
        token_uri=TOKEN_URI,
        client_id="client-id",
        client_secret="client-secret",
    )
    bob_creds = Credentials(
        token="token-bob",
        refresh_token="bob-refresh",
        token_uri=TOKEN_URI,
        client_id="client-id",
        client_secret="client-secret",
    )
    alice = GoogleCalendarSource(alice_creds, quota_user="alice", transport=transport)
    bob = GoogleCalendarSource(bob_creds, quota_user="bob", transport=transport)
    with pytest.raises(AuthError) as info:
        alice.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert info.value.reason == "invalid_grant"
    assert bob.list_events(CAL, QUERY, sync_token=None, page_token=None).items
    assert bob.list_events(CAL, QUERY, sync_token=None, page_token=None).items
    assert api_headers(seq) == [
        ("Bearer token-alice", "alice"),
        ("Bearer token-bob", "bob"),
        ("Bearer token-bob", "bob"),
        ("Bearer ya29.refreshed-access-token", "bob"),
    ]
    refreshes = [parse_qs(_text(r[2]))["refresh_token"] for r in token_calls(seq)]
    assert refreshes == [["alice-refresh"], ["bob-refresh"]]
    assert alice_creds.token == "token-alice" and bob_creds.token == "ya29.refreshed-access-token"


def test_the_last_source_to_close_closes_the_shared_connections() -> None:
    made: list[ClosableSequence] = []

    def factory() -> ClosableSequence:
        made.append(ClosableSequence([ok("events_page_1.json")] * 3))
        return made[-1]

    transport = SharedTransport(factory)
    alice = GoogleCalendarSource(Credentials(token="a"), transport=transport)
    bob = GoogleCalendarSource(Credentials(token="b"), transport=transport)
    carol = GoogleCalendarSource(Credentials(token="c"), transport=transport)
    alice.list_events(CAL, QUERY, sync_token=None, page_token=None)
    alice.close()
    alice.close()  # idempotent: releases the transport once
    bob.list_events(CAL, QUERY, sync_token=None, page_token=None)
    assert [m.closed for m in made] == [0]
    del carol  # garbage-collected without close: its share is released too
    bob.close()
    assert [m.closed for m in made] == [1]
    alice.list_events(CAL, QUERY, sync_token=None, page_token=None)  # reopens lazily
    assert [m.closed for m in made] == [1, 0]
    alice.close()
    assert [m.closed for m in made] == [1, 1]


def test_sources_share_one_process_wide_transport_per_timeout() -> None:
    a = GoogleCalendarSource(Credentials(token="a"), timeout=12.5)
    b = GoogleCalendarSource(Credentials(token="b"), timeout=12.5)
    c = GoogleCalendarSource(Credentials(token="c"), timeout=7.0)
    try:
        assert a.transport is b.transport is shared_transport(12.5)
        assert c.transport is shared_transport(7.0) is not a.transport
        assert a.transport.http().timeout == 12.5 and c.transport.http().timeout == 7.0
        assert a.transport.http() is b.transport.http()
    finally:
        for source in (a, b, c):
            source.close()


def test_http_factory_and_transport_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        GoogleCalendarSource(
            Credentials(token="a"), http_factory=lambda: None, transport=SharedTransport()
        )


# --- the same, on the wire: two emulator accounts on one thread -----------------------------

BOB = "bob@example.com"


class RecordingHttp(httplib2.Http):  # type: ignore[misc]
    """A real ``httplib2.Http`` that remembers the URI and headers of every request it sends."""

    def __init__(self) -> None:
        super().__init__(timeout=10)
        self.sent: list[tuple[str, dict[str, str]]] = []

    def request(self, uri: str, method: str = "GET", **kwargs: Any) -> Any:
        self.sent.append((uri, dict(kwargs.get("headers") or {})))
        return super().request(uri, method, **kwargs)


def two_accounts() -> dict[str, Any]:
    def user(email: str, event_id: str) -> dict[str, Any]:
        event = {
            "id": event_id,
            "summary": event_id,
            "start": {"dateTime": "2026-03-10T10:00:00Z"},
            "end": {"dateTime": "2026-03-10T11:00:00Z"},
        }
        calendar = {"id": email, "summary": email, "primary": True, "events": [event]}
        return {"email": email, "calendars": [calendar]}

    return {"users": [user(CAL, "alicesevent"), user(BOB, "bobsevent")]}


def emulator_credentials(server: EmulatorServer, email: str) -> Credentials:
    return Credentials(
        token=None,
        refresh_token=server.control.refresh_token(email),
        token_uri=server.token_uri,
        client_id="client-id",
        client_secret="client-secret",
    )


@pytest.mark.integration
def test_two_emulator_accounts_share_one_service_and_one_connection_with_their_own_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[object] = []

    def counting_build(*args: Any, **kwargs: Any) -> Any:
        builds.append(build(*args, **kwargs))
        return builds[-1]

    monkeypatch.setattr("connector.adapters.google_transport.build", counting_build)
    made: list[RecordingHttp] = []

    def factory() -> RecordingHttp:
        made.append(RecordingHttp())
        return made[-1]

    transport = SharedTransport(factory)
    with EmulatorServer(port=0, dataset=two_accounts(), seed=1) as server:
        alice_creds = emulator_credentials(server, CAL)
        bob_creds = emulator_credentials(server, BOB)
        alice, bob = (
            GoogleCalendarSource(
                creds, api_endpoint=server.api_endpoint, quota_user=email, transport=transport
            )
            for creds, email in ((alice_creds, CAL), (bob_creds, BOB))
        )
        try:
            query = ListQuery()
            alice_page = alice.list_events("primary", query, sync_token=None, page_token=None)
            bob_page = bob.list_events("primary", query, sync_token=None, page_token=None)
            assert [i["id"] for i in alice_page.items] == ["alicesevent"]
            assert [i["id"] for i in bob_page.items] == ["bobsevent"]
            assert [c.id for c in bob.list_calendars().items] == [BOB]
            assert alice.get_calendar("primary").id == CAL
            assert alice_creds.token and bob_creds.token and alice_creds.token != bob_creds.token

            # One account's grant is revoked: it fails alone, the shared connection stays good.
            server.control.revoke_user(CAL)
            with pytest.raises(AuthError):
                alice.list_events("primary", query, sync_token=None, page_token=None)
            again = bob.list_events("primary", query, sync_token=None, page_token=None)
            assert [i["id"] for i in again.items] == ["bobsevent"]

            assert len(made) == 1 and len(builds) == 1
            assert alice._service() is bob._service() is builds[0]
            assert list(made[0].connections) == [f"http:{server.host}:{server.port}"]
        finally:
            alice.close()
            bob.close()
        log = [(r["route"], r["user"], r["status"]) for r in server.control.requests()]

    assert made[0].connections == {}  # the last close closed the shared socket
    calls = [
        (query_of(uri)["quotaUser"][0], headers["authorization"])
        for uri, headers in made[0].sent
        if "/calendar/v3/" in uri
    ]
    alice_bearer, bob_bearer = f"Bearer {alice_creds.token}", f"Bearer {bob_creds.token}"
    assert calls == [
        (CAL, alice_bearer),
        (BOB, bob_bearer),
        (BOB, bob_bearer),
        (CAL, alice_bearer),
        (CAL, alice_bearer),  # revoked: 401, then the refresh fails with invalid_grant
        (BOB, bob_bearer),
    ]
    assert [entry for entry in log if entry[0] != "token"] == [
        ("events.list", CAL, 200),
        ("events.list", BOB, 200),
        ("calendarList.list", BOB, 200),
        ("calendarList.get", CAL, 200),
        ("events.list", None, 401),
        ("events.list", BOB, 200),
    ]
    assert [entry for entry in log if entry[0] == "token"] == [
        ("token", None, 200),
        ("token", None, 200),
        ("token", None, 400),
    ]


@pytest.mark.parametrize(
    "content",
    [
        b'{"items": [{"id": "a", "summary": "caf\\u00e9 \\u2603"}], "nextSyncToken": "t"}',
        '{"items": [{"id": "a", "summary": "caf\\u00e9"}]}',  # str as well as bytes
        b'{"id": "a", "summary": "lone \\ud800 surrogate"}',  # orjson refuses, json accepts
        b'{"id": "a", "sequence": 123456789012345678901234567890}',  # beyond 64 bits
        b'{"id": "a", "n": -9223372036854775809, "m": 18446744073709551616}',
        b'{"id": "a", "n": -9223372036854775808, "m": 18446744073709551615}',
        b'{"id": "a", "x": 1e400}',
        b'{"id": "a", "x": 1.5e300, "y": [true, false, null]}',
        b"not json",  # the stock model returns the text itself
    ],
)
def test_the_fast_json_model_decodes_like_the_stock_one(content: bytes | str) -> None:
    from googleapiclient.model import JsonModel

    from connector.adapters.google_transport import FastJsonModel

    fast = FastJsonModel().deserialize(content)
    stock = JsonModel().deserialize(content)
    assert fast == stock
    assert repr(fast) == repr(stock)  # the same types too: 1 and 1.0 are equal


def test_a_thread_can_release_its_own_transport_early() -> None:
    closed: list[object] = []

    class Closable:
        def close(self) -> None:
            closed.append(self)

    transport = SharedTransport(Closable)
    transport.acquire()
    mine: list[object] = []

    def short_lived() -> None:
        mine.append(transport.http())
        transport.release_thread()
        transport.release_thread()  # twice is harmless

    worker = threading.Thread(target=short_lived)
    worker.start()
    worker.join()
    kept = transport.http()  # this thread's, still open
    assert closed == mine and kept is not mine[0]
    transport.release()  # the last user: only what is still open is closed
    assert closed == [*mine, kept]
