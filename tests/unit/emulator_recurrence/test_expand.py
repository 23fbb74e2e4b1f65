"""Expansion of recurring series: DST, instance ids, RDATE/EXDATE, COUNT/UNTIL, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connector.emulator.recurrence import Occurrence, expand, instance_id, series_end

FAR = datetime(2040, 1, 1, tzinfo=UTC)


def timed(start: str, end: str, tz: str, *rules: str, event_id: str = "series01") -> dict[str, Any]:
    return {
        "id": event_id,
        "start": {"dateTime": start, "timeZone": tz},
        "end": {"dateTime": end, "timeZone": tz},
        "recurrence": list(rules),
    }


def all_day(start: str, end: str, *rules: str, event_id: str = "allday01") -> dict[str, Any]:
    return {
        "id": event_id,
        "start": {"date": start},
        "end": {"date": end},
        "recurrence": list(rules),
    }


def starts(occurrences: list[Occurrence]) -> list[str]:
    return [o.start.get("dateTime") or o.start["date"] for o in occurrences]


def test_weekly_berlin_keeps_nine_oclock_across_spring_and_autumn_dst() -> None:
    master = timed(
        "2026-03-20T09:00:00+01:00",
        "2026-03-20T10:00:00+01:00",
        "Europe/Berlin",
        "RRULE:FREQ=WEEKLY;COUNT=4",
    )
    occ = list(expand(master, until=FAR))
    assert starts(occ) == [
        "2026-03-20T09:00:00+01:00",
        "2026-03-27T09:00:00+01:00",
        "2026-04-03T09:00:00+02:00",  # DST began on 29 March
        "2026-04-10T09:00:00+02:00",
    ]
    assert [o.end["dateTime"][11:19] for o in occ] == ["10:00:00"] * 4
    assert occ[2].start_utc == datetime(2026, 4, 3, 7, tzinfo=UTC)
    autumn = timed(
        "2026-10-16T09:00:00+02:00",
        "2026-10-16T09:30:00+02:00",
        "Europe/Berlin",
        "RRULE:FREQ=WEEKLY;COUNT=3",
    )
    assert [o.start_utc.hour for o in expand(autumn, until=FAR)] == [7, 7, 8]


def test_weekly_new_york_keeps_nine_oclock_across_dst() -> None:
    master = timed(
        "2026-02-27T09:00:00-05:00",
        "2026-02-27T10:00:00-05:00",
        "America/New_York",
        "RRULE:FREQ=WEEKLY;BYDAY=FR;COUNT=3",
    )
    occ = list(expand(master, until=FAR))
    assert starts(occ) == [
        "2026-02-27T09:00:00-05:00",
        "2026-03-06T09:00:00-05:00",
        "2026-03-13T09:00:00-04:00",  # DST began on 8 March
    ]
    assert all(o.start["timeZone"] == "America/New_York" for o in occ)
    assert occ[2].instance_id == "series01_20260313T130000Z"


def test_master_offset_differs_from_zone_uses_zone_wall_clock() -> None:
    # 08:00Z is 09:00 in Berlin in winter: the series is a Berlin 09:00 series.
    master = timed(
        "2026-03-27T08:00:00Z", "2026-03-27T09:00:00Z", "Europe/Berlin", "RRULE:FREQ=DAILY;COUNT=3"
    )
    assert [o.start["dateTime"] for o in expand(master, until=FAR)] == [
        "2026-03-27T09:00:00+01:00",
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
    ]


def test_start_without_time_zone_expands_in_the_calendar_zone() -> None:
    master = {
        "id": "series01",
        "start": {"dateTime": "2026-03-27T09:00:00+01:00"},
        "end": {"dateTime": "2026-03-27T10:00:00+01:00"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
    }
    occ = list(expand(master, until=FAR, default_tz="Europe/Berlin"))
    assert [o.start["dateTime"][11:] for o in occ] == [
        "09:00:00+01:00",
        "09:00:00+01:00",
        "09:00:00+02:00",
    ]
    assert occ[0].start["timeZone"] == "Europe/Berlin"


def test_timed_instance_id_is_original_start_in_utc() -> None:
    master = timed(
        "2022-01-31T14:00:00-03:00",
        "2022-01-31T15:00:00-03:00",
        "America/Sao_Paulo",
        "RRULE:FREQ=WEEKLY;COUNT=2",
        event_id="7sull595rv5apd9mr77a6g0s0h",
    )
    first = next(expand(master, until=FAR))
    assert first.instance_id == "7sull595rv5apd9mr77a6g0s0h_20220131T170000Z"
    assert first.original_start == {
        "dateTime": "2022-01-31T14:00:00-03:00",
        "timeZone": "America/Sao_Paulo",
    }
    assert first.original_start == first.start
    assert instance_id("7sull595rv5apd9mr77a6g0s0h", first.original_start) == first.instance_id


def test_instance_id_forms() -> None:
    assert instance_id("abcde", {"date": "2024-07-12"}) == "abcde_20240712"
    assert instance_id("abcde", {"dateTime": "2022-01-31T14:00:00-03:00"}) == (
        "abcde_20220131T170000Z"
    )
    floating = {"dateTime": "2026-07-01T09:00:00", "timeZone": "Asia/Tokyo"}
    assert instance_id("abcde", floating) == "abcde_20260701T000000Z"
    assert instance_id("abcde", {"dateTime": "2026-07-01T09:00:00"}, "Europe/Berlin") == (
        "abcde_20260701T070000Z"
    )


def test_all_day_instance_ids_and_multi_day_length() -> None:
    master = all_day("2024-07-12", "2024-07-15", "RRULE:FREQ=MONTHLY;COUNT=3")
    occ = list(expand(master, until=FAR, default_tz="Europe/Berlin"))
    assert [o.instance_id for o in occ] == [
        "allday01_20240712",
        "allday01_20240812",
        "allday01_20240912",
    ]
    assert occ[1].start == {"date": "2024-08-12"} and occ[1].end == {"date": "2024-08-15"}
    assert occ[1].original_start == {"date": "2024-08-12"}
    assert occ[1].start_utc == datetime(2024, 8, 11, 22, tzinfo=UTC)  # Berlin midnight
    assert occ[1].end_utc - occ[1].start_utc == timedelta(days=3)


def test_exdate_with_tzid_removes_exactly_that_instance() -> None:
    master = timed(
        "2026-10-19T09:00:00-07:00",
        "2026-10-19T09:30:00-07:00",
        "America/Los_Angeles",
        "RRULE:FREQ=DAILY;COUNT=5",
        "EXDATE;TZID=America/Los_Angeles:20261021T090000",
    )
    days = [o.start["dateTime"][:10] for o in expand(master, until=FAR)]
    assert days == ["2026-10-19", "2026-10-20", "2026-10-22", "2026-10-23"]


def test_exdate_in_utc_and_in_another_zone_and_date_forms() -> None:
    base = ("2026-01-05T09:00:00+01:00", "2026-01-05T10:00:00+01:00", "Europe/Berlin")
    rule = "RRULE:FREQ=DAILY;COUNT=6"
    utc = timed(*base, rule, "EXDATE:20260106T080000Z")
    other = timed(*base, rule, "EXDATE;TZID=America/New_York:20260107T030000")
    floating = timed(*base, rule, "EXDATE:20260108T090000,20260109T090000")
    by_date = timed(*base, rule, "EXDATE;VALUE=DATE:20260110")
    wrong_time = timed(*base, rule, "EXDATE;TZID=Europe/Berlin:20260106T100000")
    assert "2026-01-06" not in [o.start_utc.date().isoformat() for o in expand(utc, until=FAR)]
    assert len(list(expand(other, until=FAR))) == 5
    assert len(list(expand(floating, until=FAR))) == 4
    assert [o.start["dateTime"][:10] for o in expand(by_date, until=FAR)][-1] == "2026-01-09"
    assert len(list(expand(wrong_time, until=FAR))) == 6  # matches no instance


def test_rdate_with_tzid_and_value_date_add_instances() -> None:
    master = timed(
        "2021-04-01T08:00:00+07:00",
        "2021-04-01T09:00:00+07:00",
        "Asia/Ho_Chi_Minh",
        "RRULE:FREQ=YEARLY;COUNT=1",
        "RDATE;TZID=Asia/Ho_Chi_Minh:20210407T080000,20220328T080000",
        "RDATE;VALUE=DATE:20210410",
    )
    assert starts(list(expand(master, until=FAR))) == [
        "2021-04-01T08:00:00+07:00",
        "2021-04-07T08:00:00+07:00",
        "2021-04-10T08:00:00+07:00",  # a DATE keeps the series' time of day
        "2022-03-28T08:00:00+07:00",
    ]
    birthdays = all_day("2011-06-05", "2011-06-06", "RDATE;VALUE=DATE:20110612,20110619")
    assert starts(list(expand(birthdays, until=FAR))) == ["2011-06-05", "2011-06-12", "2011-06-19"]


def test_count_and_until_forms() -> None:
    base = ("2026-01-05T09:00:00+01:00", "2026-01-05T10:00:00+01:00", "Europe/Berlin")
    assert len(list(expand(timed(*base, "RRULE:FREQ=DAILY;COUNT=7"), until=FAR))) == 7
    # UNTIL in UTC is inclusive: 2026-01-08 08:00Z is the 09:00 Berlin instance.
    utc = timed(*base, "RRULE:FREQ=DAILY;UNTIL=20260108T080000Z")
    assert starts(list(expand(utc, until=FAR)))[-1] == "2026-01-08T09:00:00+01:00"
    just_before = timed(*base, "RRULE:FREQ=DAILY;UNTIL=20260108T075959Z")
    assert starts(list(expand(just_before, until=FAR)))[-1] == "2026-01-07T09:00:00+01:00"
    floating = timed(*base, "RRULE:FREQ=DAILY;UNTIL=20260108T090000")
    assert len(list(expand(floating, until=FAR))) == 4
    by_date = timed(*base, "RRULE:FREQ=DAILY;UNTIL=20260108")  # the whole last day counts
    assert len(list(expand(by_date, until=FAR))) == 4
    days = all_day("2026-01-05", "2026-01-06", "RRULE:FREQ=DAILY;UNTIL=20260108")
    assert len(list(expand(days, until=FAR))) == 4


def test_leap_day_birthday_rule_falls_on_last_day_of_february() -> None:
    master = all_day("2024-02-29", "2024-03-01", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1")
    got = starts(list(expand(master, until=datetime(2029, 1, 1, tzinfo=UTC))))
    assert got == ["2024-02-29", "2025-02-28", "2026-02-28", "2027-02-28", "2028-02-29"]


def test_multiple_rrules_exrule_and_bysetpos() -> None:
    master = timed(
        "2026-01-01T12:00:00Z",
        "2026-01-01T12:30:00Z",
        "UTC",
        "RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=3",
        "RRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=2",
        "EXRULE:FREQ=MONTHLY;BYDAY=1MO;COUNT=1",
    )
    assert [s[:10] for s in starts(list(expand(master, until=FAR)))] == [
        "2026-01-01",  # the master's own start
        "2026-01-30",  # last weekday of January
        "2026-02-02",  # first Monday of February (January's was excluded)
        "2026-02-27",
        "2026-03-31",
    ]


def test_window_includes_an_occurrence_in_progress_at_after() -> None:
    master = timed(
        "2026-05-04T09:00:00+02:00",
        "2026-05-04T11:00:00+02:00",
        "Europe/Berlin",
        "RRULE:FREQ=DAILY",
    )
    after = datetime(2026, 5, 6, 8, 0, tzinfo=UTC)  # 10:00 Berlin, mid-meeting
    until = datetime(2026, 5, 8, 7, 0, tzinfo=UTC)  # exactly the 8th's start: excluded
    assert starts(list(expand(master, after=after, until=until))) == [
        "2026-05-06T09:00:00+02:00",
        "2026-05-07T09:00:00+02:00",
    ]
    ended = datetime(2026, 5, 6, 9, 0, tzinfo=UTC)  # the 6th ends exactly here: excluded
    assert starts(list(expand(master, after=ended, until=until))) == ["2026-05-07T09:00:00+02:00"]


def test_infinite_series_is_lazy() -> None:
    master = timed("2000-01-01T00:00:00Z", "2000-01-01T00:00:01Z", "UTC", "RRULE:FREQ=MINUTELY")
    first = list(
        zip(range(3), expand(master, until=datetime(9999, 1, 1, tzinfo=UTC)), strict=False)
    )
    assert [o.start_utc.minute for _, o in first] == [0, 1, 2]


def test_series_end_finite_and_infinite() -> None:
    base = ("2026-01-05T09:00:00+01:00", "2026-01-05T10:00:00+01:00", "Europe/Berlin")
    assert series_end(timed(*base, "RRULE:FREQ=WEEKLY")) is None
    assert series_end(timed(*base, "RRULE:FREQ=WEEKLY;COUNT=3")) == datetime(
        2026, 1, 19, 9, tzinfo=UTC
    )
    mixed = timed(*base, "RRULE:FREQ=WEEKLY;COUNT=3", "RRULE:FREQ=MONTHLY")
    assert series_end(mixed) is None
    with_rdate = timed(*base, "RRULE:FREQ=WEEKLY;COUNT=3", "RDATE:20260301T090000")
    assert series_end(with_rdate) == datetime(2026, 3, 1, 9, tzinfo=UTC)
    days = all_day("2026-01-05", "2026-01-07", "RRULE:FREQ=DAILY;UNTIL=20260110")
    assert series_end(days, "Asia/Tokyo") == datetime(2026, 1, 11, 15, tzinfo=UTC)


def test_all_excluded_series_ends_with_its_master() -> None:
    master = timed(
        "2026-01-05T09:00:00+01:00",
        "2026-01-05T10:00:00+01:00",
        "Europe/Berlin",
        "RRULE:FREQ=DAILY;COUNT=1",
        "EXDATE;TZID=Europe/Berlin:20260105T090000",
    )
    assert list(expand(master, until=FAR)) == []
    assert series_end(master) == datetime(2026, 1, 5, 9, tzinfo=UTC)


def test_nonexistent_local_time_moves_forward_and_stays_ordered() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026; Google-style: the instance moves forward.
    master = timed(
        "2026-03-27T02:30:00+01:00",
        "2026-03-27T03:00:00+01:00",
        "Europe/Berlin",
        "RRULE:FREQ=DAILY;COUNT=4",
    )
    occ = list(expand(master, until=FAR))
    assert starts(occ)[2] == "2026-03-29T03:30:00+02:00"
    assert [o.start_utc for o in occ] == sorted(o.start_utc for o in occ)
