"""events.list paging and sync semantics (reference sections 1 to 3)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from googleapiclient.errors import HttpError

from connector.emulator.server import EmulatorServer
from tests.integration.emulator.conftest import ALICE, event, list_all

pytestmark = pytest.mark.integration


def _reason(exc: HttpError) -> tuple[int, dict[str, Any]]:
    return exc.resp.status, json.loads(exc.content)["error"]["errors"][0]


def _seed_events(emulator: EmulatorServer, n: int) -> None:
    events = [
        event(
            f"e{i}",
            f"2026-03-{1 + i % 28:02d}T10:00:00Z",
            f"2026-03-{1 + i % 28:02d}T11:00:00Z",
            id=f"evt{i:05d}",
        )
        for i in range(n)
    ]
    emulator.control.seed(
        {
            "users": [
                {
                    "email": ALICE,
                    "calendars": [
                        {
                            "id": ALICE,
                            "summary": "A",
                            "timeZone": "UTC",
                            "primary": True,
                            "events": events,
                        }
                    ],
                }
            ]
        }
    )


def test_paging_sync_token_only_on_last_page(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 7)
    first = service.events().list(calendarId="primary", maxResults=3).execute()
    assert len(first["items"]) == 3 and "nextPageToken" in first and "nextSyncToken" not in first
    items, token, pages = list_all(service, calendarId="primary", maxResults=3)
    assert pages == 3 and token and len({i["id"] for i in items}) == 7
    assert first["kind"] == "calendar#events" and first["timeZone"] == "UTC"


def test_default_page_size_250(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 260)
    first = service.events().list(calendarId="primary").execute()
    assert len(first["items"]) == 250 and "nextPageToken" in first


def test_incremental_sync_returns_changes_and_minimal_tombstones(
    emulator: EmulatorServer, service: Any
) -> None:
    _seed_events(emulator, 5)
    _, token, _ = list_all(service, calendarId="primary")
    service.events().patch(
        calendarId="primary", eventId="evt00001", body={"summary": "x"}
    ).execute()
    service.events().delete(calendarId="primary", eventId="evt00002").execute()
    new = (
        service.events()
        .insert(
            calendarId="primary", body=event("n", "2026-03-09T10:00:00Z", "2026-03-09T11:00:00Z")
        )
        .execute()
    )
    items, token2, _ = list_all(service, calendarId="primary", syncToken=token)
    by_id = {i["id"]: i for i in items}
    assert set(by_id) == {"evt00001", "evt00002", new["id"]}
    assert set(by_id["evt00002"]) <= {"kind", "etag", "id", "status", "updated"}
    assert by_id["evt00002"]["status"] == "cancelled"
    again, _, _ = list_all(service, calendarId="primary", syncToken=token2)
    assert again == []
    full, _, _ = list_all(service, calendarId="primary", syncToken=token, showDeleted=True)
    assert {i["id"]: i for i in full}["evt00002"].get("summary") == "e2"  # organizer sees details


def test_changes_during_paging_are_not_missed(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 6)
    first = service.events().list(calendarId="primary", maxResults=2).execute()
    service.events().patch(
        calendarId="primary", eventId=first["items"][0]["id"], body={"summary": "changed"}
    ).execute()
    req = service.events().list_next(
        service.events().list(calendarId="primary", maxResults=2), first
    )
    last = {}
    while req is not None:
        last = req.execute()
        req = service.events().list_next(req, last)
    items, _, _ = list_all(service, calendarId="primary", syncToken=last["nextSyncToken"])
    assert [i["summary"] for i in items] == ["changed"]


@pytest.mark.parametrize(
    "extra",
    [
        {"q": "x"},
        {"timeMin": "2026-01-01T00:00:00Z"},
        {"orderBy": "updated"},
        {"iCalUID": "a@google.com"},
        {"showDeleted": False},
        {"updatedMin": "2026-03-01T00:00:00Z"},
    ],
)
def test_sync_token_restrictions_400(
    emulator: EmulatorServer, service: Any, extra: dict[str, Any]
) -> None:
    _, token, _ = list_all(service, calendarId="primary")
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary", syncToken=token, **extra).execute()
    status, err = _reason(exc.value)
    assert status == 400
    assert err == {
        "domain": "calendar",
        "reason": "syncTokenWithRequestRestrictions",
        "message": "Sync token cannot be used with other request restrictions.",
    }


FULL_SYNC = {
    "error": {
        "errors": [
            {
                "domain": "calendar",
                "reason": "fullSyncRequired",
                "message": "Sync token is no longer valid, a full sync is required.",
                "locationType": "parameter",
                "location": "syncToken",
            }
        ],
        "code": 410,
        "message": "Sync token is no longer valid, a full sync is required.",
    }
}


def test_invalidated_token_410(emulator: EmulatorServer, service: Any) -> None:
    _, token, _ = list_all(service, calendarId="primary")
    emulator.control.invalidate_tokens(ALICE)
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert exc.value.resp.status == 410 and json.loads(exc.value.content) == FULL_SYNC


def test_parameter_mismatch_and_garbled_token_410(emulator: EmulatorServer, service: Any) -> None:
    _, token, _ = list_all(service, calendarId="primary")
    for kwargs in ({"singleEvents": True, "syncToken": token}, {"syncToken": token[:-3] + "abc"}):
        with pytest.raises(HttpError) as exc:
            service.events().list(calendarId="primary", **kwargs).execute()
        assert exc.value.resp.status == 410


def test_old_token_and_purged_tombstones_410(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 2)
    _, token, _ = list_all(service, calendarId="primary")
    service.events().delete(calendarId="primary", eventId="evt00000").execute()
    emulator.control.configure(tombstone_horizon=3600)
    emulator.control.advance_clock(7200)
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert exc.value.resp.status == 410
    full, _, _ = list_all(service, calendarId="primary", showDeleted=True)
    assert [i["id"] for i in full] == ["evt00001"]  # the tombstone is gone


def test_bad_page_token_400(service: Any) -> None:
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary", pageToken="garbage").execute()
    status, err = _reason(exc.value)
    assert status == 400 and err == {
        "domain": "global",
        "reason": "invalid",
        "message": "Invalid page token value.",
        "locationType": "parameter",
        "location": "pageToken",
    }


def test_empty_non_final_pages(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 3)
    emulator.control.configure(empty_pages=1)
    items, token, pages = list_all(service, calendarId="primary", maxResults=2)
    assert len(items) == 3 and token and pages == 4


def test_time_window_and_order_errors(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 5)  # events on March 1..5, 10:00-11:00Z
    items, _, _ = list_all(
        service,
        calendarId="primary",
        timeMin="2026-03-02T11:00:00Z",
        timeMax="2026-03-04T10:00:00Z",
    )
    assert [i["id"] for i in items] == ["evt00002"]  # both bounds exclusive
    with pytest.raises(HttpError) as empty:
        service.events().list(
            calendarId="primary", timeMin="2026-03-04T00:00:00Z", timeMax="2026-03-04T00:00:00Z"
        ).execute()
    assert _reason(empty.value)[1]["reason"] == "timeRangeEmpty"
    with pytest.raises(HttpError) as naive:
        service.events().list(calendarId="primary", timeMin="2026-03-04T00:00:00").execute()
    assert naive.value.resp.status == 400
    with pytest.raises(HttpError) as order:
        service.events().list(calendarId="primary", orderBy="startTime").execute()
    assert _reason(order.value) == (
        400,
        {
            "domain": "global",
            "reason": "invalid",
            "message": "The requested ordering is not available for the particular query.",
            "locationType": "parameter",
            "location": "orderBy",
        },
    )


def test_filters_q_ical_event_types_time_zone_max_attendees(
    emulator: EmulatorServer, service: Any
) -> None:
    service.events().insert(
        calendarId="primary",
        body=event(
            "Lunch with Bob",
            "2026-03-03T12:00:00Z",
            "2026-03-03T13:00:00Z",
            attendees=[{"email": "bob@example.com"}, {"email": ALICE}, {"email": "c@x.org"}],
        ),
    ).execute()
    focus = (
        service.events()
        .insert(
            calendarId="primary",
            body=event(
                "Focus", "2026-03-03T14:00:00Z", "2026-03-03T15:00:00Z", eventType="focusTime"
            ),
        )
        .execute()
    )
    assert [i["summary"] for i in list_all(service, calendarId="primary", q="lunch")[0]] == [
        "Lunch with Bob"
    ]
    assert [
        i["id"] for i in list_all(service, calendarId="primary", iCalUID=focus["iCalUID"])[0]
    ] == [focus["id"]]
    assert [
        i["summary"] for i in list_all(service, calendarId="primary", eventTypes=["focusTime"])[0]
    ] == ["Focus"]
    rendered = list_all(
        service, calendarId="primary", q="lunch", timeZone="Asia/Tokyo", maxAttendees=1
    )[0][0]
    assert rendered["start"]["dateTime"] == "2026-03-03T21:00:00+09:00"
    assert rendered["attendeesOmitted"] is True
    assert rendered["attendees"] == [{"email": ALICE, "self": True}]


def test_order_by_updated_and_updated_min(emulator: EmulatorServer, service: Any) -> None:
    _seed_events(emulator, 3)
    emulator.control.advance_clock(60)
    service.events().patch(
        calendarId="primary", eventId="evt00000", body={"summary": "z"}
    ).execute()
    ordered = list_all(service, calendarId="primary", orderBy="updated")[0]
    assert ordered[-1]["id"] == "evt00000"
    recent, token, _ = list_all(service, calendarId="primary", updatedMin="2026-03-02T09:00:30Z")
    assert [i["id"] for i in recent] == ["evt00000"] and token
    with pytest.raises(HttpError) as old:
        service.events().list(calendarId="primary", updatedMin="2026-01-01T00:00:00Z").execute()
    assert _reason(old.value)[0] == 410
    assert _reason(old.value)[1]["reason"] == "updatedMinTooLongAgo"
