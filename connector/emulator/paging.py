"""Page and sync tokens of list methods: issuing, checking (400 / 410), slicing pages."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from typing import Any

from connector.emulator import errors
from connector.emulator.clock import to_ms, to_rfc3339_ms
from connector.emulator.store import CalendarRecord, Store
from connector.emulator.tokens import TokenCodec, TokenError, fingerprint


def calendar_key(cal: CalendarRecord) -> str:
    return fingerprint({"calendar": cal.id})


def check_sync_token(
    store: Store, cal: CalendarRecord, codec: TokenCodec, token: str, sync_fp: str, now: datetime
) -> int:
    try:
        payload = codec.decode(token)
    except TokenError:
        raise errors.full_sync_required() from None
    expected = {
        "k": "es",
        "g": store.generation,
        "c": calendar_key(cal),
        "ep": cal.token_epoch,
        "f": sync_fp,
    }
    if any(payload.get(k) != v for k, v in expected.items()):
        raise errors.full_sync_required()
    seq, issued = payload.get("s"), payload.get("t")
    if not isinstance(seq, int) or not isinstance(issued, int) or seq < cal.purge_floor:
        raise errors.full_sync_required()
    if to_ms(now) - issued > store.config.tombstone_horizon * 1000:
        raise errors.full_sync_required()
    return seq


def page_state(
    store: Store, codec: TokenCodec, token: str | None, kind: str, page_fp: str
) -> dict[str, Any] | None:
    if token is None:
        return None
    try:
        payload = codec.decode(token)
    except TokenError:
        raise errors.invalid_page_token() from None
    if (
        payload.get("k") != kind
        or payload.get("f") != page_fp
        or payload.get("g") != store.generation
    ):
        raise errors.invalid_page_token()
    return payload


def page_of(
    keyed: list[tuple[tuple[Any, ...], dict[str, Any]]], cursor: Any, limit: int
) -> tuple[list[dict[str, Any]], Any, bool]:
    start = 0 if cursor is None else bisect_right(keyed, tuple(cursor), key=lambda p: p[0])
    chunk = keyed[start : start + limit]
    done = start + limit >= len(keyed)
    return [item for _, item in chunk], (list(chunk[-1][0]) if chunk else cursor), done


def envelope(cal: CalendarRecord, access_role: str) -> dict[str, Any]:
    return {
        "kind": "calendar#events",
        "etag": f'"{to_ms(cal.updated) * 1000}"',
        "summary": cal.summary,
        "updated": to_rfc3339_ms(cal.updated),
        "timeZone": cal.time_zone,
        "accessRole": access_role,
        "defaultReminders": list(cal.default_reminders),
    }
