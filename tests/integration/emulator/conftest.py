"""Fixtures: an in-process emulator per test and google-api-python-client services bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from connector.emulator.clock import Clock
from connector.emulator.server import EmulatorServer

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "alice@example.com"
BOB = "bob@example.com"


def small_dataset() -> dict[str, Any]:
    return {
        "users": [
            {
                "email": ALICE,
                "calendars": [
                    {"id": ALICE, "summary": "Alice", "timeZone": "Europe/Berlin", "primary": True},
                    {
                        "id": "team#ops@group.calendar.google.com",
                        "summary": "Team",
                        "timeZone": "UTC",
                        "accessRole": "owner",
                    },
                ],
            },
            {
                "email": BOB,
                "refreshToken": "bob-refresh",
                "calendars": [
                    {"id": BOB, "summary": "Bob", "timeZone": "UTC", "primary": True},
                    {"id": "team#ops@group.calendar.google.com", "accessRole": "reader"},
                ],
            },
        ]
    }


_OPEN: list[Any] = []


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """A fresh emulator with two users and a shared calendar, on a frozen clock at T0."""
    server = EmulatorServer(dataset=small_dataset(), clock=Clock(frozen=T0), seed=1)
    server.start()
    try:
        yield server
    finally:
        while _OPEN:
            _OPEN.pop().close()  # httplib2 keeps sockets open; unclosed ones warn
        server.stop()


def build_service(server: EmulatorServer, creds: Any) -> Any:
    svc = build(
        "calendar",
        "v3",
        credentials=creds,
        client_options={"api_endpoint": server.api_endpoint},
        static_discovery=True,
    )
    _OPEN.append(svc)
    return svc


def service_for(server: EmulatorServer, email: str = ALICE) -> Any:
    creds = Credentials(
        token=None,
        refresh_token=server.control.refresh_token(email),
        token_uri=server.token_uri,
        client_id="client-id",
        client_secret="client-secret",
    )
    return build_service(server, creds)


@pytest.fixture
def service(emulator: EmulatorServer) -> Any:
    return service_for(emulator)


@pytest.fixture
def make_service(emulator: EmulatorServer) -> Callable[[str], Any]:
    return lambda email: service_for(emulator, email)


def list_all(svc: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], str | None, int]:
    """Page to the end: (items, nextSyncToken, pages)."""
    items: list[dict[str, Any]] = []
    req = svc.events().list(**kwargs)
    pages, last = 0, {}
    while req is not None:
        last = req.execute()
        pages += 1
        items.extend(last.get("items", []))
        req = svc.events().list_next(req, last)
    return items, last.get("nextSyncToken"), pages


def event(summary: str, start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


@pytest.fixture
def sample_emulator() -> Iterator[EmulatorServer]:
    """A fresh emulator seeded with sample.sample_dataset (real clock)."""
    from connector.emulator import sample

    clock = Clock()
    server = EmulatorServer(dataset=sample.sample_dataset(clock.now()), clock=clock, seed=1)
    server.start()
    try:
        yield server
    finally:
        while _OPEN:
            _OPEN.pop().close()
        server.stop()
