"""Datasets for the emulator (format in docs/architecture.md, "Emulator dataset format").

``sample_dataset`` is a small hand-written world that exercises every kind of event a sync sees
(time zones, all-day and multi-day events, recurring series with EXDATE and exceptions, a shared
calendar); ``generate_dataset`` is a large, seeded, realistic mix for benchmarks. Both are pure
functions of their arguments: the same input gives the same JSON.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from connector.emulator.recurrence import expand

TEAM = "team@group.calendar.google.com"
T = TypeVar("T")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def event_id(*parts: object) -> str:
    """A deterministic client-chosen id: 26 base32hex characters (Google's own length)."""
    digest = hashlib.sha1(":".join(map(str, parts)).encode(), usedforsecurity=False).digest()
    return base64.b32hexencode(digest).decode().lower()[:26]


_PEOPLE = {"alice": "Alice Adler", "bob": "Bob Brown", "carol": "Carol Chen"}
_BER, _NYC, _TYO, _LON = "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London"
_TWO_REMINDERS = [{"method": "email", "minutes": 1440}, {"method": "popup", "minutes": 60}]
# fmt: off
# Single timed events: (calendar, key, summary, days from today, hour, minute, minutes, extras)
_TIMED: list[tuple[str, str, str, int, int, int, int, dict[str, Any]]] = [
    ("alice", "dentist", "Dentist", 3, 16, 0, 45,
     {"location": "Praxis Dr. Weber, Kastanienallee 12, 10435 Berlin",
      "reminders": {"useDefault": False, "overrides": _TWO_REMINDERS}}),
    ("alice", "lunch", "Lunch with Bob", -2, 12, 30, 60,
     {"location": "Markthalle Neun", "attendees": "alice bob"}),
    ("alice", "review", "1:1 review", 1, 14, 0, 30,
     {"description": "LOREM", "attendees": "alice carol:needsAction", "conferenceData": 1}),
    ("alice", "focus", "Focus: write the quarterly plan", 0, 8, 0, 120, {"visibility": "private"}),
    ("alice", "tentative", "Maybe: book club", 5, 19, 0, 90,
     {"status": "tentative", "location": "Café Einstein"}),
    ("team", "retro", "Sprint retro", -7, 10, 0, 60, {"attendees": "alice bob carol"}),
    ("team", "allhands", "All-hands", 8, 8, 30, 60, {"conferenceData": 1}),
    ("bob", "bobgym", "Gym", -1, 7, 0, 60, {"location": "Equinox Hudson Yards"}),
    ("bob", "bobcall", "Client call", 0, 11, 0, 30, {"conferenceData": 1}),
    ("bob", "bobkids", "Pick up kids", 1, 15, 0, 30, {}),
    ("bob", "bobdesign", "Design review", 2, 13, 0, 90,
     {"location": "Room 4B", "attendees": "bob alice:declined carol:tentative"}),
    ("bob", "bobdinner", "Dinner with Sam", 4, 19, 0, 120, {"location": "Via Carota, 51 Grove St"}),
    ("carol", "carolcall", "Call with Berlin", 1, 17, 0, 45,
     {"attendees": "carol alice", "conferenceData": 1}),
    ("carol", "carolhanami", "Hanami picnic", 6, 12, 0, 180,
     {"location": "Shinjuku Gyoen National Garden"}),
]
# All-day events: (calendar, key, summary, days from today, length in days, extras)
_ALL_DAY: list[tuple[str, str, str, int, int, dict[str, Any]]] = [
    ("alice", "holiday", "Public holiday", 10, 1, {"transparency": "transparent"}),
    ("alice", "vacation", "Vacation in Lisbon", 21, 7, {"location": "Lisbon, Portugal"}),
    ("team", "offsite", "Team offsite", 30, 3,
     {"location": "Schloss Kröchlendorff, Uckermark", "description": "Planning and hiking."}),
    ("team", "release", "Release 2.0", 14, 1, {}),
    ("bob", "bobtrip", "Trip to Chicago", 12, 2, {}),
    ("carol", "carolgolden", "Golden Week", -3, 7, {"transparency": "transparent"}),
]
# fmt: on
_ZONE_OF = {"alice": _BER, "team": _LON, "bob": _NYC, "carol": _TYO}


def sample_dataset(now: datetime) -> dict[str, Any]:
    """Three users, four calendars (one shared), about three dozen events around ``now``."""
    today = now.astimezone(UTC).date()
    monday = today - timedelta(days=today.weekday())
    cals: dict[str, list[dict[str, Any]]] = {name: [] for name in _ZONE_OF}
    for name, key, summary, offset, hour, minute, minutes, extras in _TIMED:
        when = _at(_ZONE_OF[name], today + timedelta(days=offset), hour, minute, minutes)
        cals[name].append(_event(key, summary, when, **_expand_extras(key, extras)))
    for name, key, summary, offset, length, extras in _ALL_DAY:
        when = _days(today + timedelta(days=offset), length)
        cals[name].append(_event(key, summary, when, **_expand_extras(key, extras)))
    flight = _span(_BER, _TYO, today + timedelta(days=40), 19, 12)  # ends in another zone
    cals["alice"].append(_event("flight", "Flight BER → HND", flight, location="BER Airport"))

    exdate = monday - timedelta(weeks=2) + timedelta(days=2)
    standup = _event(
        "standup",
        "Daily standup",
        _at(_BER, monday - timedelta(weeks=8), 9, 30, 15),
        recurrence=[
            "RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR",
            f"EXDATE;TZID={_BER}:{exdate:%Y%m%d}T093000",
        ],
        **_expand_extras(
            "standup",
            {
                "attendees": "alice bob carol:tentative",
                "conferenceData": 1,
                "description": "Yesterday, today, blockers.",
            },
        ),
    )
    upcoming = _upcoming(standup, now, _BER, 4)
    moved = _exception(standup, upcoming[1], _BER, hour=11, minute=0)
    moved["description"] = "Moved: the team is at the all-hands at 09:30."
    cancelled = _exception(standup, upcoming[3], _BER) | {"status": "cancelled"}
    cals["alice"] += [standup, moved, cancelled]

    month = (today.replace(day=1) - timedelta(days=45)).replace(day=1)
    first_tuesday = month + timedelta(days=(1 - month.weekday()) % 7)
    monthly = _event(
        "monthly",
        "Monthly planning",
        _at(_LON, first_tuesday, 15, 0, 60),
        recurrence=["RRULE:FREQ=MONTHLY;BYDAY=1TU;COUNT=12"],
        **_expand_extras("monthly", {"attendees": "alice bob:declined", "conferenceData": 1}),
    )
    later = _exception(monthly, _upcoming(monthly, now, _LON, 1)[0], _LON, hour=16, minute=0)
    cals["team"] += [monthly, later]

    until = f"{today + timedelta(weeks=10):%Y%m%d}T235959Z"
    one_on_one = _at(_NYC, monday - timedelta(weeks=3) + timedelta(days=1), 10, 0, 30)
    cals["bob"].append(
        _event(
            "bobweekly",
            "Weekly 1:1 with Alice",
            one_on_one,
            recurrence=[f"RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL={until}"],
        )
    )
    leap = max(y for y in range(today.year - 4, today.year + 1) if y % 4 == 0)
    cals["carol"].append(
        _event(
            "birthday",
            "Dana's birthday",
            _days(date(leap, 2, 29), 1),
            recurrence=["RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1"],
            transparency="transparent",
            visibility="private",
        )
    )
    yoga = _at(_TYO, monday + timedelta(days=1), 7, 0, 60)
    extra_day = f"RDATE;TZID={_TYO}:{monday + timedelta(days=5):%Y%m%d}T070000"
    cals["carol"].append(
        _event(
            "carolyoga",
            "Yoga",
            yoga,
            recurrence=["RRULE:FREQ=WEEKLY;BYDAY=TU,TH;COUNT=20", extra_day],
        )
    )

    def cal(cid: str, summary: str, tz: str, role: str, evs: list[Any]) -> dict[str, Any]:
        primary = cid.endswith("@example.com")
        return {
            "id": cid,
            "summary": summary,
            "timeZone": tz,
            "primary": primary,
            "accessRole": role,
            "events": evs,
        }

    return {
        "users": [
            {
                "email": "alice@example.com",
                "calendars": [
                    cal("alice@example.com", _PEOPLE["alice"], _BER, "owner", cals["alice"]),
                    cal(TEAM, "Team", _LON, "owner", cals["team"]),
                ],
            },
            {
                "email": "bob@example.com",
                "calendars": [
                    cal("bob@example.com", _PEOPLE["bob"], _NYC, "owner", cals["bob"]),
                    cal(TEAM, "Team", _LON, "writer", []),
                ],
            },
            {
                "email": "carol@example.com",
                "calendars": [
                    cal("carol@example.com", _PEOPLE["carol"], _TYO, "owner", cals["carol"])
                ],
            },
        ]
    }


def _expand_extras(key: str, extras: dict[str, Any]) -> dict[str, Any]:
    """Table shorthands: ``attendees`` "alice bob:declined" (the first one organizes),
    ``conferenceData`` 1 for a Meet link, ``description`` "LOREM" for a long text."""
    out = dict(extras)
    if isinstance(out.get("attendees"), str):
        out["attendees"] = [
            {
                "email": f"{name}@example.com",
                "displayName": _PEOPLE[name],
                "responseStatus": status or "accepted",
            }
            | ({"organizer": True} if i == 0 else {})
            for i, (name, _, status) in enumerate(
                w.partition(":") for w in out["attendees"].split()
            )
        ]
    if out.get("conferenceData") == 1:
        out["conferenceData"] = _meet(event_id("meet", key))
    if out.get("description") == "LOREM":
        out["description"] = _LOREM[:300]
    return out


_LOREM = (
    "Agenda: 1) status of the migration and the open incidents; 2) decisions needed on the "
    "vendor contract, the on-call rotation and the Q3 hiring plan; 3) anything else. Notes from "
    "last time are in the shared folder, please skim them before we start. If you cannot make "
    "it, add your updates to the document and we will read them out. Dial-in details below. "
    "<b>Reminder:</b> cameras on if you can, and keep side conversations in the chat. "
)
Times = tuple[dict[str, str], dict[str, str]]


def _at(tz: str, day: date, hour: int, minute: int, minutes: int) -> Times:
    start = datetime.combine(day, time(hour, minute), ZoneInfo(tz))
    end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(start.tzinfo)
    return {"dateTime": start.isoformat(), "timeZone": tz}, {
        "dateTime": end.isoformat(),
        "timeZone": tz,
    }


def _span(tz: str, end_tz: str, day: date, hour: int, hours: int) -> Times:
    start, _ = _at(tz, day, hour, 0, 0)
    end = datetime.fromisoformat(start["dateTime"]) + timedelta(hours=hours)
    return start, {"dateTime": end.astimezone(ZoneInfo(end_tz)).isoformat(), "timeZone": end_tz}


def _days(day: date, count: int) -> Times:
    return {"date": day.isoformat()}, {"date": (day + timedelta(days=count)).isoformat()}


def _event(key: str, summary: str, times: Times, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": event_id("sample", key), "summary": summary}
    body["start"], body["end"] = times
    body.update({k: v for k, v in fields.items() if v not in ("", None)})
    return body


def _meet(code: str) -> dict[str, Any]:
    """Google Meet conference data; the meeting code is taken from ``code`` (10+ characters)."""
    meeting = f"{code[:3]}-{code[3:7]}-{code[7:10]}"
    return {
        "conferenceId": meeting,
        "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
        "entryPoints": [
            {
                "entryPointType": "video",
                "uri": f"https://meet.google.com/{meeting}",
                "label": f"meet.google.com/{meeting}",
            },
        ],
    }


def _upcoming(master: dict[str, Any], now: datetime | None, tz: str, count: int) -> list[Any]:
    """The first ``count`` occurrences ending after ``now`` (or after the series start)."""
    found = []
    until = now + timedelta(days=800) if now else datetime(9000, 1, 1, tzinfo=UTC)
    for occ in expand(master, after=now, until=until, default_tz=tz):
        found.append(occ)
        if len(found) == count:
            break
    return found


def _exception(
    master: dict[str, Any], occ: Any, tz: str, hour: int | None = None, minute: int = 0
) -> dict[str, Any]:
    """An instance edited on its own: ``<master>_<suffix>`` with recurringEventId and
    originalStartTime, optionally moved to ``hour:minute`` on the same day."""
    body = {k: v for k, v in master.items() if k != "recurrence"}
    body |= {
        "id": occ.instance_id,
        "recurringEventId": master["id"],
        "originalStartTime": dict(occ.original_start),
        "start": dict(occ.start),
        "end": dict(occ.end),
    }
    if hour is not None:
        day = datetime.fromisoformat(occ.start["dateTime"]).date()
        minutes = int((occ.end_utc - occ.start_utc).total_seconds() // 60)
        body["start"], body["end"] = _at(tz, day, hour, minute, minutes)
    return body


# --- generated datasets --------------------------------------------------------------------

_ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/London",
    "UTC",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
)
_VERBS = (
    "Sync on",
    "Review:",
    "Planning",
    "Kick-off:",
    "Workshop:",
    "Call about",
    "Demo of",
    "Interview:",
    "Retro",
    "Lunch &",
    "Brainstorm",
    "Check-in:",
    "Training:",
)
_TOPICS = (
    "billing migration",
    "Q3 roadmap",
    "onboarding flow",
    "search ranking",
    "the API v2",
    "hiring pipeline",
    "budget",
    "incident 4711",
    "mobile release",
    "partner contract",
    "data retention",
    "customer feedback",
    "the design system",
    "infra costs",
)
_PLACES = (
    "Room 1.01",
    "Room Ada Lovelace",
    "Cafeteria",
    "HQ 3rd floor",
    "Zoom",
    "Client office, 5th Ave",
    "Warehouse B",
    "Co-working Mitte",
    "Online",
)
_HOURS = (8, 9, 9, 10, 10, 10, 11, 11, 12, 13, 14, 14, 15, 15, 16, 16, 17, 18)
_SLOTS = [  # (start, end) wall-clock times; all within one day, far from DST switches at night
    (f"{h:02d}:{q:02d}:00", f"{(h * 60 + q + m) // 60:02d}:{(q + m) % 60:02d}:00")
    for h in _HOURS
    for q in (0, 0, 0, 15, 30, 30, 45)
    for m in (15, 30, 30, 30, 45, 60, 60, 60, 60, 90, 120, 180)
]
_SUMMARIES = [f"{v} {t}" for v in _VERBS for t in _TOPICS]
_LENGTHS = (1, 1, 1, 1, 1, 2, 3, 5, 7)
_STATUSES = ("accepted", "accepted", "accepted", "needsAction", "tentative", "declined")
_RULES = (
    "RRULE:FREQ=WEEKLY;BYDAY={wd}",
    "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY={wd}",
    "RRULE:FREQ=DAILY;COUNT={n}",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT={n}",
    "RRULE:FREQ=MONTHLY;BYMONTHDAY={md}",
    "RRULE:FREQ=MONTHLY;BYDAY=1{wd};COUNT={n}",
)


def generate_dataset(
    *, users: int, calendars_per_user: int, events_per_calendar: int, seed: int, now: datetime
) -> dict[str, Any]:
    """``users * calendars_per_user * events_per_calendar`` events within a year of ``now``.

    Deterministic for a seed. About 85% single timed events, 10% all-day (some multi-day) and
    5% recurring masters; one master in five carries a moved and a cancelled exception.
    """
    with _gc_paused():
        return _generate(users, calendars_per_user, events_per_calendar, seed, now)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Building 100k acyclic dicts triggers the cyclic collector over and over (it costs more
    than the building itself on Python 3.11); nothing here can form a cycle."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _generate(
    users: int, per_user: int, per_calendar: int, seed: int, now: datetime
) -> dict[str, Any]:
    rng = random.Random(seed)
    emails = [f"user{i:05d}@example.com" for i in range(users)]
    pools = _Pools(rng, emails, now)
    out: list[dict[str, Any]] = []
    for email in emails:
        calendars = []
        for index in range(per_user):
            group = f"{event_id(seed, email, index)}@group.calendar.google.com"
            cid, summary = (
                (email, email.split("@")[0]) if index == 0 else (group, f"Project {index}")
            )
            tz = rng.choice(_ZONES)
            gen = _Generator(rng, event_id(seed, cid)[:18], tz, email, pools)
            calendar: dict[str, Any] = {"id": cid, "summary": summary, "timeZone": tz}
            calendar |= {"primary": index == 0, "accessRole": "owner"}
            calendar["events"] = gen.events(per_calendar, now)
            calendars.append(calendar)
        out.append({"email": email, "calendars": calendars})
    return {"users": out}


class _Pools:
    """Material shared by every calendar of a generated dataset (drawn once from the seed)."""

    def __init__(self, rng: random.Random, emails: list[str], now: datetime) -> None:
        people = emails[:200] + [f"guest{i}@partner{i % 7}.example.org" for i in range(50)]
        sizes = (0, 0, 0, 1, 2, 2, 3, 4, 5)
        self.guests = [  # (email, responseStatus) of 0-5 guests; events get fresh dicts
            [(e, rng.choice(_STATUSES)) for e in rng.sample(people, min(len(people), n))]
            for n in (rng.choice(sizes) for _ in range(512))
        ]
        self.texts = [
            (_LOREM * 3)[rng.randrange(200) :][: rng.randrange(120, 600)] for _ in range(64)
        ]
        today = now.astimezone(UTC).date()
        self.days = [today + timedelta(days=d) for d in range(-365, 366)]
        self._day_texts: dict[str, list[tuple[str, str]]] = {}

    def day_texts(self, zone: ZoneInfo) -> list[tuple[str, str]]:
        """Each day's ISO date and UTC offset at noon (valid for every slot, 08:00 to 22:00)."""
        key = str(zone)
        if key not in self._day_texts:
            self._day_texts[key] = [
                (d.isoformat(), datetime.combine(d, time(12), zone).isoformat()[-6:])
                for d in self.days
            ]
        return self._day_texts[key]


class _Generator:
    """One calendar's events, cheap enough (a few µs each) for 100k-event datasets."""

    def __init__(self, rng: random.Random, prefix: str, tz: str, owner: str, pools: _Pools) -> None:
        self.rand, self.prefix, self.tz, self.owner = rng.random, prefix, tz, owner
        self.pools, self.day_texts = pools, pools.day_texts(ZoneInfo(tz))

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.rand() * len(seq))]

    def events(self, count: int, now: datetime) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while len(found) < count:
            # Unique per calendar and base32hex: a hash of (seed, calendar) plus a hex counter.
            body = self._base(f"{self.prefix}{len(found):08x}")
            roll = self.rand()
            if roll < 0.05:
                found.append(self._recurring(body))
                if roll < 0.01:
                    found.extend(self._exceptions(body, now))
            elif roll < 0.15:
                body["start"], body["end"] = _days(self.pick(self.pools.days), self.pick(_LENGTHS))
                body["transparency"] = "transparent"
                found.append(body)
            else:
                found.append(self._timed(body, int(self.rand() * len(self.day_texts))))
        return found[:count]

    def _base(self, eid: str) -> dict[str, Any]:
        pick, rand = self.pick, self.rand
        body: dict[str, Any] = {"id": eid, "summary": pick(_SUMMARIES)}
        if rand() < 0.3:
            body["description"] = pick(self.pools.texts)
        if rand() < 0.25:
            body["location"] = pick(_PLACES)
        if guests := pick(self.pools.guests):
            owner = {"email": self.owner, "responseStatus": "accepted", "organizer": True}
            body["attendees"] = [owner] + [{"email": e, "responseStatus": s} for e, s in guests]
        if rand() < 0.15:
            body["conferenceData"] = _meet(eid[-10:])
        if rand() < 0.2:
            body["reminders"] = {
                "useDefault": False,
                "overrides": [{"method": "popup", "minutes": 10}],
            }
        if rand() < 0.03:
            body["status"] = "tentative"
        return body

    def _timed(self, body: dict[str, Any], index: int) -> dict[str, Any]:
        day, offset = self.day_texts[index]
        begin, finish = self.pick(_SLOTS)
        body["start"] = {"dateTime": f"{day}T{begin}{offset}", "timeZone": self.tz}
        body["end"] = {"dateTime": f"{day}T{finish}{offset}", "timeZone": self.tz}
        return body

    def _recurring(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.rand() < 0.1:  # a yearly all-day series (birthdays, anniversaries)
            body["start"], body["end"] = _days(self.pick(self.pools.days), 1)
            body["recurrence"] = ["RRULE:FREQ=YEARLY"]
            return body
        self._timed(body, int(self.rand() * (len(self.day_texts) // 2 + 30)))
        day = date.fromisoformat(body["start"]["dateTime"][:10])
        n = 3 + int(self.rand() * 60)
        rule = self.pick(_RULES).format(wd=_WEEKDAYS[day.weekday()], md=day.day, n=n)
        body["recurrence"] = [rule]
        return body

    def _exceptions(self, master: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
        occ = _upcoming(master, None, self.tz, 3)  # the series' first three: cheap to reach
        if len(occ) < 3:
            return []
        cancelled = _exception(master, occ[2], self.tz) | {"status": "cancelled"}
        if "date" in master["start"]:
            return [cancelled]
        return [_exception(master, occ[1], self.tz, hour=self.pick(_HOURS)), cancelled]
