"""Google Event JSON <-> the typed Avro ``CalendarEvent`` record, losslessly.

The shape of the Google Event resource is written down once, in ``EVENT_SPEC`` (it mirrors the
``Event`` schema of the Calendar v3 discovery document; a unit test compares the two). The Avro
schema is generated from it and both converters are driven by it.

Lossless means ``from_calendar_event(to_calendar_event(x)) == x`` for every JSON object ``x`` with
a string ``id``. A known field goes into its typed Avro field only if its JSON value has the
expected type; anything else (fields the spec does not know, ``null`` values, a string where a
number was expected, a list where an object was expected, strings Avro cannot carry such as lone
surrogates, integers beyond int64) is kept as JSON in the ``unknown_fields`` string of the record
it appeared in, at any depth. Avro ``null`` always means "absent in the Google JSON".

The converters return sparse dicts (absent fields are simply missing); fastavro writes a missing
field as its default, null. Records decoded by fastavro carry every field, None when absent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.errors import UnmappableItemError

UNKNOWN_FIELDS = "unknown_fields"

STRING = "string"
BOOLEAN = "boolean"
LONG = "long"
ANY = "any"  # any JSON value, carried as a JSON string


@dataclass(frozen=True, slots=True)
class Rec:
    """A JSON object with known properties; an Avro record with ``unknown_fields``."""

    name: str
    fields: tuple[tuple[str, Kind], ...]


@dataclass(frozen=True, slots=True)
class Arr:
    items: Kind


@dataclass(frozen=True, slots=True)
class StrMap:
    """A JSON object of string values (``additionalProperties: string``); an Avro map."""


Kind = str | Rec | Arr | StrMap


def _rec(record_name: str, /, **fields: Kind) -> Rec:
    return Rec(record_name, tuple(fields.items()))


_S, _B, _L = STRING, BOOLEAN, LONG
_DATE_TIME = _rec("EventDateTime", date=_S, dateTime=_S, timeZone=_S)
_SOLUTION_KEY = _rec("ConferenceSolutionKey", type=_S)
_PERSON = {"displayName": _S, "email": _S, "id": _S, "self": _B}

EVENT_SPEC = _rec(
    "CalendarEvent",
    anyoneCanAddSelf=_B,
    attachments=Arr(
        _rec("EventAttachment", fileId=_S, fileUrl=_S, iconLink=_S, mimeType=_S, title=_S)
    ),
    attendees=Arr(
        _rec(
            "EventAttendee",
            additionalGuests=_L,
            asyncOperation=_S,
            comment=_S,
            displayName=_S,
            email=_S,
            id=_S,
            optional=_B,
            organizer=_B,
            resource=_B,
            responseStatus=_S,
            self=_B,
        )
    ),
    attendeesOmitted=_B,
    birthdayProperties=_rec("EventBirthdayProperties", contact=_S, customTypeName=_S, type=_S),
    colorId=_S,
    conferenceData=_rec(
        "ConferenceData",
        conferenceId=_S,
        conferenceSolution=_rec("ConferenceSolution", iconUri=_S, key=_SOLUTION_KEY, name=_S),
        createRequest=_rec(
            "CreateConferenceRequest",
            conferenceSolutionKey=_SOLUTION_KEY,
            requestId=_S,
            status=_rec("ConferenceRequestStatus", statusCode=_S),
        ),
        entryPoints=Arr(
            _rec(
                "EntryPoint",
                accessCode=_S,
                entryPointFeatures=Arr(_S),
                entryPointType=_S,
                label=_S,
                meetingCode=_S,
                passcode=_S,
                password=_S,
                pin=_S,
                regionCode=_S,
                uri=_S,
            )
        ),
        notes=_S,
        parameters=_rec(
            "ConferenceParameters",
            addOnParameters=_rec("ConferenceParametersAddOnParameters", parameters=StrMap()),
        ),
        signature=_S,
    ),
    created=_S,
    creator=_rec("EventCreator", **_PERSON),
    description=_S,
    end=_DATE_TIME,
    endTimeUnspecified=_B,
    etag=_S,
    eventLabelId=_S,
    eventType=_S,
    extendedProperties=_rec("EventExtendedProperties", private=StrMap(), shared=StrMap()),
    focusTimeProperties=_rec(
        "EventFocusTimeProperties", autoDeclineMode=_S, chatStatus=_S, declineMessage=_S
    ),
    gadget=_rec(
        "EventGadget",
        display=_S,
        height=_L,
        iconLink=_S,
        link=_S,
        preferences=StrMap(),
        title=_S,
        type=_S,
        width=_L,
    ),
    guestsCanInviteOthers=_B,
    guestsCanModify=_B,
    guestsCanSeeOtherGuests=_B,
    hangoutLink=_S,
    htmlLink=_S,
    iCalUID=_S,
    id=_S,
    kind=_S,
    location=_S,
    locked=_B,
    organizer=_rec("EventOrganizer", **_PERSON),
    originalStartTime=_DATE_TIME,
    outOfOfficeProperties=_rec("EventOutOfOfficeProperties", autoDeclineMode=_S, declineMessage=_S),
    privateCopy=_B,
    recurrence=Arr(_S),
    recurringEventId=_S,
    reminders=_rec(
        "EventReminders",
        overrides=Arr(_rec("EventReminder", method=_S, minutes=_L)),
        useDefault=_B,
    ),
    sequence=_L,
    source=_rec("EventSource", title=_S, url=_S),
    start=_DATE_TIME,
    status=_S,
    summary=_S,
    transparency=_S,
    updated=_S,
    visibility=_S,
    workingLocationProperties=_rec(
        "EventWorkingLocationProperties",
        customLocation=_rec("WorkingLocationCustomLocation", label=_S),
        homeOffice=ANY,
        officeLocation=_rec(
            "WorkingLocationOfficeLocation",
            buildingId=_S,
            deskId=_S,
            floorId=_S,
            floorSectionId=_S,
            label=_S,
        ),
        type=_S,
    ),
)

_MIN_LONG, _MAX_LONG = -(2**63), 2**63 - 1
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_loads = json.loads


def _is_utf8(s: str) -> bool:
    """Avro strings are UTF-8: lone surrogates (legal in JSON escapes) cannot be carried."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_str(v: Any) -> bool:
    return type(v) is str and (v.isascii() or _is_utf8(v))


