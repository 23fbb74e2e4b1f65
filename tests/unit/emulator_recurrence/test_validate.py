"""validate(): what Google answers with 400 invalid."""

from __future__ import annotations

import pytest

from connector.emulator.recurrence import InvalidRecurrenceError, validate

GOOD = [
    ["RRULE:FREQ=WEEKLY;UNTIL=20110701T170000Z"],
    ["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1"],
    ["RRULE:FREQ=MONTHLY;BYDAY=-1FR;INTERVAL=2;WKST=SU"],
    ["RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "EXRULE:FREQ=YEARLY;BYMONTH=12"],
    ["RRULE:FREQ=DAILY;UNTIL=20260101", "RRULE:FREQ=DAILY;UNTIL=20260101T120000"],
    ["EXDATE;TZID=America/Los_Angeles:20261019T090000"],
    ["RDATE;TZID=Asia/Ho_Chi_Minh:20210407T080000,20220328T080000"],
    ["RDATE;VALUE=DATE:20110612,20110619", "EXDATE;VALUE=DATE-TIME:20110612T100000Z"],
    ["rrule:freq=weekly;byday=mo"],
    ['RDATE;TZID="Europe/Berlin";X-FOO=bar:20210407T080000'],
    [],
]

BAD = [
    (["DTSTART:20260101T090000Z"], "DTSTART is not allowed"),
    (["DTEND;TZID=Europe/Berlin:20260101T090000"], "DTEND is not allowed"),
    (["hello world"], "Invalid recurrence rule"),
    ([""], "Invalid recurrence rule"),
    (["SUMMARY:party"], "unknown property SUMMARY"),
    (["RRULE:FREQ=FORTNIGHTLY"], "unknown FREQ=FORTNIGHTLY"),
    (["RRULE:INTERVAL=2"], "FREQ is required"),
    (["RRULE:FREQ=DAILY;COUNT=0"], "COUNT=0"),
    (["RRULE:FREQ=DAILY;COUNT=3;UNTIL=20260101"], "COUNT and UNTIL"),
    (["RRULE:FREQ=DAILY;UNTIL=2026-01-01"], "Invalid date"),
    (["RRULE:FREQ=DAILY;UNTIL=20260230"], "Invalid date"),
    (["RRULE:FREQ=MONTHLY;BYMONTHDAY=32"], "out of range"),
    (["RRULE:FREQ=YEARLY;BYMONTH=13"], "out of range"),
    (["RRULE:FREQ=WEEKLY;BYDAY=XX"], "BYDAY=XX"),
    (["RRULE:FREQ=WEEKLY;BYDAY=1MO"], "BYDAY=1MO"),
    (["RRULE:FREQ=WEEKLY;BYMONTHDAY=1"], "BYMONTHDAY with FREQ=WEEKLY"),
    (["RRULE:FREQ=DAILY;FOO=1"], "unknown rule part FOO"),
    (["RRULE:FREQ=DAILY;FREQ=WEEKLY"], "Duplicate rule part FREQ"),
    (["RRULE:FREQ=DAILY;WKST=XY"], "WKST=XY"),
    (["RRULE;X=1:FREQ=DAILY"], "parameters on RRULE"),
    (["EXDATE;TZID=Mars/Olympus:20261019T090000"], "Invalid time zone"),
    (["EXDATE;VALUE=PERIOD:20261019T090000Z/PT1H"], "Unsupported VALUE=PERIOD"),
    (["EXDATE;VALUE=DATE:20261019T090000"], "VALUE=DATE"),
    (["RDATE:20261019T25000"], "Invalid date"),
    (["RDATE:20261019T090000,"], "empty date"),
    (["RDATE;FOO=bar:20261019T090000"], "Unknown parameter FOO"),
]


@pytest.mark.parametrize("lines", GOOD)
def test_accepts_real_world_lines(lines: list[str]) -> None:
    validate(lines)


@pytest.mark.parametrize(("lines", "needle"), BAD)
def test_rejects_with_a_specific_message(lines: list[str], needle: str) -> None:
    with pytest.raises(InvalidRecurrenceError) as info:
        validate(lines)
    assert needle in info.value.message
    assert str(info.value) == info.value.message


def test_rejects_a_bare_string() -> None:
    with pytest.raises(InvalidRecurrenceError):
        validate("RRULE:FREQ=DAILY")
