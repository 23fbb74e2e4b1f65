"""The sample and generated datasets: valid ids, consistent exceptions, every kind covered."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.emulator.recurrence import expand, instance_id, series_end, validate
from connector.emulator.sample import TEAM, generate_dataset, sample_dataset

NOW = datetime(2026, 5, 12, 10, 30, tzinfo=UTC)
BASE32HEX = re.compile(r"[a-v0-9]{5,1024}")


def events(dataset: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for user in dataset["users"]:
        for calendar in user["calendars"]:
            for event in calendar["events"]:
                yield calendar, event


def small() -> dict[str, Any]:
    return generate_dataset(
        users=3, calendars_per_user=2, events_per_calendar=400, seed=11, now=NOW
    )


BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "sample": lambda: sample_dataset(NOW),
    "generated": small,
}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def dataset(request: pytest.FixtureRequest) -> dict[str, Any]:
    return BUILDERS[request.param]()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_deterministic(name: str) -> None:
    first, second = BUILDERS[name](), BUILDERS[name]()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_generated_depends_on_the_seed() -> None:
    other = generate_dataset(
        users=3, calendars_per_user=2, events_per_calendar=400, seed=12, now=NOW
    )
    assert json.dumps(other) != json.dumps(small())
    counts = [len(c["events"]) for u in other["users"] for c in u["calendars"]]
    assert counts == [400] * 6


def test_json_serialisable_and_shaped(dataset: dict[str, Any]) -> None:
    assert json.loads(json.dumps(dataset)) == dataset
    for user in dataset["users"]:
        assert user["email"].endswith("@example.com")
        primaries = [c for c in user["calendars"] if c["primary"]]
        assert [c["id"] for c in primaries] == [user["email"]]
        for calendar in user["calendars"]:
            assert set(calendar) >= {"id", "summary", "timeZone", "primary", "accessRole"}


def test_ids_are_valid_and_unique_per_calendar(dataset: dict[str, Any]) -> None:
    seen: dict[str, set[str]] = {}
    for calendar, event in events(dataset):
        ids = seen.setdefault(calendar["id"], set())
        assert event["id"] not in ids
        ids.add(event["id"])
        if "recurringEventId" in event:
            continue
        assert BASE32HEX.fullmatch(event["id"]), event["id"]


def test_masters_validate_and_exceptions_match_their_instances(dataset: dict[str, Any]) -> None:
    masters = {}
    for calendar, event in events(dataset):
        if "recurrence" in event:
            validate(event["recurrence"])
            occ = list(
                expand(event, until=NOW + timedelta(days=400), default_tz=calendar["timeZone"])
            )
            assert occ, event
            series_end(event, calendar["timeZone"])
            masters[event["id"]] = (calendar, event)
    exceptions = [e for _, e in events(dataset) if "recurringEventId" in e]
    assert exceptions
    for exc in exceptions:
        calendar, master = masters[exc["recurringEventId"]]
        tz = calendar["timeZone"]
        assert exc["id"] == instance_id(master["id"], exc["originalStartTime"], tz)
        until = NOW + timedelta(days=3000)
        ids = {o.instance_id for o in expand(master, until=until, default_tz=tz)}
        assert exc["id"] in ids
        assert "recurrence" not in exc


def test_times_are_well_formed(dataset: dict[str, Any]) -> None:
    for _, event in events(dataset):
        start, end = event["start"], event["end"]
        if "date" in start:
            assert start["date"] < end["date"]
        else:
            assert datetime.fromisoformat(start["dateTime"]) < datetime.fromisoformat(
                end["dateTime"]
            )
            assert start["timeZone"]


def test_sample_covers_every_kind() -> None:
    data = sample_dataset(NOW)
    all_events = [e for _, e in events(data)]
    zones = {c["timeZone"] for u in data["users"] for c in u["calendars"]}
    assert {"Europe/Berlin", "America/New_York", "Asia/Tokyo"} <= zones
    team_roles = {c["accessRole"] for u in data["users"] for c in u["calendars"] if c["id"] == TEAM}
    assert len(team_roles) == 2
    single = [e for e in all_events if "recurrence" not in e and "recurringEventId" not in e]
    assert any("dateTime" in e["start"] for e in single)
    assert any("date" in e["start"] for e in single)
    multi_day = [
        e
        for e in single
        if "date" in e["start"]
        and (
            datetime.fromisoformat(e["end"]["date"]) - datetime.fromisoformat(e["start"]["date"])
        ).days
        > 1
    ]
    assert multi_day
    rules = " ".join(r for e in all_events for r in e.get("recurrence", []))
    assert "FREQ=WEEKLY" in rules and "EXDATE" in rules
    assert "FREQ=MONTHLY" in rules
    assert "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1" in rules
    exceptions = [e for e in all_events if "recurringEventId" in e]
    assert any(e.get("status") == "cancelled" for e in exceptions)
    assert any(
        e.get("status") != "cancelled" and e["start"] != e["originalStartTime"] for e in exceptions
    )
    statuses = {a["responseStatus"] for e in all_events for a in e.get("attendees", [])}
    assert {"accepted", "declined", "tentative", "needsAction"} <= statuses
    for field in ("description", "location", "reminders", "conferenceData"):
        assert any(field in e for e in all_events), field
    assert 24 <= len(all_events) <= 80


def test_generated_mix_is_realistic() -> None:
    data = generate_dataset(
        users=4, calendars_per_user=5, events_per_calendar=1000, seed=3, now=NOW
    )
    all_events = [e for _, e in events(data)]
    assert len(all_events) == 20_000
    masters = sum("recurrence" in e for e in all_events) / len(all_events)
    all_day = sum("date" in e["start"] for e in all_events) / len(all_events)
    assert 0.03 < masters < 0.07
    assert 0.07 < all_day < 0.16
    starts = [
        datetime.fromisoformat(e["start"].get("dateTime") or e["start"]["date"] + "T00:00+00:00")
        for e in all_events
        if "recurringEventId" not in e  # a yearly series' third instance lies further out
    ]
    assert min(starts) >= NOW - timedelta(days=367)
    assert max(starts) <= NOW + timedelta(days=367)
    assert max(len(e.get("description", "")) for e in all_events) >= 300
    assert {len(e.get("attendees", [])) for e in all_events} >= {0, 2, 6}