def _is_str_map(v: Any) -> bool:
    return isinstance(v, dict) and all(_is_str(k) and _is_str(x) for k, x in v.items())


def is_valid(kind: Kind, value: Any) -> bool:
    """Whether ``value`` goes into the typed Avro field of ``kind`` (else into unknown_fields)."""
    if kind == STRING:
        return _is_str(value)
    if kind == BOOLEAN:
        return type(value) is bool
    if kind == LONG:
        return type(value) is int and _MIN_LONG <= value <= _MAX_LONG
    if kind == ANY:
        return value is not None
    if isinstance(kind, Rec):
        return isinstance(value, dict)
    if isinstance(kind, StrMap):
        return _is_str_map(value)
    if isinstance(kind, Arr) and type(value) is list:
        return all(is_valid(kind.items, x) for x in value)
    return False


# A compiled record: JSON name -> (kind code, sub-table). Codes keep the hot loop branch-cheap.
_C_STR, _C_BOOL, _C_LONG, _C_ANY, _C_REC, _C_MAP, _C_STRS, _C_RECS = range(8)
_Table = dict[str, tuple[int, Any]]


def _compile(rec: Rec) -> _Table:
    table: _Table = {}
    for name, kind in rec.fields:
        if kind == STRING:
            table[name] = (_C_STR, None)
        elif kind == BOOLEAN:
            table[name] = (_C_BOOL, None)
        elif kind == LONG:
            table[name] = (_C_LONG, None)
        elif kind == ANY:
            table[name] = (_C_ANY, None)
        elif isinstance(kind, Rec):
            table[name] = (_C_REC, _compile(kind))
        elif isinstance(kind, StrMap):
            table[name] = (_C_MAP, None)
        elif isinstance(kind, Arr) and kind.items == STRING:
            table[name] = (_C_STRS, None)
        elif isinstance(kind, Arr) and isinstance(kind.items, Rec):
            table[name] = (_C_RECS, _compile(kind.items))
        else:  # pragma: no cover - the spec is static
            raise TypeError(f"unsupported kind for {rec.name}.{name}: {kind!r}")
    return table


