"""Page through 100,000 events in one calendar with google-api-python-client (maxResults=2500).

Prints events/s and pages/s, and how the time splits between the seed, the server and the client.
Run: ``python benchmarks/emulator_paging.py [--events N]``.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from connector.emulator.clock import Clock
from connector.emulator.server import EmulatorServer

EMAIL = "bench@example.com"


def dataset(n: int, now: datetime) -> dict[str, Any]:
    events = []
    for i in range(n):
        start = now + timedelta(minutes=30 * i)
        events.append(
            {
                "id": f"bench{i:08d}",
                "summary": f"Event {i}",
                "description": "benchmark event",
                "location": "Room 1",
                "start": {"dateTime": start.isoformat()},
                "end": {"dateTime": (start + timedelta(minutes=25)).isoformat()},
                "attendees": [
                    {"email": EMAIL, "responseStatus": "accepted"},
                    {"email": "guest@example.com", "responseStatus": "needsAction"},
                ],
            }
        )
    return {
        "users": [
            {
                "email": EMAIL,
                "calendars": [
                    {
                        "id": EMAIL,
                        "summary": "Bench",
                        "timeZone": "UTC",
                        "primary": True,
                        "events": events,
                    }
                ],
            }
        ]
    }


def _server_side(server: EmulatorServer, page_size: int) -> float:
    """The same paging through Emulator.handle directly: the emulator's share of the time."""
    import json
    from urllib.parse import quote

    emu = server.emulator
    token = json.loads(
        emu.handle(
            "POST",
            "/token",
            {},
            (
                f"grant_type=refresh_token&refresh_token={server.control.refresh_token(EMAIL)}"
            ).encode(),
        ).body
    )["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    t0 = time.perf_counter()
    page_token = None
    while True:
        target = f"/calendar/v3/calendars/primary/events?maxResults={page_size}"
        if page_token:
            target += f"&pageToken={quote(page_token)}"
        body = json.loads(emu.handle("GET", target, headers, b"").body)
        page_token = body.get("nextPageToken")
        if not page_token:
            return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=2500)
    args = parser.parse_args()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    server = EmulatorServer(clock=Clock(frozen=now)).start()
    try:
        t0 = time.perf_counter()
        server.control.seed(dataset(args.events, now))
        seeded = time.perf_counter() - t0
        creds = Credentials(
            token=None,
            refresh_token=server.control.refresh_token(EMAIL),
            token_uri=server.token_uri,
            client_id="c",
            client_secret="s",
        )
        svc = build(
            "calendar",
            "v3",
            credentials=creds,
            client_options={"api_endpoint": server.api_endpoint},
            static_discovery=True,
        )
        count = pages = 0
        t1 = time.perf_counter()
        req = svc.events().list(calendarId="primary", maxResults=args.page_size)
        resp: dict[str, Any] = {}
        while req is not None:
            resp = req.execute()
            pages += 1
            count += len(resp.get("items", []))
            req = svc.events().list_next(req, resp)
        elapsed = time.perf_counter() - t1
        server_ms = [r for r in server.control.requests() if r["route"] == "events.list"]
        svc.close()
        server_only = _server_side(server, args.page_size)
        assert count == args.events and "nextSyncToken" in resp
        print(f"seeded {args.events} events in {seeded:.1f} s")
        print(
            f"paged {count} events in {pages} pages ({len(server_ms)} list requests) "
            f"in {elapsed:.2f} s"
        )
        print(f"{count / elapsed:,.0f} events/s, {pages / elapsed:.1f} pages/s")
        print(
            f"the same paging in-process (Emulator.handle + json.loads, no HTTP, no Google "
            f"client): {server_only:.2f} s"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
