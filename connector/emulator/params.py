"""Query-string parsing with Google's 400 bodies for malformed values."""

from __future__ import annotations

from datetime import datetime

from connector.emulator import errors
from connector.emulator.clock import parse_rfc3339
from connector.emulator.times import is_valid_zone

Params = dict[str, list[str]]


def one(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[-1] if values else None


def many(params: Params, name: str) -> list[str]:
    return [v for value in params.get(name, []) for v in value.split(",") if v]


def boolean(params: Params, name: str) -> bool | None:
    value = one(params, name)
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise errors.invalid_param(name)


def integer(params: Params, name: str, *, minimum: int = 1) -> int | None:
    value = one(params, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise errors.invalid_param(name) from None
    if number < minimum:
        raise errors.invalid_param(name)
    return number


def timestamp(params: Params, name: str) -> datetime | None:
    value = one(params, name)
    if value is None:
        return None
    try:
        return parse_rfc3339(value, require_offset=True)
    except ValueError:
        raise errors.invalid_param(name) from None


def time_zone(params: Params, name: str = "timeZone") -> str | None:
    value = one(params, name)
    if value is not None and not is_valid_zone(value):
        raise errors.invalid_param(name)
    return value


def enum(params: Params, name: str, allowed: tuple[str, ...]) -> str | None:
    value = one(params, name)
    if value is not None and value not in allowed:
        raise errors.invalid_param(name)
    return value
