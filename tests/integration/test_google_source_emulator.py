"""GoogleCalendarSource end to end against the emulator over HTTP on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from connector.adapters.google_source import GoogleCalendarSource, RequestRecord
from connector.core.calendar_source import EventsPage, ListQuery
from connector.emulator.clock import Clock
from connector.emulator.server import EmulatorServer
from connector.errors import (
    AuthError,
    CalendarGoneError,
    FullSyncRequired,
    QuotaExceededError,
    RetriableError,
)

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "alice@example.com"
FORBIDDEN_WITH_SYNC_TOKEN = {"timeMin", "timeMax", "updatedMin", "orderBy", "q", "showDeleted"}


def event(n: int) -> dict[str, Any]:
    return {
        "id": f"evt{n:05d}",
        "summary": f"Event {n}",
        "start": {"dateTime": f"2026-03-{10 + n:02d}T10:00:00Z"},
        "end": {"dateTime": f"2026-03-{10 + n:02d}T11:00:00Z"},
    }


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    dataset = {
        "users": [
            {
                "email": ALICE,
                "calendars": [
                    {
                        "id": ALICE,
                        "summary": "Alice",
                        "timeZone": "Europe/Berlin",
                        "primary": True,
                        "events": [event(n) for n in range(5)],
                    }
                ],
            }
        ]
    }
    server = EmulatorServer(dataset=dataset, clock=Clock(frozen=T0), seed=1).start()
    try:
        yield server
    finally:
        server.stop()


def credentials(server: EmulatorServer) -> Credentials:
    return Credentials(
        token=None,
        refresh_token=server.control.refresh_token(ALICE),
        token_uri=server.token_uri,
        client_id="client-id",
        client_secret="client-secret",
    )


@pytest.fixture
def records() -> list[RequestRecord]:
    return []


@pytest.fixture
def source(
    emulator: EmulatorServer, records: list[RequestRecord]
) -> Iterator[GoogleCalendarSource]:
    src = GoogleCalendarSource(
        credentials(emulator), api_endpoint=emulator.api_endpoint, on_request=records.append
    )
    try:
        yield src
    finally:
        src.close()


def full_pass(
    source: GoogleCalendarSource, query: ListQuery, sync_token: str | None = None
) -> tuple[list[EventsPage], str]:
    pages: list[EventsPage] = []
    page_token: str | None = None
    while True:
        page = source.list_events(ALICE, query, sync_token=sync_token, page_token=page_token)
        pages.append(page)
        if page.next_page_token is None:
            assert page.next_sync_token is not None
            return pages, page.next_sync_token
        assert page.next_sync_token is None
        page_token = page.next_page_token


def list_queries(server: EmulatorServer) -> list[dict[str, list[str]]]:
    """The query parameters of every events.list the emulator received."""
    return [
        parse_qs(str(r["query"]))
        for r in server.control.requests()
        if r.get("route") == "events.list"
    ]


def test_full_pass_pages_to_a_sync_token_then_incremental_sees_an_insert(
    emulator: EmulatorServer, source: GoogleCalendarSource, records: list[RequestRecord]
) -> None:
    query = ListQuery(time_min="2026-01-01T00:00:00Z", max_results=2)
    pages, token = full_pass(source, query)
    assert sorted(i["id"] for p in pages for i in p.items) == [f"evt{n:05d}" for n in range(5)]
    assert len(pages) >= 3 and pages[-1].time_zone == "Europe/Berlin"

    writer = build(
        "calendar",
        "v3",
        credentials=credentials(emulator),
        client_options={"api_endpoint": emulator.api_endpoint},
        static_discovery=True,
    )
    try:
        writer.events().insert(calendarId=ALICE, body=event(9)).execute()
    finally:
        writer.close()

    incremental, _ = full_pass(source, query, sync_token=token)
    assert [i["id"] for p in incremental for i in p.items] == ["evt00009"]
    sent = list_queries(emulator)
    assert any("timeMin" in q for q in sent)
    with_token = [q for q in sent if "syncToken" in q]
    assert with_token and all(not FORBIDDEN_WITH_SYNC_TOKEN & q.keys() for q in with_token)
    assert {r.method for r in records} == {"calendar.events.list"}
    assert all(r.status == 200 for r in records)


def test_invalidated_sync_token_raises_full_sync_required(
    emulator: EmulatorServer, source: GoogleCalendarSource
) -> None:
    _, token = full_pass(source, ListQuery())
    emulator.control.invalidate_tokens(ALICE)
    with pytest.raises(FullSyncRequired):
        source.list_events(ALICE, ListQuery(), sync_token=token, page_token=None)


def test_primary_resolves_to_the_real_calendar_id(source: GoogleCalendarSource) -> None:
    info = source.get_calendar("primary")
    assert (info.id, info.primary, info.access_role) == (ALICE, True, "owner")
    page = source.list_calendars()
    assert [c.id for c in page.items] == [ALICE] and page.next_sync_token


def test_unknown_calendar_is_gone(source: GoogleCalendarSource) -> None:
    with pytest.raises(CalendarGoneError):
        source.list_events("nobody@example.com", ListQuery(), sync_token=None, page_token=None)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("userRateLimitExceeded", RetriableError),
        ("429", RetriableError),
        ("quotaExceeded", QuotaExceededError),
        ("503", RetriableError),
    ],
)
def test_injected_faults_map_to_the_error_tree(
    emulator: EmulatorServer,
    source: GoogleCalendarSource,
    fault: str,
    expected: type[Exception],
) -> None:
    emulator.control.set_faults({"faults": [{"route": "events.list", "error": fault, "count": 1}]})
    with pytest.raises(expected) as info:
        source.list_events(ALICE, ListQuery(), sync_token=None, page_token=None)
    assert type(info.value) is expected
    page = source.list_events(ALICE, ListQuery(), sync_token=None, page_token=None)
    assert page.items  # the fault was one-shot and the source did not retry on its own


def test_revoked_credentials_are_an_auth_error(
    emulator: EmulatorServer, source: GoogleCalendarSource
) -> None:
    source.list_events(ALICE, ListQuery(), sync_token=None, page_token=None)
    emulator.control.revoke_user(ALICE)
    with pytest.raises(AuthError):
        source.list_events(ALICE, ListQuery(), sync_token=None, page_token=None)
