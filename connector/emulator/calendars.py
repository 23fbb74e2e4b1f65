"""calendarList.list/get, calendars.get/insert/delete, and loading a dataset into the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connector.emulator import errors, params
from connector.emulator.clock import parse_rfc3339, to_ms, to_rfc3339_ms
from connector.emulator.events import complete_new, etag_for, resolve_calendar
from connector.emulator.paging import page_of, page_state
from connector.emulator.store import (
    ROLE_RANK,
    CalendarRecord,
    ListEntry,
    Store,
    UserRecord,
    role_at_least,
)
from connector.emulator.tokens import TokenCodec, TokenError, fingerprint

LIST_MAX = 250
_ENTRY_KEYS = (
    "summaryOverride",
    "colorId",
    "backgroundColor",
    "foregroundColor",
    "notificationSettings",
    "conferenceProperties",
)


def render_entry(store: Store, entry: ListEntry) -> dict[str, Any]:
    etag = f'"{entry.seq}"'
    if entry.deleted:
        return {
            "kind": "calendar#calendarListEntry",
            "etag": etag,
            "id": entry.calendar_id,
            "deleted": True,
        }
    cal = store.calendars[entry.calendar_id]
    out: dict[str, Any] = {
        "kind": "calendar#calendarListEntry",
        "etag": etag,
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
    }
    if cal.description:
        out["description"] = cal.description
    if cal.location:
        out["location"] = cal.location
    out.update({k: v for k, v in entry.extra.items() if k in _ENTRY_KEYS})
    out.setdefault("colorId", "14")
    out.setdefault("backgroundColor", "#9fe1e7")
    out.setdefault("foregroundColor", "#000000")
    out["accessRole"] = entry.access_role
    out["defaultReminders"] = list(cal.default_reminders)
    out["selected"] = entry.selected
    if entry.hidden:
        out["hidden"] = True
    if entry.primary:
        out["primary"] = True
    if not entry.primary and cal.owner and entry.access_role == "owner":
        out["dataOwner"] = cal.owner
    return out


def _check_list_sync_token(
    store: Store, user: UserRecord, codec: TokenCodec, token: str, now: datetime
) -> int:
    try:
        payload = codec.decode(token)
    except TokenError:
        raise errors.full_sync_required() from None
    expected = {
        "k": "cs",
        "g": store.generation,
        "u": fingerprint({"u": user.email}),
        "ep": user.list_epoch,
    }
    if (
        any(payload.get(k) != v for k, v in expected.items())
        or not isinstance(payload.get("s"), int)
        or not isinstance(payload.get("t"), int)
    ):
        raise errors.full_sync_required()
    if to_ms(now) - int(payload["t"]) > store.config.tombstone_horizon * 1000:
        raise errors.full_sync_required()
    return int(payload["s"])


def list_calendar_list(
    store: Store, user: UserRecord, raw: params.Params, now: datetime, codec: TokenCodec
) -> dict[str, Any]:
    with store.lock:
        limit = min(
            params.integer(raw, "maxResults") or store.config.calendar_list_default, LIST_MAX
        )
        min_role = params.enum(raw, "minAccessRole", tuple(r for r in ROLE_RANK if r != "none"))
        show_deleted = params.boolean(raw, "showDeleted")
        show_hidden = params.boolean(raw, "showHidden")
        sync_token = params.one(raw, "syncToken")
        base = None
        if sync_token is not None:
            if min_role is not None or show_deleted is False or show_hidden is False:
                raise errors.sync_token_restrictions()
            base = _check_list_sync_token(store, user, codec, sync_token, now)
        ignored = ("pageToken", "maxResults", "alt", "prettyPrint", "fields", "quotaUser")
        page_fp = fingerprint({k: v for k, v in raw.items() if k not in ignored})
        state = page_state(store, codec, params.one(raw, "pageToken"), "cp", page_fp) or {
            "s": store.seq,
            "c": None,
        }
        entries = sorted(user.entries.values(), key=lambda e: e.seq)
        keyed = []
        for entry in entries:
            if base is not None:
                if entry.seq <= base:
                    continue
            else:
                if entry.deleted and not show_deleted:
                    continue
                if entry.hidden and not show_hidden:
                    continue
                if min_role is not None and not role_at_least(entry.access_role, min_role):
                    continue
            if not entry.deleted and entry.calendar_id not in store.calendars:
                continue
            keyed.append(((entry.seq,), render_entry(store, entry)))
        items, cursor, done = page_of(keyed, state["c"], limit)
        out: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "etag": f'"{store.seq}"',
            "items": items,
        }
        if done:
            out["nextSyncToken"] = codec.encode(
                {
                    "k": "cs",
                    "g": store.generation,
                    "u": fingerprint({"u": user.email}),
                    "ep": user.list_epoch,
                    "s": state["s"],
                    "t": to_ms(now),
                }
            )
        else:
            out["nextPageToken"] = codec.encode(
                {"k": "cp", "f": page_fp, "g": store.generation, "s": state["s"], "c": cursor}
            )
        return out


def get_calendar_list_entry(store: Store, user: UserRecord, calendar_id: str) -> dict[str, Any]:
    with store.lock:
        _, entry = resolve_calendar(store, user, calendar_id)
        return render_entry(store, entry)


def render_calendar(cal: CalendarRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": "calendar#calendar",
        "etag": f'"{to_ms(cal.updated)}"',
        "id": cal.id,
        "summary": cal.summary,
        "timeZone": cal.time_zone,
        "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
    }
    if cal.description:
        out["description"] = cal.description
    if cal.location:
        out["location"] = cal.location
    if cal.owner and cal.primary_of is None:
        out["dataOwner"] = cal.owner
    return out


def get_calendar(store: Store, user: UserRecord, calendar_id: str) -> dict[str, Any]:
    with store.lock:
        cal, _ = resolve_calendar(store, user, calendar_id)
        return render_calendar(cal)


def insert_calendar(
    store: Store, user: UserRecord, body: dict[str, Any], now: datetime
) -> dict[str, Any]:
    summary = body.get("summary")
    if not isinstance(summary, str) or not summary:
        raise errors.required("Missing summary.")
    tz = body.get("timeZone") or store.calendars[user.primary_id].time_zone
    with store.lock:
        cal = CalendarRecord(
            f"{store.new_id()}@group.calendar.google.com",
            summary,
            str(tz),
            description=body.get("description"),
            location=body.get("location"),
            owner=user.email,
            updated=now,
        )
        store.add_calendar(cal)
        store.put_entry(user, cal.id, access_role="owner")
        return render_calendar(cal)


def delete_calendar(store: Store, user: UserRecord, calendar_id: str) -> None:
    with store.lock:
        cal, entry = resolve_calendar(store, user, calendar_id)
        if cal.primary_of is not None:
            raise errors.ApiError(
                400, "global", "cannotDeletePrimaryCalendar", "Cannot delete primary calendar."
            )
        if entry.access_role != "owner":
            raise errors.ApiError(403, "global", "forbidden", "Forbidden")
        store.remove_calendar(cal)


def seed(store: Store, dataset: dict[str, Any], now: datetime) -> None:
    """Replace the store's content by a dataset (format in docs/architecture.md)."""
    with store.lock:
        store.clear()
        for u in dataset.get("users", []):
            email = str(u["email"])
            user = store.add_user(email, u.get("refreshToken"))
            for c in u.get("calendars", []):
                cid = str(c.get("id") or email)
                primary = bool(c.get("primary", cid == email))
                cal = store.calendars.get(cid) or store.add_calendar(
                    CalendarRecord(
                        cid,
                        str(c.get("summary", cid)),
                        str(c.get("timeZone", "UTC")),
                        description=c.get("description"),
                        location=c.get("location"),
                        owner=email if c.get("accessRole", "owner") == "owner" else None,
                        primary_of=email if primary else None,
                        default_reminders=list(c.get("defaultReminders", [])),
                        updated=now,
                    )
                )
                if primary:
                    user.primary_id = cid
                extra = {k: c[k] for k in _ENTRY_KEYS if k in c}
                store.put_entry(
                    user,
                    cid,
                    access_role=str(c.get("accessRole", "owner")),
                    primary=primary,
                    hidden=bool(c.get("hidden", False)),
                    selected=bool(c.get("selected", True)),
                    extra=extra,
                )
                if not cal.events:
                    for body in c.get("events", []):
                        _seed_event(store, cal, body, email, now)
            if user.primary_id not in store.calendars:
                _ensure_primary(store, user, now)


