"""Google ``EventDateTime`` values <-> aware datetimes, and rendering in a requested zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.emulator.clock import parse_rfc3339


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_valid_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def edt_to_utc(edt: Any, default_tz: str = "UTC") -> datetime | None:
    """The instant an EventDateTime denotes (all-day: midnight in its zone); None if unusable."""
    if not isinstance(edt, dict):
        return None
    try:
        if isinstance(edt.get("dateTime"), str):
            parsed = parse_rfc3339(edt["dateTime"], require_offset=False)
            if not _has_offset(edt["dateTime"]):
                parsed = parsed.replace(tzinfo=zone(edt.get("timeZone"), default_tz))
            return parsed.astimezone(UTC)
        if isinstance(edt.get("date"), str):
            day = date.fromisoformat(edt["date"])
            local = datetime.combine(day, time(0), zone(edt.get("timeZone"), default_tz))
            return local.astimezone(UTC)
    except ValueError:
        return None
    return None


def _has_offset(text: str) -> bool:
    tail = text.strip()[10:]
    return tail.endswith(("Z", "z")) or "+" in tail or "-" in tail


def is_valid_edt(edt: Any) -> bool:
    """A usable EventDateTime: a date, or a dateTime with an offset or a valid timeZone."""
    if not isinstance(edt, dict):
        return False
    tz = edt.get("timeZone")
    if tz is not None and (not isinstance(tz, str) or not is_valid_zone(tz)):
        return False
    if isinstance(edt.get("dateTime"), str):
        text = edt["dateTime"]
        try:
            parse_rfc3339(text, require_offset=False)
        except ValueError:
            return False
        return _has_offset(text) or tz is not None
    if isinstance(edt.get("date"), str):
        try:
            date.fromisoformat(edt["date"])
        except ValueError:
            return False
        return True
    return False


def render_edt(edt: Any, tz_name: str | None) -> Any:
    """Re-express a dateTime in ``tz_name`` (the list/get ``timeZone`` parameter)."""
    if tz_name is None or not isinstance(edt, dict) or not isinstance(edt.get("dateTime"), str):
        return edt
    instant = edt_to_utc(edt)
    if instant is None:
        return edt
    out = dict(edt)
    out["dateTime"] = instant.astimezone(zone(tz_name)).isoformat()
    return out
