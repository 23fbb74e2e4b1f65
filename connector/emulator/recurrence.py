"""Expansion of Google recurring events (reference sections 4 and 12).

A series is expanded in *naive wall-clock time of its zone* (``start.timeZone``, else the
calendar's zone): dateutil's rrule steps over local dates and times, and only then is each
occurrence pinned to an instant. That is what keeps a 09:00 Berlin meeting at 09:00 after a DST
change; expanding with the master's fixed UTC offset would shift it by an hour.

Line grammar: ``NAME[;PARAM=VALUE...]:VALUE`` with NAME one of RRULE, EXRULE, RDATE, EXDATE.
RRULE parts are parsed here (specific error messages, range checks) and handed to
``dateutil.rrule.rrule``. As in RFC 5545, the master's start is always an occurrence.
"""

from __future__ import annotations

import heapq
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import rrule as du


class InvalidRecurrenceError(Exception):
    """A recurrence that Google would answer with 400 ``invalid``; ``message`` is the body text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Occurrence:
    """One instance of a series as the rule places it (exceptions are laid over by the store)."""

    instance_id: str
    original_start: dict[str, str]
    start: dict[str, str]
    end: dict[str, str]
    start_utc: datetime
    end_utc: datetime


_FREQS = {f: getattr(du, f) for f in ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")}
_FREQS |= {"MINUTELY": du.MINUTELY, "SECONDLY": du.SECONDLY}
_DAYS = {"MO": du.MO, "TU": du.TU, "WE": du.WE, "TH": du.TH, "FR": du.FR, "SA": du.SA, "SU": du.SU}
# rule part -> (dateutil keyword, lowest, highest, zero allowed)
_INT_LISTS = {
    "BYSECOND": ("bysecond", 0, 59, True),
    "BYMINUTE": ("byminute", 0, 59, True),
    "BYHOUR": ("byhour", 0, 23, True),
    "BYMONTHDAY": ("bymonthday", -31, 31, False),
    "BYYEARDAY": ("byyearday", -366, 366, False),
    "BYWEEKNO": ("byweekno", -53, 53, False),
    "BYMONTH": ("bymonth", 1, 12, False),
    "BYSETPOS": ("bysetpos", -366, 366, False),
}
_BYDAY = re.compile(r"([+-]?)(\d{0,2})(MO|TU|WE|TH|FR|SA|SU)")
_LINE = re.compile(r"([A-Za-z][A-Za-z0-9-]*)((?:;[^:;]+)*):(.*)", re.DOTALL)
_STAMP = re.compile(r"(\d{8})(?:T(\d{6})(Z?))?")
_REORDER = timedelta(days=2)  # more than any UTC-offset jump, so buffered output is ordered
_FAR = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass(frozen=True)
class _Stamp:
    """A DATE or DATE-TIME value from a line; ``value`` is naive (``kind`` says how to read it)."""

    value: datetime
    kind: Literal["date", "utc", "floating", "zoned"]
    tz: str | None = None


@dataclass(frozen=True)
class _Rule:
    kwargs: tuple[tuple[str, Any], ...]
    until: _Stamp | None
    finite: bool


@dataclass(frozen=True)
class _Parsed:
    rrules: tuple[_Rule, ...]
    exrules: tuple[_Rule, ...]
    rdates: tuple[_Stamp, ...]
    exdates: tuple[_Stamp, ...]


@dataclass(frozen=True)
class _Series:
    master_id: str
    all_day: bool
    tz: str
    zone: ZoneInfo
    dtstart: datetime  # naive wall clock in ``zone``
    duration: timedelta  # exact for timed series, whole days for all-day ones
    end_tz: str
    end_zone: ZoneInfo
    parsed: _Parsed


def validate(recurrence: Sequence[str]) -> None:
    """Raise InvalidRecurrenceError unless every line is a well-formed RRULE/EXRULE/RDATE/EXDATE."""
    parsed = _parse(_as_lines(recurrence))
    probe = datetime(2000, 1, 3, 9, 0)
    for rule in parsed.rrules + parsed.exrules:
        _build(rule, probe, ZoneInfo("UTC"), all_day=False)


def expand(
    master: Mapping[str, Any],
    *,
    until: datetime,
    after: datetime | None = None,
    default_tz: str = "UTC",
) -> Iterator[Occurrence]:
    """Occurrences with ``end_utc > after`` and ``start_utc < until``, ordered by start_utc.

    Lazy: an infinite series is safe as long as ``until`` is finite.
    """
    series = _series(master, default_tz)
    until = _aware(until)
    floor = _aware(after) if after is not None else None
    for occ in _occurrences(series, until, floor):
        if floor is None or occ.end_utc > floor:
            yield occ


def instance_id(master_id: str, original_start: Mapping[str, str], default_tz: str = "UTC") -> str:
    """``<masterId>_YYYYMMDDTHHMMSSZ`` (original start in UTC) or ``<masterId>_YYYYMMDD``."""
    if original_start.get("date"):
        day = _parse_iso_date(str(original_start["date"]), "originalStartTime")
        return f"{master_id}_{day:%Y%m%d}"
    text = original_start.get("dateTime")
    if not text:
        raise InvalidRecurrenceError("Invalid originalStartTime: no date or dateTime.")
    zone = _zone(original_start.get("timeZone") or default_tz)
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidRecurrenceError(f"Invalid originalStartTime: {text!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return f"{master_id}_{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def series_end(master: Mapping[str, Any], default_tz: str = "UTC") -> datetime | None:
    """end_utc of the last occurrence, None for an infinite series.

    A finite series whose every occurrence is excluded ends where its master ends.
    """
    series = _series(master, default_tz)
    if not all(rule.finite for rule in series.parsed.rrules):
        return None
    tail = deque(_starts(series, _FAR), maxlen=1)
    if not tail:  # every occurrence excluded: the master's own end
        tail.append((_to_utc(series.dtstart, series.zone), series.dtstart))
    return _occurrence(series, *tail[0]).end_utc


# --- parsing -------------------------------------------------------------------------------


def _as_lines(recurrence: Sequence[str]) -> tuple[str, ...]:
    if isinstance(recurrence, str) or not all(isinstance(line, str) for line in recurrence):
        raise InvalidRecurrenceError("Invalid recurrence: expected a list of strings.")
    return tuple(recurrence)


@lru_cache(maxsize=4096)
def _parse(lines: tuple[str, ...]) -> _Parsed:
    found: dict[str, list[Any]] = {"RRULE": [], "EXRULE": [], "RDATE": [], "EXDATE": []}
    for raw in lines:
        line = raw.strip()
        match = _LINE.fullmatch(line)
        if match is None:
            raise InvalidRecurrenceError(f"Invalid recurrence rule: {raw!r}.")
        name, params, value = match.group(1).upper(), _params(match.group(2), line), match.group(3)
        if name in ("DTSTART", "DTEND"):
            raise InvalidRecurrenceError(
                f"Invalid recurrence rule: {name} is not allowed; the event's start and end "
                "define the first instance."
            )
        if name not in found:
            raise InvalidRecurrenceError(f"Invalid recurrence rule: unknown property {name}.")
        if name.endswith("RULE"):
            if params:
                raise InvalidRecurrenceError(f"Invalid recurrence rule: parameters on {name}.")
            found[name].append(_parse_rule(value.strip(), line))
        else:
            found[name].extend(_parse_dates(params, value.strip(), line))
    return _Parsed(*(tuple(found[key]) for key in ("RRULE", "EXRULE", "RDATE", "EXDATE")))


def _params(text: str, line: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in filter(None, text.split(";")):
        key, sep, val = part.partition("=")
        key = key.strip().upper()
        if not sep or not key:
            raise InvalidRecurrenceError(f"Invalid parameter {part!r} in {line!r}.")
        if not key.startswith("X-"):  # experimental parameters are ignored
            params[key] = val.strip().strip('"')
    return params


def _parse_rule(value: str, line: str) -> _Rule:
    parts: dict[str, str] = {}
    for part in filter(None, value.split(";")):
        key, sep, val = part.partition("=")
        key = key.strip().upper()
        if not sep or not val.strip():
            raise InvalidRecurrenceError(f"Invalid rule part {part!r} in {line!r}.")
        if key in parts:
            raise InvalidRecurrenceError(f"Duplicate rule part {key} in {line!r}.")
        parts[key] = val.strip().upper()
    freq_name = parts.pop("FREQ", None)
    if freq_name is None:
        raise InvalidRecurrenceError(f"Invalid recurrence rule: FREQ is required in {line!r}.")
    if freq_name not in _FREQS:
        raise InvalidRecurrenceError(f"Invalid recurrence rule: unknown FREQ={freq_name}.")
    freq = _FREQS[freq_name]
    kwargs: dict[str, Any] = {"freq": freq}
    until: _Stamp | None = None
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidRecurrenceError("Invalid recurrence rule: COUNT and UNTIL are exclusive.")
    for key, val in parts.items():
        if key in ("COUNT", "INTERVAL"):
            kwargs[key.lower()] = _positive(key, val)
        elif key == "UNTIL":
            until = _stamp(val, None, None, line)
        elif key == "WKST":
            if val not in _DAYS:
                raise InvalidRecurrenceError(f"Invalid recurrence rule: WKST={val}.")
            kwargs["wkst"] = _DAYS[val]
        elif key == "BYDAY":
            kwargs["byweekday"] = tuple(_byday(item, freq) for item in val.split(","))
        elif key in _INT_LISTS:
            kw, low, high, zero = _INT_LISTS[key]
            kwargs[kw] = tuple(_bounded(key, item, low, high, zero) for item in val.split(","))
        else:
            raise InvalidRecurrenceError(f"Invalid recurrence rule: unknown rule part {key}.")
    _check_combination(freq_name, kwargs)
    finite = "count" in kwargs or until is not None
    return _Rule(tuple(sorted(kwargs.items())), until, finite)


def _check_combination(freq: str, kwargs: Mapping[str, Any]) -> None:
    """RFC 5545 section 3.3.10 MUST NOTs that dateutil would silently accept."""
    if "bymonthday" in kwargs and freq == "WEEKLY":
        raise InvalidRecurrenceError("Invalid recurrence rule: BYMONTHDAY with FREQ=WEEKLY.")
    if "byyearday" in kwargs and freq in ("DAILY", "WEEKLY", "MONTHLY"):
        raise InvalidRecurrenceError(f"Invalid recurrence rule: BYYEARDAY with FREQ={freq}.")
    if "byweekno" in kwargs and freq != "YEARLY":
        raise InvalidRecurrenceError("Invalid recurrence rule: BYWEEKNO needs FREQ=YEARLY.")


def _positive(key: str, val: str) -> int:
    if not val.isdigit() or int(val) < 1:
        raise InvalidRecurrenceError(f"Invalid recurrence rule: {key}={val}.")
    return int(val)


def _bounded(key: str, item: str, low: int, high: int, zero: bool) -> int:
    if not re.fullmatch(r"[+-]?\d{1,3}", item):
        raise InvalidRecurrenceError(f"Invalid recurrence rule: {key}={item}.")
    number = int(item)
    if not low <= number <= high or (number == 0 and not zero):
        raise InvalidRecurrenceError(f"Invalid recurrence rule: {key}={item} is out of range.")
    return number


def _byday(item: str, freq: int) -> du.weekday:
    match = _BYDAY.fullmatch(item.strip())
    if match is None:
        raise InvalidRecurrenceError(f"Invalid recurrence rule: BYDAY={item}.")
    sign, digits, day = match.groups()
    if not digits:
        return _DAYS[day]
    number = int(digits) * (-1 if sign == "-" else 1)
    if not 1 <= abs(number) <= 53 or freq not in (du.MONTHLY, du.YEARLY):
        raise InvalidRecurrenceError(f"Invalid recurrence rule: BYDAY={item}.")
    return _DAYS[day](number)


def _parse_dates(params: Mapping[str, str], value: str, line: str) -> list[_Stamp]:
    kind = params.get("VALUE", "DATE-TIME").upper()
    if kind not in ("DATE", "DATE-TIME"):
        raise InvalidRecurrenceError(f"Unsupported VALUE={kind} in {line!r}.")
    unknown = set(params) - {"VALUE", "TZID"}
    if unknown:
        raise InvalidRecurrenceError(f"Unknown parameter {sorted(unknown)[0]} in {line!r}.")
    tz = params.get("TZID")
    if tz is not None:
        _zone(tz)
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise InvalidRecurrenceError(f"Invalid recurrence rule: empty date in {line!r}.")
    return [_stamp(item, kind, tz, line) for item in items]


def _stamp(text: str, kind: str | None, tz: str | None, line: str) -> _Stamp:
    match = _STAMP.fullmatch(text.upper())
    if match is None:
        raise InvalidRecurrenceError(f"Invalid date {text!r} in {line!r}.")
    day, clock, zulu = match.groups()
    try:
        value = datetime.strptime(day + (clock or "000000"), "%Y%m%d%H%M%S")
    except ValueError:
        raise InvalidRecurrenceError(f"Invalid date {text!r} in {line!r}.") from None
    if clock is None:
        if kind == "DATE-TIME" and tz is not None:
            raise InvalidRecurrenceError(f"Invalid date-time {text!r} in {line!r}.")
        return _Stamp(value, "date")
    if kind == "DATE":
        raise InvalidRecurrenceError(f"Invalid date {text!r} (VALUE=DATE) in {line!r}.")
    if zulu:
        return _Stamp(value, "utc")
    return _Stamp(value, "zoned", tz) if tz else _Stamp(value, "floating")


# --- expansion -----------------------------------------------------------------------------


def _series(master: Mapping[str, Any], default_tz: str) -> _Series:
    start, end = master.get("start"), master.get("end")
    if not isinstance(start, Mapping) or not isinstance(end, Mapping):
        raise InvalidRecurrenceError("A recurring event needs a start and an end.")
    parsed = _parse(_as_lines(master.get("recurrence") or ()))
    tz = str(start.get("timeZone") or default_tz)
    zone = _zone(tz)
    master_id = str(master.get("id", ""))
    if start.get("date"):
        first = _parse_iso_date(str(start["date"]), "start")
        last = _parse_iso_date(str(end.get("date") or ""), "end")
        days = max((last - first).days, 1)
        dtstart = datetime.combine(first, time(0))
        return _Series(master_id, True, tz, zone, dtstart, timedelta(days=days), tz, zone, parsed)
    begin, finish = _instant(start, zone, "start"), _instant(end, zone, "end")
    end_tz = str(end.get("timeZone") or tz)
    local = begin.astimezone(zone).replace(tzinfo=None, microsecond=0)
    duration = max(finish - begin, timedelta(0))
    return _Series(master_id, False, tz, zone, local, duration, end_tz, _zone(end_tz), parsed)


def _occurrences(
    series: _Series, until: datetime, floor: datetime | None = None
) -> Iterator[Occurrence]:
    """Occurrences before ``until``; those surely ended by ``floor`` are skipped unbuilt."""
    skip_before = floor - series.duration - _REORDER if floor is not None else None
    for start_utc, naive in _starts(series, until):
        if skip_before is None or start_utc >= skip_before:
            yield _occurrence(series, start_utc, naive)


def _starts(series: _Series, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """(start_utc, naive wall time) of every occurrence before ``until``, EXDATEs applied."""
    ex_instants: set[datetime] = set()
    ex_days: set[date] = set()
    for stamp in series.parsed.exdates:
        if stamp.kind == "date" or series.all_day:
            ex_days.add(stamp.value.date())
        else:
            ex_instants.add(_to_utc(_local(stamp, series), series.zone))
    previous: datetime | None = None
    for start_utc, naive in _ordered(_rule_set(series), series.zone, until):
        if start_utc == previous:  # two wall times naming one instant (a DST gap)
            continue
        previous = start_utc
        if start_utc not in ex_instants and naive.date() not in ex_days:
            yield start_utc, naive


def _rule_set(series: _Series) -> du.rruleset:
    rules = du.rruleset()
    for rule in series.parsed.rrules:
        rules.rrule(_build(rule, series.dtstart, series.zone, series.all_day))
    for rule in series.parsed.exrules:
        rules.exrule(_build(rule, series.dtstart, series.zone, series.all_day))
    rules.rdate(series.dtstart)
    for stamp in series.parsed.rdates:
        rules.rdate(_local(stamp, series))
    return rules


def _build(rule: _Rule, dtstart: datetime, zone: ZoneInfo, all_day: bool) -> du.rrule:
    kwargs = dict(rule.kwargs)
    if rule.until is not None:
        until = rule.until
        if until.kind == "utc":
            kwargs["until"] = until.value.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
        elif until.kind == "date" and not all_day:
            kwargs["until"] = datetime.combine(until.value.date(), time(23, 59, 59))
        else:
            kwargs["until"] = until.value
    try:
        return du.rrule(dtstart=dtstart, cache=False, **kwargs)
    except (ValueError, TypeError) as exc:
        raise InvalidRecurrenceError(f"Invalid recurrence rule: {exc}.") from None


def _local(stamp: _Stamp, series: _Series) -> datetime:
    """An RDATE/EXDATE value as naive wall time in the series zone (fold kept for DST overlaps)."""
    if series.all_day:
        return datetime.combine(stamp.value.date(), time(0))
    if stamp.kind == "date":
        return datetime.combine(stamp.value.date(), series.dtstart.time())
    if stamp.kind == "floating":
        return stamp.value
    source = UTC if stamp.kind == "utc" else _zone(stamp.tz or "UTC")
    return stamp.value.replace(tzinfo=source).astimezone(series.zone).replace(tzinfo=None)


def _ordered(
    naive_times: Iterable[datetime], zone: ZoneInfo, until: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """(start_utc, naive) in UTC order, stopping before ``until``.

    Naive wall times map to instants monotonically except around DST gaps (a nonexistent 02:30
    becomes 03:30), so a small heap holds back anything within ``_REORDER`` of the newest item.
    """
    heap: list[tuple[datetime, datetime]] = []
    for naive in naive_times:
        instant = _to_utc(naive, zone)
        heapq.heappush(heap, (instant, naive))
        while heap and heap[0][0] < instant - _REORDER:
            item = heapq.heappop(heap)
            if item[0] >= until:
                return
            yield item
        if instant - _REORDER >= until:
            break
    while heap:
        item = heapq.heappop(heap)
        if item[0] >= until:
            return
        yield item


def _occurrence(series: _Series, start_utc: datetime, naive: datetime) -> Occurrence:
    if series.all_day:
        day = naive.date()
        last = day + series.duration
        start, end = {"date": day.isoformat()}, {"date": last.isoformat()}
        suffix, end_utc = f"{day:%Y%m%d}", _to_utc(datetime.combine(last, time(0)), series.zone)
    else:
        end_utc = start_utc + series.duration
        start = {"dateTime": start_utc.astimezone(series.zone).isoformat(), "timeZone": series.tz}
        end = {"dateTime": end_utc.astimezone(series.end_zone).isoformat()}
        end["timeZone"] = series.end_tz
        suffix = f"{start_utc:%Y%m%dT%H%M%SZ}"
    return Occurrence(f"{series.master_id}_{suffix}", dict(start), start, end, start_utc, end_utc)


# --- small conversions ---------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)  # ZoneInfo caches instances by key
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRecurrenceError(f"Invalid time zone {name!r}.") from None


def _to_utc(naive: datetime, zone: ZoneInfo) -> datetime:
    return naive.replace(tzinfo=zone).astimezone(UTC)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_iso_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRecurrenceError(f"Invalid {what} date {text!r}.") from None


def _instant(edt: Mapping[str, Any], zone: ZoneInfo, what: str) -> datetime:
    text = edt.get("dateTime")
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidRecurrenceError(f"Invalid {what} time {text!r}.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(edt["timeZone"]) if edt.get("timeZone") else zone)
    return moment.astimezone(UTC)
