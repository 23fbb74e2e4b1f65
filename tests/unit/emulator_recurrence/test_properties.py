"""Property tests: ids round-trip, order is strict, wall-clock time is kept in any zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from hypothesis import example, given, settings
from hypothesis import strategies as st

from connector.emulator.recurrence import expand, instance_id

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith("SystemV"))

zones = st.sampled_from(ZONES)
days = st.dates(min_value=date(1990, 1, 1), max_value=date(2035, 12, 31))
clock = st.times().map(lambda t: t.replace(microsecond=0, tzinfo=None, fold=0))
rules = st.sampled_from(
    [
        "RRULE:FREQ=DAILY",
        "RRULE:FREQ=DAILY;INTERVAL=3",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "RRULE:FREQ=MONTHLY;BYMONTHDAY=-1",
        "RRULE:FREQ=MONTHLY;BYDAY=2TU",
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1",
        "RRULE:FREQ=HOURLY;INTERVAL=7",
    ]
)


def _master(tz: str, day: date, at: time, rule: str, minutes: int) -> dict[str, object]:
    start = datetime.combine(day, at, ZoneInfo(tz))
    end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo)
    return {
        "id": "prop0series",
        "start": {"dateTime": start.isoformat(), "timeZone": tz},
        "end": {"dateTime": end.isoformat(), "timeZone": tz},
        "recurrence": [rule],
    }


@settings(max_examples=60, deadline=None)
@given(zones, days, clock, rules, st.integers(0, 600))
def test_ids_round_trip_and_order_is_strict(
    tz: str, day: date, at: time, rule: str, minutes: int
) -> None:
    master = _master(tz, day, at, rule, minutes)
    until = datetime.combine(day, time(0), UTC) + timedelta(days=800)
    occ = list(expand(master, until=until))
    assert occ
    for item in occ:
        assert instance_id("prop0series", item.original_start) == item.instance_id
        assert datetime.fromisoformat(item.start["dateTime"]) == item.start_utc
        assert item.end_utc - item.start_utc == timedelta(minutes=minutes)
        assert item.start_utc < until
    instants = [o.start_utc for o in occ]
    assert instants == sorted(set(instants))
    assert len({o.instance_id for o in occ}) == len(occ)


@settings(max_examples=60, deadline=None)
@given(zones, days, clock)
@example("Europe/Belgrade", date(2016, 3, 27), time(2, 0))  # starts inside the DST gap
def test_daily_series_keeps_its_wall_clock_time_in_any_zone(tz: str, day: date, at: time) -> None:
    zone = ZoneInfo(tz)
    # A start inside a DST gap ("02:00+01:00" on the spring-forward day) is still one instant,
    # 03:00 local: the series keeps the wall-clock time of that instant, as RFC 5545's DTSTART.
    at = datetime.combine(day, at, zone).astimezone(UTC).astimezone(zone).time()
    master = _master(tz, day, at, "RRULE:FREQ=DAILY", 30)
    until = datetime.combine(day, time(0), UTC) + timedelta(days=400)
    for item in expand(master, until=until):
        wall = item.start_utc.astimezone(zone).replace(tzinfo=None)
        assert item.start["dateTime"] == item.start_utc.astimezone(zone).isoformat()
        if wall.time() == at:
            continue
        # Only when `at` does not exist that day (a DST gap): zoneinfo moves it forward.
        candidates = (wall.date(), wall.date() - timedelta(days=1))
        wanted = [datetime.combine(d, at, zone) for d in candidates]
        assert any(w.astimezone(UTC) == item.start_utc for w in wanted)
        assert all(
            w.astimezone(UTC).astimezone(zone).time() != at
            for w in wanted
            if w.astimezone(UTC) == item.start_utc
        )


@settings(max_examples=40, deadline=None)
@given(zones, days, clock, st.integers(0, 300), st.integers(1, 300))
def test_window_filter_matches_the_unfiltered_expansion(
    tz: str, day: date, at: time, offset_days: int, width_hours: int
) -> None:
    master = _master(tz, day, at, "RRULE:FREQ=DAILY;INTERVAL=2", 90)
    base = datetime.combine(day, time(0), UTC)
    after = base + timedelta(days=offset_days)
    until = after + timedelta(hours=width_hours)
    everything = list(expand(master, until=until))
    window = list(expand(master, after=after, until=until))
    assert window == [o for o in everything if o.end_utc > after]