def _seed_event(
    store: Store, cal: CalendarRecord, body: dict[str, Any], creator: str, now: datetime
) -> None:
    full = complete_new(store, cal, body, creator, now)
    full["etag"] = etag_for(full["updated"], 0)
    parse_rfc3339(full["updated"])
    store.commit_event(cal, full, now)


def _ensure_primary(store: Store, user: UserRecord, now: datetime) -> None:
    cal = store.add_calendar(
        CalendarRecord(
            user.email, user.email, "UTC", owner=user.email, primary_of=user.email, updated=now
        )
    )
    user.primary_id = cal.id
    store.put_entry(user, cal.id, access_role="owner", primary=True)


def ensure_user(store: Store, email: str, now: datetime) -> UserRecord:
    with store.lock:
        user = store.add_user(email)
        if user.primary_id not in store.calendars:
            _ensure_primary(store, user, now)
        return user


def state_summary(store: Store) -> dict[str, Any]:
    with store.lock:
        return {
            "generation": store.generation,
            "seq": store.seq,
            "users": {
                u.email: {
                    "calendars": [e.calendar_id for e in u.entries.values() if not e.deleted],
                    "revoked": u.revoked,
                    "refreshToken": u.refresh_token,
                }
                for u in store.users.values()
            },
            "calendars": {
                c.id: {
                    "events": len(c.events),
                    "tombstones": sum(1 for e in c.events.values() if e.cancelled),
                    "version": c.version,
                    "updated": to_rfc3339_ms(c.updated),
                }
                for c in store.calendars.values()
            },
        }
