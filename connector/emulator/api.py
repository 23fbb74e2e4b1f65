"""Routing of Calendar API v3 requests to the operations, independent of the HTTP server.

Paths are matched after an optional ``/calendar/v3`` prefix, so the API is served both under
``/calendar/v3/`` and at the root. Each route has Google's method name (``events.list``), which
fault injection, latency and the request log use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from connector.emulator import calendars, errors, events, listing, params
from connector.emulator.render import render_event
from connector.emulator.store import UserRecord

if TYPE_CHECKING:
    from connector.emulator.app import Emulator


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    out = {"Content-Type": "application/json; charset=UTF-8"}
    out.update(headers or {})
    return Response(status, body, out)


def error_response(exc: errors.ApiError) -> Response:
    return json_response(exc.status, exc.body())


def match_route(method: str, segments: list[str]) -> tuple[str, list[str]] | None:
    """The Google method name and path arguments for a request, or None."""
    s = segments[2:] if segments[:2] == ["calendar", "v3"] else segments
    n = len(s)
    if n >= 1 and s[0] == "calendars":
        if n == 1 and method == "POST":
            return "calendars.insert", []
        if n == 2:
            return {"GET": ("calendars.get", [s[1]]), "DELETE": ("calendars.delete", [s[1]])}.get(
                method
            )
        if n == 3 and s[2] == "events":
            return {"GET": ("events.list", [s[1]]), "POST": ("events.insert", [s[1]])}.get(method)
        if n == 4 and s[2] == "events":
            if s[3] == "watch" and method == "POST":
                return "events.watch", [s[1]]
            names = {
                "GET": "events.get",
                "PUT": "events.update",
                "PATCH": "events.patch",
                "DELETE": "events.delete",
            }
            return (names[method], [s[1], s[3]]) if method in names else None
        if n == 5 and s[2] == "events" and s[4] == "instances" and method == "GET":
            return "events.instances", [s[1], s[3]]
        return None
    if s[:3] == ["users", "me", "calendarList"]:
        if n == 3 and method == "GET":
            return "calendarList.list", []
        if n == 4 and s[3] == "watch" and method == "POST":
            return "calendarList.watch", []
        if n == 4 and method == "GET":
            return "calendarList.get", [s[3]]
        return None
    if s == ["channels", "stop"] and method == "POST":
        return "channels.stop", []
    return None


def _json_body(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError:
        raise errors.ApiError(400, "global", "parseError", "Parse Error") from None
    if not isinstance(value, dict):
        raise errors.ApiError(400, "global", "parseError", "Parse Error")
    return value


def _ttl(body: Mapping[str, Any]) -> int | None:
    raw = body.get("params", {}).get("ttl") if isinstance(body.get("params"), dict) else None
    if raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise errors.invalid_param("params.ttl") from None


def call(
    emu: Emulator,
    route: str,
    args: list[str],
    user: UserRecord,
    query: params.Params,
    headers: Mapping[str, str],
    body: bytes,
) -> Response:
    now = emu.clock.now()
    store = emu.store
    if route == "events.list":
        return json_response(
            200, listing.list_events(store, user, args[0], query, now, emu.codec, emu.cache)
        )
    if route == "events.instances":
        return json_response(
            200,
            listing.list_instances(store, user, args[0], args[1], query, now, emu.codec, emu.cache),
        )
    if route == "events.get":
        event = events.get_event(store, user, args[0], args[1])
        if headers.get("if-none-match") in (event.get("etag"), "*"):
            return Response(304)
        tz = params.time_zone(query)
        return json_response(
            200,
            render_event(
                event,
                time_zone=tz,
                max_attendees=params.integer(query, "maxAttendees"),
                viewer=user.email,
            ),
        )
    if route == "events.insert":
        return json_response(200, events.insert_event(store, user, args[0], _json_body(body), now))
    if route in ("events.update", "events.patch"):
        return json_response(
            200,
            events.write_event(
                store,
                user,
                args[0],
                args[1],
                _json_body(body),
                now,
                patch=route == "events.patch",
                if_match=headers.get("if-match"),
            ),
        )
    if route == "events.delete":
        events.delete_event(store, user, args[0], args[1], now, if_match=headers.get("if-match"))
        return Response(204)
    if route == "events.watch":
        cal, _ = events.resolve_calendar(store, user, args[0])
        uri = f"{emu.base_url}/calendar/v3/calendars/{quote(cal.id, safe='@')}/events?alt=json"
        payload = _json_body(body)
        return json_response(
            200,
            emu.push.watch(
                user=user.email,
                kind="events",
                key=cal.id,
                resource_uri=uri,
                body=payload,
                ttl=_ttl(payload),
            ),
        )
    if route == "calendarList.list":
        return json_response(200, calendars.list_calendar_list(store, user, query, now, emu.codec))
    if route == "calendarList.get":
        return json_response(200, calendars.get_calendar_list_entry(store, user, args[0]))
    if route == "calendarList.watch":
        payload = _json_body(body)
        uri = f"{emu.base_url}/calendar/v3/users/me/calendarList?alt=json"
        return json_response(
            200,
            emu.push.watch(
                user=user.email,
                kind="calendarList",
                key=user.email,
                resource_uri=uri,
                body=payload,
                ttl=_ttl(payload),
            ),
        )
    if route == "calendars.get":
        return json_response(200, calendars.get_calendar(store, user, args[0]))
    if route == "calendars.insert":
        return json_response(200, calendars.insert_calendar(store, user, _json_body(body), now))
    if route == "calendars.delete":
        calendars.delete_calendar(store, user, args[0])
        return Response(204)
    if route == "channels.stop":
        emu.push.stop(_json_body(body))
        return Response(204)
    raise errors.not_found()
