"""calendarList and calendars: listing rules, own sync token, insert/delete of calendars."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError

from connector.emulator.server import EmulatorServer
from tests.integration.emulator.conftest import ALICE, BOB, event

pytestmark = pytest.mark.integration
TEAM = "team#ops@group.calendar.google.com"


def _all_entries(svc: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], str | None]:
    items: list[dict[str, Any]] = []
    req, last = svc.calendarList().list(**kwargs), {}
    while req is not None:
        last = req.execute()
        items.extend(last.get("items", []))
        req = svc.calendarList().list_next(req, last)
    return items, last.get("nextSyncToken")


def test_calendar_list_fields_and_min_access_role(make_service: Any) -> None:
    bob = make_service(BOB)
    items, token = _all_entries(bob)
    by_id = {i["id"]: i for i in items}
    assert by_id[BOB]["primary"] is True and by_id[BOB]["accessRole"] == "owner"
    assert by_id[TEAM]["accessRole"] == "reader" and "primary" not in by_id[TEAM]
    assert token
    owned, _ = _all_entries(bob, minAccessRole="owner")
    assert [i["id"] for i in owned] == [BOB]
    assert bob.calendarList().get(calendarId=TEAM).execute()["summary"] == "Team"


def test_calendar_list_paging_and_sync(emulator: EmulatorServer, service: Any) -> None:
    first = service.calendarList().list(maxResults=1).execute()
    assert len(first["items"]) == 1 and "nextPageToken" in first
    _, token = _all_entries(service)
    created = service.calendars().insert(body={"summary": "Side", "timeZone": "UTC"}).execute()
    assert created["id"].endswith("@group.calendar.google.com")
    changes, token2 = _all_entries(service, syncToken=token)
    assert [c["id"] for c in changes] == [created["id"]]
    assert changes[0]["accessRole"] == "owner"
    service.calendars().delete(calendarId=created["id"]).execute()
    deleted, _ = _all_entries(service, syncToken=token2)
    assert deleted == [
        {
            "kind": "calendar#calendarListEntry",
            "etag": deleted[0]["etag"],
            "id": created["id"],
            "deleted": True,
        }
    ]
    with pytest.raises(HttpError) as gone:
        service.events().list(calendarId=created["id"]).execute()
    assert gone.value.resp.status == 404
    with pytest.raises(HttpError) as restricted:
        service.calendarList().list(syncToken=token2, minAccessRole="reader").execute()
    assert restricted.value.resp.status == 400


def test_hidden_entries_need_show_hidden(emulator: EmulatorServer, service: Any) -> None:
    emulator.control.seed(
        {
            "users": [
                {
                    "email": ALICE,
                    "calendars": [
                        {"id": ALICE, "primary": True},
                        {
                            "id": "h@group.calendar.google.com",
                            "hidden": True,
                            "accessRole": "reader",
                        },
                    ],
                }
            ]
        }
    )
    assert [i["id"] for i in _all_entries(service)[0]] == [ALICE]
    shown = _all_entries(service, showHidden=True)[0]
    assert {i["id"]: i.get("hidden") for i in shown} == {
        ALICE: None,
        "h@group.calendar.google.com": True,
    }


def test_primary_cannot_be_deleted_and_ids_with_hash(service: Any) -> None:
    with pytest.raises(HttpError) as exc:
        service.calendars().delete(calendarId="primary").execute()
    assert exc.value.resp.status == 400
    service.events().insert(
        calendarId=TEAM, body=event("T", "2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z")
    ).execute()
    assert len(service.events().list(calendarId=TEAM).execute()["items"]) == 1
    assert service.calendars().get(calendarId=TEAM).execute()["id"] == TEAM
