"""Event CRUD through google-api-python-client against the emulator."""

from __future__ import annotations

import re
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from tests.integration.emulator.conftest import event

pytestmark = pytest.mark.integration


def _error(exc: HttpError) -> dict[str, Any]:
    import json

    body: dict[str, Any] = json.loads(exc.content)
    return body


def test_insert_get_server_fields(service: Any) -> None:
    created = (
        service.events()
        .insert(
            calendarId="primary",
            body=event(
                "Standup",
                "2026-03-03T09:00:00+01:00",
                "2026-03-03T09:15:00+01:00",
                attendees=[{"email": "bob@example.com"}],
            ),
        )
        .execute()
    )
    assert re.fullmatch(r"[a-v0-9]{26}", created["id"])
    assert created["iCalUID"] == f"{created['id']}@google.com"
    assert created["status"] == "confirmed" and created["sequence"] == 0
    assert created["created"] == created["updated"] == "2026-03-02T09:00:00.000Z"
    assert created["organizer"]["email"] == "alice@example.com"
    assert created["creator"]["email"] == "alice@example.com"
    assert created["attendees"][0]["email"] == "bob@example.com"
    got = service.events().get(calendarId="primary", eventId=created["id"]).execute()
    assert got["etag"] == created["etag"] and got["summary"] == "Standup"


def test_client_ids_validated_and_unique(service: Any) -> None:
    body = event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z", id="abcdef123")
    service.events().insert(calendarId="primary", body=body).execute()
    with pytest.raises(HttpError) as dup:
        service.events().insert(calendarId="primary", body=body).execute()
    assert dup.value.resp.status == 409
    assert _error(dup.value)["error"]["errors"][0]["reason"] == "duplicate"
    with pytest.raises(HttpError) as bad:
        service.events().insert(calendarId="primary", body=body | {"id": "NOT-valid"}).execute()
    assert bad.value.resp.status == 400
    service.events().delete(calendarId="primary", eventId="abcdef123").execute()
    with pytest.raises(HttpError) as again:  # a tombstone still holds the id
        service.events().insert(calendarId="primary", body=body).execute()
    assert again.value.resp.status == 409


def test_update_patch_sequence_and_etag(emulator: Any, service: Any) -> None:
    created = (
        service.events()
        .insert(
            calendarId="primary", body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
        )
        .execute()
    )
    emulator.control.advance_clock(60)
    patched = (
        service.events()
        .patch(calendarId="primary", eventId=created["id"], body={"summary": "B"})
        .execute()
    )
    assert patched["summary"] == "B" and patched["sequence"] == 0
    assert patched["updated"] == "2026-03-02T09:01:00.000Z" and patched["etag"] != created["etag"]
    moved = (
        service.events()
        .update(
            calendarId="primary",
            eventId=created["id"],
            body=event("B", "2026-03-03T11:00:00Z", "2026-03-03T12:00:00Z"),
        )
        .execute()
    )
    assert moved["sequence"] == 1 and moved["created"] == created["created"]
    with pytest.raises(HttpError) as stale:
        req = service.events().patch(
            calendarId="primary", eventId=created["id"], body={"summary": "C"}
        )
        req.headers["If-Match"] = created["etag"]
        req.execute()
    assert stale.value.resp.status == 412
    assert _error(stale.value)["error"]["errors"][0]["reason"] == "conditionNotMet"


def test_reminder_only_change_keeps_updated(emulator: Any, service: Any) -> None:
    created = (
        service.events()
        .insert(
            calendarId="primary", body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
        )
        .execute()
    )
    emulator.control.advance_clock(60)
    changed = (
        service.events()
        .patch(
            calendarId="primary",
            eventId=created["id"],
            body={
                "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 5}]}
            },
        )
        .execute()
    )
    assert changed["updated"] == created["updated"]
    assert changed["etag"] != created["etag"]


def test_delete_then_get_and_delete_again(service: Any) -> None:
    created = (
        service.events()
        .insert(
            calendarId="primary", body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
        )
        .execute()
    )
    assert service.events().delete(calendarId="primary", eventId=created["id"]).execute() == ""
    tomb = service.events().get(calendarId="primary", eventId=created["id"]).execute()
    assert tomb["status"] == "cancelled"
    with pytest.raises(HttpError) as gone:
        service.events().delete(calendarId="primary", eventId=created["id"]).execute()
    assert gone.value.resp.status == 410
    assert _error(gone.value)["error"]["errors"][0]["reason"] == "deleted"


def test_unknown_event_and_calendar_404(service: Any) -> None:
    for call in (
        service.events().get(calendarId="primary", eventId="nosuchevent"),
        service.events().list(calendarId="nobody@example.com"),
    ):
        with pytest.raises(HttpError) as missing:
            call.execute()
        assert missing.value.resp.status == 404
        assert _error(missing.value) == {
            "error": {
                "errors": [{"domain": "global", "reason": "notFound", "message": "Not Found"}],
                "code": 404,
                "message": "Not Found",
            }
        }


def test_reader_cannot_write(make_service: Any) -> None:
    bob = make_service("bob@example.com")
    with pytest.raises(HttpError) as denied:
        bob.events().insert(
            calendarId="team#ops@group.calendar.google.com",
            body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"),
        ).execute()
    assert denied.value.resp.status == 403


def test_if_none_match_304(service: Any) -> None:
    created = (
        service.events()
        .insert(
            calendarId="primary", body=event("A", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
        )
        .execute()
    )
    req = service.events().get(calendarId="primary", eventId=created["id"])
    req.headers["If-None-Match"] = created["etag"]
    with pytest.raises(HttpError) as not_modified:
        req.execute()
    assert not_modified.value.resp.status == 304
