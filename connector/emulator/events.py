"""Event writes and reads: insert, get, update, patch, delete, and single-instance exceptions.

An occurrence of a recurring series is addressed as ``<masterId>_<suffix>`` (recurrence.py makes
the ids). Writing to one that is not stored yet creates an *exception*: a stored event with that
id, ``recurringEventId`` and ``originalStartTime``, which overlays the expansion. Reminder-only
changes keep ``updated`` (as Google documents) but still take a new seq, so sync tokens and push
notifications report them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.emulator import errors, recurrence
from connector.emulator.clock import parse_rfc3339, to_rfc3339_ms
from connector.emulator.render import instance_body
from connector.emulator.store import CalendarRecord, EventRecord, ListEntry, Store, UserRecord
from connector.emulator.store import role_at_least as _at_least
from connector.emulator.times import edt_to_utc, is_valid_edt

_CLIENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_READ_ONLY = ("kind", "etag", "created", "updated", "htmlLink", "creator", "hangoutLink")
_IMMUTABLE = (
    "id",
    "iCalUID",
    "created",
    "creator",
    "organizer",
    "recurringEventId",
    "originalStartTime",
    "eventType",
    "kind",
)
_TIME_KEYS = ("start", "end", "recurrence")
EVENT_TYPES = ("birthday", "default", "focusTime", "fromGmail", "outOfOffice", "workingLocation")


def resolve_calendar(
    store: Store, user: UserRecord, calendar_id: str, *, write: bool = False
) -> tuple[CalendarRecord, ListEntry]:
    cid = user.primary_id if calendar_id == "primary" else calendar_id
    entry = user.entries.get(cid)
    cal = store.calendars.get(cid)
    if entry is None or entry.deleted or cal is None:
        raise errors.not_found()
    if write and not _at_least(entry.access_role, "writer"):
        raise errors.writer_access_required()
    return cal, entry


def etag_for(updated: str, reminder_rev: int) -> str:
    micros = int(parse_rfc3339(updated).timestamp() * 1_000_000)
    return f'"{2 * micros + reminder_rev}"'


def _stamp(now: datetime, previous: str | None) -> str:
    if previous is not None:
        floor = parse_rfc3339(previous) + timedelta(milliseconds=1)
        now = max(now, floor)
    return to_rfc3339_ms(now)


def validate_times(body: Mapping[str, Any]) -> None:
    if body.get("status") == "cancelled":
        return
    for key, label in (("start", "start"), ("end", "end")):
        if key not in body:
            raise errors.required(f"Missing {label} time.")
        if not is_valid_edt(body[key]):
            raise errors.ApiError(400, "global", "invalid", f"Invalid {label} time.")
    if body.get("recurrence"):
        rules = body["recurrence"]
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise errors.ApiError(400, "global", "invalid", "Invalid recurrence rule.")
        if "dateTime" in body["start"] and not body["start"].get("timeZone"):
            raise errors.ApiError(
                400, "global", "required", "Missing time zone definition for start time."
            )
        try:
            recurrence.validate(rules)
        except recurrence.InvalidRecurrenceError as exc:
            raise errors.ApiError(
                400, "global", "invalid", exc.message or "Invalid recurrence rule."
            ) from None
    start, end = edt_to_utc(body["start"]), edt_to_utc(body["end"])
    if start is not None and end is not None and end < start:
        raise errors.time_range_empty("end")


def _commit(
    store: Store,
    cal: CalendarRecord,
    body: dict[str, Any],
    now: datetime,
    old: EventRecord | None,
    *,
    reminder_only: bool = False,
) -> EventRecord:
    rev = (old.reminder_rev + 1) if (old is not None and reminder_only) else 0
    body["etag"] = etag_for(body["updated"], rev)
    record = store.commit_event(cal, body, now, reminder_only=reminder_only)
    record.reminder_rev = rev
    return record


def complete_new(
    store: Store, cal: CalendarRecord, body: dict[str, Any], creator: str, now: datetime
) -> dict[str, Any]:
    """Fill server-side fields of a new (inserted or seeded) event; keeps given timestamps."""
    out = dict(body)
    out["kind"] = "calendar#event"
    out.setdefault("id", store.new_id())
    out.setdefault("status", "confirmed")
    created = out.get("created") if isinstance(out.get("created"), str) else to_rfc3339_ms(now)
    out["created"] = created
    out["updated"] = out["updated"] if isinstance(out.get("updated"), str) else created
    out.setdefault("iCalUID", f"{out['id']}@google.com")
    out.setdefault("sequence", 0)
    out.setdefault("eventType", "default")
    out.setdefault("reminders", {"useDefault": True})
    out.setdefault("organizer", {"email": cal.id, "displayName": cal.summary})
    out.setdefault("creator", {"email": creator})
    out.setdefault("htmlLink", f"https://www.google.com/calendar/event?eid={out['id']}")
    return out


def insert_event(
    store: Store, user: UserRecord, calendar_id: str, body: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    with store.lock:
        cal, _ = resolve_calendar(store, user, calendar_id, write=True)
        clean = {k: v for k, v in body.items() if k not in _READ_ONLY}
        if "id" in clean:
            if not isinstance(clean["id"], str) or not _CLIENT_ID.match(clean["id"]):
                raise errors.ApiError(400, "global", "invalid", "Invalid resource id value.")
            if clean["id"] in cal.events:
                raise errors.duplicate()
        if (
            clean.get("eventType", "default") not in EVENT_TYPES
            or clean.get("eventType") == "fromGmail"
        ):
            raise errors.ApiError(400, "global", "invalid", "Invalid event type.")
        validate_times(clean)
        clean["updated"] = clean["created"] = to_rfc3339_ms(now)
        full = complete_new(store, cal, clean, user.email, now)
        return dict(_commit(store, cal, full, now, None).body)


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    master, sep, suffix = event_id.rpartition("_")
    if not sep or not master or not re.fullmatch(r"\d{8}(T\d{6}Z)?", suffix):
        return None
    return master, suffix


def find_occurrence(
    cal: CalendarRecord, master: EventRecord, instance_id: str
) -> recurrence.Occurrence | None:
    parts = split_instance_id(instance_id)
    if parts is None or parts[0] != master.body.get("id"):
        return None
    suffix = parts[1]
    if "T" in suffix:
        at = datetime.strptime(suffix, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        after, until = at - timedelta(seconds=1), at + timedelta(seconds=1)
    else:
        day = datetime.strptime(suffix, "%Y%m%d").replace(tzinfo=UTC)
        after, until = day - timedelta(days=2), day + timedelta(days=2)
    for occ in recurrence.expand(master.body, until=until, after=after, default_tz=cal.time_zone):
        if occ.instance_id == instance_id:
            return occ
    return None


def _virtual_instance(cal: CalendarRecord, event_id: str) -> dict[str, Any] | None:
    parts = split_instance_id(event_id)
    if parts is None:
        return None
    master = cal.events.get(parts[0])
    if master is None or not master.is_master:
        return None
    occ = find_occurrence(cal, master, event_id)
    if occ is None:
        return None
    body = instance_body(master.body, occ)
    if master.cancelled:
        body["status"] = "cancelled"
    return body


def lookup(cal: CalendarRecord, event_id: str) -> tuple[dict[str, Any], EventRecord | None]:
    """The current body of an event or instance (tombstones included), or 404."""
    record = cal.events.get(event_id)
    if record is not None:
        return record.body, record
    virtual = _virtual_instance(cal, event_id)
    if virtual is None:
        raise errors.not_found()
    return virtual, None


def get_event(store: Store, user: UserRecord, calendar_id: str, event_id: str) -> dict[str, Any]:
    with store.lock:
        cal, _ = resolve_calendar(store, user, calendar_id)
        return dict(lookup(cal, event_id)[0])


def _check_if_match(current: Mapping[str, Any], if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", current.get("etag")):
        raise errors.condition_not_met()


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif (
            key not in ("start", "end", "originalStartTime")
            and isinstance(value, dict)
            and isinstance(out.get(key), dict)
        ):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _differs(old: Mapping[str, Any], new: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    return any(old.get(k) != new.get(k) for k in keys)


def write_event(
    store: Store,
    user: UserRecord,
    calendar_id: str,
    event_id: str,
    body: Mapping[str, Any],
    now: datetime,
    *,
    patch: bool,
    if_match: str | None = None,
) -> dict[str, Any]:
    """events.update (``patch=False``) and events.patch, on events, masters and instances."""
    with store.lock:
        cal, _ = resolve_calendar(store, user, calendar_id, write=True)
        current, record = lookup(cal, event_id)
        _check_if_match(current, if_match)
        incoming = {k: v for k, v in body.items() if k not in _READ_ONLY}
        if patch:
            new = _merge(current, incoming)
        else:
            new = dict(incoming)
            for key in ("reminders",):
                new.setdefault(key, current.get(key, {"useDefault": True}))
        for key in _IMMUTABLE:
            if key in current:
                new[key] = current[key]
            else:
                new.pop(key, None)
        new["kind"] = "calendar#event"
        new.setdefault("status", "confirmed")
        new.setdefault("htmlLink", current.get("htmlLink"))
        if new.get("recurringEventId"):
            new.pop("recurrence", None)
        validate_times(new)
        meta = ("etag", "updated", "sequence", "reminders", "htmlLink")
        main_keys = tuple(sorted((set(new) | set(current)) - set(meta)))
        reminder_only = (
            record is not None
            and not _differs(current, new, main_keys)
            and (current.get("reminders") != new.get("reminders"))
        )
        sequence = max(int(current.get("sequence", 0)), int(new.get("sequence", 0) or 0))
        if _differs(current, new, _TIME_KEYS):
            sequence += 1
        new["sequence"] = sequence
        prev = current.get("updated") if isinstance(current.get("updated"), str) else None
        new["updated"] = prev if (reminder_only and prev) else _stamp(now, prev)
        saved = _commit(store, cal, new, now, record, reminder_only=reminder_only)
        if saved.is_master and record is not None and _differs(current, new, _TIME_KEYS):
            _drop_orphan_exceptions(store, cal, saved, now)
        return dict(saved.body)


def _drop_orphan_exceptions(
    store: Store, cal: CalendarRecord, master: EventRecord, now: datetime
) -> None:
    """After a series edit, exceptions whose occurrence no longer exists are cancelled."""
    for exc_id in sorted(cal.exceptions.get(str(master.body["id"]), set())):
        exc = cal.events.get(exc_id)
        if exc is None or exc.cancelled or find_occurrence(cal, master, exc_id) is not None:
            continue
        _cancel(store, cal, exc.body, exc, now)


def _cancel(
    store: Store,
    cal: CalendarRecord,
    body: Mapping[str, Any],
    record: EventRecord | None,
    now: datetime,
) -> EventRecord:
    new = dict(body)
    new["status"] = "cancelled"
    prev = body.get("updated") if isinstance(body.get("updated"), str) else None
    new["updated"] = _stamp(now, prev)
    return _commit(store, cal, new, now, record)


def delete_event(
    store: Store,
    user: UserRecord,
    calendar_id: str,
    event_id: str,
    now: datetime,
    *,
    if_match: str | None = None,
) -> None:
    with store.lock:
        cal, _ = resolve_calendar(store, user, calendar_id, write=True)
        current, record = lookup(cal, event_id)
        if current.get("status") == "cancelled":
            raise errors.deleted()
        _check_if_match(current, if_match)
        saved = _cancel(store, cal, current, record, now)
        if saved.is_master:
            for exc_id in sorted(cal.exceptions.get(event_id, set())):
                exc = cal.events.get(exc_id)
                if exc is not None:
                    _cancel(store, cal, exc.body, exc, now)
