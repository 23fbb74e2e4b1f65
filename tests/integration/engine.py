"""Support for end-to-end tests: the real broker, the emulator over HTTP, the real connector.

``RunningConnector`` runs the connector in-process (wiring.build + the service loop in a
thread), exactly as ``gcal-kafka run`` does minus signal handling. ``observed`` reads the events
topic with read_committed and decodes it; ``rebuilt`` applies the contract's rebuild rule;
``emulator_events`` is what Google (the emulator) says the calendar holds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from connector import wiring
from connector.config import Settings
from connector.consumer import ChangeRecord, InMemoryStore, apply
from connector.core.records import Op
from connector.emulator.server import EmulatorServer
from tests.kafka_helpers import read_topic


def event(event_id: str, summary: str, day: int = 1, hour: int = 9, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "summary": summary,
        "start": {"dateTime": f"2026-03-{day:02d}T{hour:02d}:00:00Z"},
        "end": {"dateTime": f"2026-03-{day:02d}T{hour + 1:02d}:00:00Z"},
        **extra,
    }


def dataset(
    calendars: dict[str, list[dict[str, Any]]], email: str = "alice@example.com"
) -> dict[str, Any]:
    return {
        "users": [
            {
                "email": email,
                "calendars": [
                    {
                        "id": cal_id,
                        "summary": cal_id,
                        "timeZone": "Europe/Berlin",
                        "primary": cal_id == email,
                        "accessRole": "owner",
                        "events": events,
                    }
                    for cal_id, events in calendars.items()
                ],
            }
        ]
    }


def credentials_file(tmp_path: Path, email: str = "alice@example.com") -> Path:
    path = tmp_path / f"creds-{email}.json"
    path.write_text(
        json.dumps(
            {
                "client_id": "test",
                "client_secret": "test-not-secret",
                "refresh_token": f"refresh-{email}",
            }
        )
    )
    return path


def settings_for(
    bootstrap: str,
    prefix: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    calendars: list[str] | str = ("primary",),  # type: ignore[assignment]
    email: str = "alice@example.com",
    **overrides: Any,
) -> Settings:
    sync = {"poll_interval_seconds": 0.3, **overrides.pop("sync", {})}
    data: dict[str, Any] = {
        "name": f"{prefix}connector",
        "kafka": {"bootstrap.servers": bootstrap},
        "topics": {"prefix": prefix, "partitions": 3},
        "google": {"api_endpoint": emulator.api_endpoint, "token_uri": emulator.token_uri},
        "sync": sync,
        "workers": 4,
        "accounts": [
            {
                "name": email.split("@", maxsplit=1)[0],
                "credentials": {
                    "kind": "authorized_user",
                    "path": str(credentials_file(tmp_path, email)),
                },
                "calendars": calendars if isinstance(calendars, str) else list(calendars),
            }
        ],
        "metrics": {"enabled": False},
        **overrides,
    }
    return Settings(**data)


_CLIENTS: list[Any] = []


def close_clients() -> None:
    """Close the Google clients tests made (their keep-alive sockets)."""
    while _CLIENTS:
        _CLIENTS.pop().close()


def google(emulator: EmulatorServer, email: str = "alice@example.com") -> Any:
    """A Calendar API client on the emulator; closed by ``close_clients`` after the test."""
    creds = Credentials(
        None,
        refresh_token=f"refresh-{email}",
        client_id="test",
        client_secret="test-not-secret",
        token_uri=emulator.token_uri,
    )
    service = build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": emulator.api_endpoint},
    )
    _CLIENTS.append(service)
    return service


def emulator_events(
    emulator: EmulatorServer, calendar_id: str, email: str = "alice@example.com"
) -> dict[str, dict[str, Any]]:
    """What a fresh full sync sees: live events, masters and exceptions (cancelled included)."""
    found: dict[str, dict[str, Any]] = {}
    with google(emulator, email) as api:
        request = api.events().list(calendarId=calendar_id, maxResults=2500)
        while request is not None:
            page = request.execute()
            for item in page.get("items", []):
                found[item["id"]] = item
            request = api.events().list_next(request, page)
    return found


def after(records: list[ChangeRecord], seen: list[ChangeRecord]) -> list[ChangeRecord]:
    """Records published after ``seen`` was read (by offset: compaction may drop old ones)."""
    last = {r.partition: r.offset for r in seen}
    return [r for r in records if r.offset > last.get(r.partition, -1)]


class RunningConnector:
    def __init__(self, settings: Settings) -> None:
        self.connector = wiring.build(settings)
        self.service = self.connector.service
        self._thread = threading.Thread(
            target=self.service.run, kwargs={"poll": self.connector.tick}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.service.stop()
        self._thread.join(60)
        self.connector.close()

    def __enter__(self) -> RunningConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def observed(settings: Settings) -> list[ChangeRecord]:
    """The events topic as a read_committed consumer sees it (empty before it exists)."""
    codec = wiring.codec_for(settings)
    topic = wiring.topic_names(settings).events
    bootstrap = str(settings.kafka["bootstrap.servers"])
    try:
        messages = read_topic(bootstrap, topic)
    except AssertionError as exc:
        if "UNKNOWN_TOPIC" in str(exc):
            return []
        raise
    out = []
    for msg in messages:
        calendar_id, event_id = codec.decode_key(msg.key())
        value = msg.value()
        change = None if value is None else codec.decode_change(value)
        out.append(
            ChangeRecord(topic, msg.partition(), msg.offset(), calendar_id, event_id, change)
        )
    return sorted(out, key=lambda r: (r.partition, r.offset))


def ops(records: list[ChangeRecord]) -> list[tuple[str, str | None, int]]:
    """(op, event id, generation) per record; tombstones as ("TOMBSTONE", id, -1)."""
    result = []
    for r in records:
        if r.change is None:
            result.append(("TOMBSTONE", r.event_id, -1))
        else:
            result.append((r.change.op.value, r.event_id, r.change.generation))
    return result


def rebuilt(records: list[ChangeRecord]) -> InMemoryStore:
    store = InMemoryStore()
    for record in records:
        apply(store, record)
    return store


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")


def resets_done(settings: Settings, count: int) -> Callable[[], bool]:
    def check() -> bool:
        return (
            sum(
                1
                for r in observed(settings)
                if r.change is not None and r.change.op is Op.RESET_END
            )
            >= count
        )

    return check


def in_sync(
    settings: Settings, emulator: EmulatorServer, calendar_id: str, email: str = "alice@example.com"
) -> Callable[[], bool]:
    """True when the rebuilt copy equals the emulator's calendar, field for field."""

    def check() -> bool:
        return rebuilt(observed(settings)).live(calendar_id) == emulator_events(
            emulator, calendar_id, email
        )

    return check
