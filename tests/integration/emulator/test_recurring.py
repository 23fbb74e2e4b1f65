"""Recurring series: expansion, instances, exceptions, series edits and deletes."""

from __future__ import annotations

from typing import Any

import pytest
from googleapiclient.errors import HttpError

from connector.emulator.server import EmulatorServer
from tests.integration.emulator.conftest import ALICE, list_all

pytestmark = pytest.mark.integration
WEEKLY = {
    "id": "series01",
    "summary": "Weekly",
    "start": {"dateTime": "2026-03-02T10:00:00+01:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2026-03-02T11:00:00+01:00", "timeZone": "Europe/Berlin"},
    "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=5"],
}


@pytest.fixture
def series(emulator: EmulatorServer, service: Any) -> dict[str, Any]:
    created: dict[str, Any] = service.events().insert(calendarId="primary", body=WEEKLY).execute()
    return created


def test_single_events_expands_and_hides_master(series: dict[str, Any], service: Any) -> None:
    items, token, _ = list_all(
        service, calendarId="primary", singleEvents=True, orderBy="startTime"
    )
    assert [i["id"] for i in items] == [
        "series01_20260302T090000Z",
        "series01_20260309T090000Z",
        "series01_20260316T090000Z",
        "series01_20260323T090000Z",
        "series01_20260330T080000Z",
    ]  # DST: wall clock kept
    assert all(i["recurringEventId"] == "series01" for i in items)
    assert items[0]["originalStartTime"]["timeZone"] == "Europe/Berlin" and token
    plain, _, _ = list_all(service, calendarId="primary")
    assert [i["id"] for i in plain] == ["series01"]


def test_instances_with_time_min_inclusive(series: dict[str, Any], service: Any) -> None:
    got = (
        service.events()
        .instances(calendarId="primary", eventId="series01", timeMin="2026-03-16T10:00:00Z")
        .execute()
    )
    assert [i["id"] for i in got["items"]] == [
        "series01_20260316T090000Z",
        "series01_20260323T090000Z",
        "series01_20260330T080000Z",
    ]
    page = (
        service.events().instances(calendarId="primary", eventId="series01", maxResults=2).execute()
    )
    assert len(page["items"]) == 2 and "nextPageToken" in page


def test_modify_and_cancel_one_instance(series: dict[str, Any], service: Any) -> None:
    _, token, _ = list_all(service, calendarId="primary")
    inst = service.events().get(calendarId="primary", eventId="series01_20260309T090000Z").execute()
    inst["summary"] = "Moved"
    service.events().update(calendarId="primary", eventId=inst["id"], body=inst).execute()
    cancel = service.events().get(
        calendarId="primary", eventId="series01_20260316T090000Z"
    ).execute() | {"status": "cancelled"}
    service.events().update(calendarId="primary", eventId=cancel["id"], body=cancel).execute()
    expanded, _, _ = list_all(service, calendarId="primary", singleEvents=True)
    by_id = {i["id"]: i for i in expanded}
    assert by_id["series01_20260309T090000Z"]["summary"] == "Moved"
    assert "series01_20260316T090000Z" not in by_id and len(by_id) == 4
    plain, _, _ = list_all(service, calendarId="primary")  # matrix row 1
    assert {i["id"]: i["status"] for i in plain} == {
        "series01": "confirmed",
        "series01_20260309T090000Z": "confirmed",
        "series01_20260316T090000Z": "cancelled",
    }
    changes, _, _ = list_all(service, calendarId="primary", syncToken=token)
    cancelled = {i["id"]: i for i in changes}["series01_20260316T090000Z"]
    assert set(cancelled) == {
        "kind",
        "etag",
        "id",
        "status",
        "updated",
        "recurringEventId",
        "originalStartTime",
    }


def test_this_and_following_split(series: dict[str, Any], service: Any) -> None:
    master = service.events().get(calendarId="primary", eventId="series01").execute()
    master["recurrence"] = ["RRULE:FREQ=WEEKLY;UNTIL=20260315T225959Z"]
    updated = (
        service.events().update(calendarId="primary", eventId="series01", body=master).execute()
    )
    assert updated["sequence"] == 1
    tail = {k: v for k, v in WEEKLY.items() if k != "id"} | {
        "summary": "Weekly v2",
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"],
        "start": {"dateTime": "2026-03-16T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-16T11:00:00+01:00", "timeZone": "Europe/Berlin"},
    }
    service.events().insert(calendarId="primary", body=tail).execute()
    expanded, _, _ = list_all(service, calendarId="primary", singleEvents=True, orderBy="startTime")
    assert [i["summary"] for i in expanded] == ["Weekly"] * 2 + ["Weekly v2"] * 3


def test_delete_series(series: dict[str, Any], service: Any) -> None:
    _, token, _ = list_all(service, calendarId="primary", singleEvents=True)
    service.events().delete(calendarId="primary", eventId="series01").execute()
    assert list_all(service, calendarId="primary", singleEvents=True)[0] == []
    assert list_all(service, calendarId="primary", singleEvents=True, showDeleted=True)[0] == []
    changes, _, _ = list_all(service, calendarId="primary", singleEvents=True, syncToken=token)
    assert len(changes) == 5 and all(c["status"] == "cancelled" for c in changes)
    plain = list_all(service, calendarId="primary", showDeleted=True)[0]
    assert [(i["id"], i["status"]) for i in plain] == [("series01", "cancelled")]
    with pytest.raises(HttpError) as exc:
        service.events().instances(calendarId="primary", eventId="series01").execute()
    assert exc.value.resp.status == 410


def test_infinite_series_capped_by_horizon(emulator: EmulatorServer, service: Any) -> None:
    daily = WEEKLY | {"id": "ddd0001", "recurrence": ["RRULE:FREQ=DAILY"]}
    service.events().insert(calendarId="primary", body=daily).execute()
    emulator.control.configure(instances_horizon=10 * 86400)
    items, _, _ = list_all(service, calendarId="primary", singleEvents=True)
    assert 10 <= len(items) <= 12
    assert ALICE


def test_recurring_needs_time_zone(service: Any) -> None:
    body = WEEKLY | {"id": "series02", "start": {"dateTime": "2026-03-02T10:00:00+01:00"}}
    with pytest.raises(HttpError) as exc:
        service.events().insert(calendarId="primary", body=body).execute()
    assert exc.value.resp.status == 400