_EVENT_TABLE = _compile(EVENT_SPEC)


def _to_record(obj: Mapping[str, Any], table: _Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unknown: dict[str, Any] | None = None
    for k, v in obj.items():
        entry = table.get(k)
        if entry is not None:
            code, sub = entry
            if code == _C_STR:
                if type(v) is str and (v.isascii() or _is_utf8(v)):
                    out[k] = v
                    continue
            elif code == _C_BOOL:
                if type(v) is bool:
                    out[k] = v
                    continue
            elif code == _C_LONG:
                if type(v) is int and _MIN_LONG <= v <= _MAX_LONG:
                    out[k] = v
                    continue
            elif code == _C_REC:
                if isinstance(v, dict):
                    out[k] = _to_record(v, sub)
                    continue
            elif code == _C_RECS:
                if type(v) is list and all(isinstance(x, dict) for x in v):
                    out[k] = [_to_record(x, sub) for x in v]
                    continue
            elif code == _C_STRS:
                if type(v) is list and all(_is_str(x) for x in v):
                    out[k] = v
                    continue
            elif code == _C_MAP:
                if _is_str_map(v):
                    out[k] = v
                    continue
            elif v is not None:  # _C_ANY: JSON null is kept as an unknown, not as "absent"
                out[k] = _dumps(v)
                continue
        if unknown is None:
            unknown = {}
        unknown[k] = v
    if unknown:
        out[UNKNOWN_FIELDS] = _dumps(unknown)
    return out


def _from_record(rec: Mapping[str, Any], table: _Table) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if v is None:
            continue
        entry = table.get(k)
        if entry is None:
            continue  # unknown_fields, merged below
        code, sub = entry
        if code == _C_REC:
            out[k] = _from_record(v, sub)
        elif code == _C_RECS:
            out[k] = [_from_record(x, sub) for x in v]
        elif code == _C_ANY:
            out[k] = _loads(v)
        elif code == _C_STRS:
            out[k] = list(v)
        elif code == _C_MAP:
            out[k] = dict(v)
        else:
            out[k] = v
    extra = rec.get(UNKNOWN_FIELDS)
    if extra is not None:
        out.update(_loads(extra))
    return out


def to_calendar_event(item: Mapping[str, Any]) -> dict[str, Any]:
    """Map one Google Event JSON object to a ``CalendarEvent`` Avro record dict.

    Raises UnmappableItemError only if ``item`` is not a JSON object or has no string ``id``.
    """
    if not isinstance(item, Mapping):
        raise UnmappableItemError(f"item is a {type(item).__name__}, not a JSON object")
    event_id = item.get("id")
    if type(event_id) is not str:
        raise UnmappableItemError("item has no string id", field="id")
    return _to_record(item, _EVENT_TABLE)


def from_calendar_event(record: Mapping[str, Any]) -> dict[str, Any]:
    """Rebuild the exact Google Event JSON object from a ``CalendarEvent`` record dict."""
    return _from_record(record, _EVENT_TABLE)


def event_id_of(item: Mapping[str, Any]) -> str:
    """The item's ``id``; raises UnmappableItemError if it has none."""
    event_id = item.get("id") if isinstance(item, Mapping) else None
    if type(event_id) is not str:
        raise UnmappableItemError("item has no string id", field="id")
    return event_id


def is_cancelled(item: Mapping[str, Any]) -> bool:
    return item.get("status") == "cancelled"


def is_instance_exception(item: Mapping[str, Any]) -> bool:
    """True for an instance of a recurring series (modified or cancelled occurrence)."""
    return type(item.get("recurringEventId")) is str


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def source_updated_ms(item: Mapping[str, Any]) -> int | None:
    """Google's ``updated`` (RFC 3339) in epoch milliseconds, or None if absent or unparsable."""
    value = item.get("updated")
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // _MS
