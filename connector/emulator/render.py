"""What a client sees of a stored event: full form, minimal tombstone, synthesised instance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.emulator import recurrence
from connector.emulator.times import render_edt

_INSTANCE_DROP = ("recurrence", "id", "start", "end")


def render_event(
    body: Mapping[str, Any],
    *,
    time_zone: str | None = None,
    max_attendees: int | None = None,
    viewer: str | None = None,
) -> dict[str, Any]:
    out = dict(body)
    if time_zone is not None:
        for key in ("start", "end", "originalStartTime"):
            if key in out:
                out[key] = render_edt(out[key], time_zone)
    if viewer is not None:
        for key in ("organizer", "creator"):
            person = out.get(key)
            if isinstance(person, dict) and person.get("email") == viewer:
                out[key] = {**person, "self": True}
    attendees = out.get("attendees")
    if isinstance(attendees, list):
        if viewer is not None:
            attendees = [
                {**a, "self": True} if isinstance(a, dict) and a.get("email") == viewer else a
                for a in attendees
            ]
        if max_attendees is not None and len(attendees) > max_attendees:
            attendees = [a for a in attendees if isinstance(a, dict) and a.get("self")]
            out["attendeesOmitted"] = True
        out["attendees"] = attendees
    return out


def tombstone(body: Mapping[str, Any]) -> dict[str, Any]:
    """Google's minimal shape of a cancelled item (reference section 3.1 and 12)."""
    out: dict[str, Any] = {"kind": "calendar#event"}
    for key in ("etag", "id", "status", "updated", "recurringEventId", "originalStartTime"):
        if key in body:
            out[key] = body[key]
    out["status"] = "cancelled"
    return out


def instance_body(master: Mapping[str, Any], occ: recurrence.Occurrence) -> dict[str, Any]:
    """An unmodified occurrence of ``master`` as Google returns it."""
    out = {k: v for k, v in master.items() if k not in _INSTANCE_DROP}
    out["id"] = occ.instance_id
    out["recurringEventId"] = master["id"]
    out["originalStartTime"] = dict(occ.original_start)
    out["start"] = dict(occ.start)
    out["end"] = dict(occ.end)
    return out


def text_matches(body: Mapping[str, Any], query: str) -> bool:
    """events.list ``q``: case-insensitive match over the fields Google searches."""
    needle = query.lower()
    hay: list[str] = []
    for key in ("summary", "description", "location"):
        value = body.get(key)
        if isinstance(value, str):
            hay.append(value)
    people: list[Any] = [body.get("organizer"), *(body.get("attendees") or [])]
    for person in people:
        if isinstance(person, dict):
            hay.extend(str(person.get(k, "")) for k in ("displayName", "email"))
    text = " ".join(hay).lower()
    return all(word in text for word in needle.split())


def extended_matches(body: Mapping[str, Any], scope: str, constraints: list[str]) -> bool:
    props = body.get("extendedProperties")
    values = props.get(scope, {}) if isinstance(props, dict) else {}
    for item in constraints:
        name, _, value = item.partition("=")
        if not isinstance(values, dict) or values.get(name) != value:
            return False
    return True
