"""events.list and events.instances: filters, the showDeleted x singleEvents matrix, paging, sync.

Two ways to produce a page. *Stream* mode (no expansion, no ordering, no updatedMin) walks the
calendar's change-ordered index from the cursor seq, so a page costs O(page) and an incremental
list costs O(changes). *Materialised* mode (singleEvents, orderBy, updatedMin, instances) builds
the sorted result once per calendar version and query, caches it, and pages by bisecting on the
last key. Each scan stops after ``SCAN_LIMIT`` records, answering a short (possibly empty) page
with a nextPageToken, which Google allows.

Above ``maxResults=2500`` the value is clamped to 2500 (Google's documented maximum).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connector.emulator import errors, params, recurrence
from connector.emulator.clock import to_ms, to_rfc3339_ms
from connector.emulator.events import resolve_calendar
from connector.emulator.paging import (
    calendar_key,
    check_sync_token,
    envelope,
    page_of,
    page_state,
)
from connector.emulator.query import (
    FORBIDDEN,
    IGNORED,
    SCAN_LIMIT,
    SYNC_KEYS,
    EventQuery,
    ListCache,
    parse_query,
)
from connector.emulator.render import (
    extended_matches,
    instance_body,
    render_event,
    text_matches,
    tombstone,
)
from connector.emulator.store import CalendarRecord, EventRecord, Store, UserRecord, role_at_least
from connector.emulator.times import edt_to_utc
from connector.emulator.tokens import TokenCodec, fingerprint


@dataclass
class _Ctx:
    store: Store
    cal: CalendarRecord
    user: UserRecord
    query: EventQuery
    now: datetime
    incremental: bool
    organizer: bool

    def render(self, body: dict[str, Any]) -> dict[str, Any]:
        return render_event(
            body,
            time_zone=self.query.time_zone,
            max_attendees=self.query.max_attendees,
            viewer=self.user.email,
        )

    def tombstone(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.query.show_deleted and self.organizer:
            return self.render(body)
        return tombstone(body)

    def horizon(self) -> datetime:
        return self.now + timedelta(seconds=self.store.config.instances_horizon)


def _matches(ctx: _Ctx, body: dict[str, Any], start: datetime | None, end: datetime | None) -> bool:
    q = ctx.query
    if q.time_min is not None and end is not None and end <= q.time_min:
        return False
    if q.time_max is not None and start is not None and start >= q.time_max:
        return False
    if q.event_types and body.get("eventType", "default") not in q.event_types:
        return False
    if q.ical_uid is not None and body.get("iCalUID") != q.ical_uid:
        return False
    if q.q and not text_matches(body, q.q):
        return False
    if q.private_ext and not extended_matches(body, "private", q.private_ext):
        return False
    return not (q.shared_ext and not extended_matches(body, "shared", q.shared_ext))


def _plain_item(ctx: _Ctx, rec: EventRecord) -> dict[str, Any] | None:
    """singleEvents=false: masters, single events and exceptions (matrix rows 1 and 3)."""
    end = rec.end_utc
    if rec.is_master and not rec.cancelled:
        end = (
            rec.series_end
            if rec.series_end is not None
            else datetime.max.replace(tzinfo=ctx.now.tzinfo)
        )
    if not _matches(ctx, rec.body, rec.start_utc, end):
        return None
    if not rec.cancelled:
        return ctx.render(rec.body)
    if ctx.incremental or ctx.query.show_deleted or ctx.query.updated_min is not None:
        return ctx.tombstone(rec.body)
    master = ctx.cal.events.get(rec.master_id) if rec.master_id else None
    if master is not None and not master.cancelled:
        return ctx.tombstone(rec.body)  # a cancelled occurrence of a live series
    return None


def _expand(
    ctx: _Ctx,
    master: EventRecord,
    *,
    after: datetime | None,
    until: datetime | None,
    include_cancelled: bool,
) -> Iterator[dict[str, Any]]:
    """Occurrences of a series with its exceptions laid over them (rendered)."""
    cap = master.series_end + timedelta(seconds=1) if master.series_end else ctx.horizon()
    stop = min(until, cap) if until is not None else cap
    exceptions = {
        i: ctx.cal.events[i]
        for i in ctx.cal.exceptions.get(str(master.body["id"]), ())
        if i in ctx.cal.events
    }
    seen: set[str] = set()
    for occ in recurrence.expand(
        master.body, until=stop, after=after, default_tz=ctx.cal.time_zone
    ):
        exc = exceptions.get(occ.instance_id)
        seen.add(occ.instance_id)
        if master.cancelled:
            yield ctx.tombstone(instance_body(master.body, occ) | {"status": "cancelled"})
        elif exc is None:
            body = instance_body(master.body, occ)
            if _matches(ctx, body, occ.start_utc, occ.end_utc):
                yield ctx.render(body)
        elif exc.cancelled:
            if include_cancelled:
                yield ctx.tombstone(exc.body)
        elif _matches(ctx, exc.body, exc.start_utc, exc.end_utc):
            yield ctx.render(exc.body)
    if master.cancelled:
        return
    for exc_id, exc in exceptions.items():  # exceptions moved into the window
        if exc_id in seen or exc.cancelled:
            continue
        if _matches(ctx, exc.body, exc.start_utc, exc.end_utc) and (
            until is None or (exc.start_utc is not None and exc.start_utc < until)
        ):
            yield ctx.render(exc.body)


def _single_items(ctx: _Ctx, records: Iterable[EventRecord]) -> Iterator[dict[str, Any]]:
    """singleEvents=true: instances instead of masters (matrix rows 2 and 4)."""
    q = ctx.query
    records = list(records)
    masters = {str(r.body["id"]) for r in records if r.is_master}
    for rec in records:
        if rec.is_master:
            if rec.cancelled and not ctx.incremental:
                continue  # deleted series are not returned in full lists
            yield from _expand(
                ctx,
                rec,
                after=q.time_min,
                until=q.time_max,
                include_cancelled=ctx.incremental or bool(q.show_deleted),
            )
        elif rec.master_id is not None and rec.master_id in ctx.cal.events:
            if rec.master_id in masters:
                continue  # covered by the expansion of its master
            if rec.cancelled:
                if ctx.incremental or q.show_deleted:
                    yield ctx.tombstone(rec.body)
            elif ctx.incremental and _matches(ctx, rec.body, rec.start_utc, rec.end_utc):
                yield ctx.render(rec.body)
        elif rec.cancelled:
            if ctx.incremental or q.show_deleted or q.updated_min is not None:
                yield ctx.tombstone(rec.body)
        elif _matches(ctx, rec.body, rec.start_utc, rec.end_utc):
            yield ctx.render(rec.body)


def _sort_key(ctx: _Ctx, item: dict[str, Any]) -> tuple[Any, ...]:
    if ctx.query.order_by == "updated" or (
        ctx.query.updated_min is not None and ctx.query.order_by is None
    ):
        return (str(item.get("updated", "")), str(item["id"]))
    start = edt_to_utc(item.get("start"), ctx.cal.time_zone) or edt_to_utc(
        item.get("originalStartTime"), ctx.cal.time_zone
    )
    return (to_ms(start) if start else 0, str(item["id"]))


def _materialise(ctx: _Ctx, base_seq: int | None) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    q = ctx.query
    records: Iterable[EventRecord]
    if base_seq is not None:
        records = ctx.cal.changed_after(base_seq)
    elif q.updated_min is not None:
        stamp = to_rfc3339_ms(q.updated_min)
        records = [r for r in ctx.cal.events.values() if str(r.body.get("updated", "")) >= stamp]
    else:
        records = ctx.cal.events.values()
    if q.single_events:
        items = list(_single_items(ctx, records))
    else:
        items = [i for i in (_plain_item(ctx, r) for r in records) if i is not None]
    keyed = [(_sort_key(ctx, item), item) for item in items]
    keyed.sort(key=lambda pair: pair[0])
    return keyed


def _stream_page(
    ctx: _Ctx, base_seq: int | None, cursor: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None, bool]:
    if cursor is None:
        cursor = base_seq if base_seq is not None else -1
    items: list[dict[str, Any]] = []
    order = ctx.cal.order
    for scanned, rec in enumerate(ctx.cal.iter_from(cursor + 1), start=1):
        cursor = rec.seq
        item = _plain_item(ctx, rec)
        if item is not None:
            items.append(item)
        if len(items) >= limit or scanned >= SCAN_LIMIT:
            return items, cursor, bisect_right(order, rec.seq) >= len(order)
    return items, cursor, True


def list_events(
    store: Store,
    user: UserRecord,
    calendar_id: str,
    raw: params.Params,
    now: datetime,
    codec: TokenCodec,
    cache: ListCache,
) -> dict[str, Any]:
    with store.lock:
        cal, entry = resolve_calendar(store, user, calendar_id)
        store.purge(now)
        q = parse_query(raw, store.config.max_results_default)
        if q.sync_token is not None and (
            any(k in raw for k in FORBIDDEN) or q.show_deleted is False
        ):
            raise errors.sync_token_restrictions()
        if q.order_by == "startTime" and not q.single_events:
            raise errors.ordering_not_available()
        window = timedelta(seconds=store.config.updated_min_window)
        if q.updated_min is not None and now - q.updated_min > window:
            raise errors.updated_min_too_long_ago()
        sync_fp = fingerprint({k: sorted(params.many(raw, k)) for k in SYNC_KEYS})
        base_seq = None
        if q.sync_token is not None:
            base_seq = check_sync_token(store, cal, codec, q.sync_token, sync_fp, now)
        page_fp = fingerprint({k: v for k, v in raw.items() if k not in IGNORED})
        state = page_state(store, codec, q.page_token, "ep", page_fp) or {
            "s": cal.version,
            "c": None,
            "n": 0,
        }
        ctx = _Ctx(
            store,
            cal,
            user,
            q,
            now,
            base_seq is not None,
            role_at_least(entry.access_role, "writer"),
        )
        out = envelope(cal, entry.access_role)
        token = {"k": "ep", "f": page_fp, "g": store.generation, "s": state["s"]}
        if store.config.empty_pages and int(state.get("n", 0)) < store.config.empty_pages:
            out["items"] = []
            out["nextPageToken"] = codec.encode(
                token | {"c": state["c"], "n": int(state.get("n", 0)) + 1}
            )
            return out
        if not q.single_events and q.order_by is None and q.updated_min is None:
            items, cursor, done = _stream_page(ctx, base_seq, state["c"], q.max_results)
        else:
            key = (cal.id, cal.version, page_fp, base_seq, user.email, now.date())
            keyed = cache.get(key)
            if keyed is None:
                keyed = _materialise(ctx, base_seq)
                cache.put(key, keyed)
            items, cursor, done = page_of(keyed, state["c"], q.max_results)
        out["items"] = items
        if done:
            out["nextSyncToken"] = codec.encode(
                {
                    "k": "es",
                    "g": store.generation,
                    "c": calendar_key(cal),
                    "ep": cal.token_epoch,
                    "s": state["s"],
                    "t": to_ms(now),
                    "f": sync_fp,
                }
            )
        else:
            out["nextPageToken"] = codec.encode(token | {"c": cursor, "n": 0})
        return out


def list_instances(
    store: Store,
    user: UserRecord,
    calendar_id: str,
    event_id: str,
    raw: params.Params,
    now: datetime,
    codec: TokenCodec,
    cache: ListCache,
) -> dict[str, Any]:
    """events.instances: timeMin is inclusive here; no sync token; infinite series capped."""
    with store.lock:
        cal, entry = resolve_calendar(store, user, calendar_id)
        master = cal.events.get(event_id)
        if master is None or not master.is_master:
            raise errors.not_found()
        if master.cancelled:
            raise errors.deleted()
        q = parse_query(raw, store.config.max_results_default)
        if q.time_min is not None:
            q.time_min -= timedelta(microseconds=1)
        original = None
        if q.original_start is not None:
            original = params.timestamp({"originalStart": [q.original_start]}, "originalStart")
        page_fp = fingerprint(
            {k: v for k, v in raw.items() if k not in IGNORED} | {"_instances": [event_id]}
        )
        state = page_state(store, codec, q.page_token, "ip", page_fp) or {"c": None}
        ctx = _Ctx(store, cal, user, q, now, False, role_at_least(entry.access_role, "writer"))
        key = (cal.id, cal.version, page_fp, "instances", user.email, now.date())
        keyed = cache.get(key)
        if keyed is None:
            items = _expand(
                ctx,
                master,
                after=q.time_min,
                until=q.time_max,
                include_cancelled=bool(q.show_deleted),
            )
            if original is not None:
                items = (
                    i
                    for i in items
                    if edt_to_utc(i.get("originalStartTime"), cal.time_zone) == original
                )
            keyed = sorted(((_sort_key(ctx, i), i) for i in items), key=lambda p: p[0])
            cache.put(key, keyed)
        page, cursor, done = page_of(keyed, state["c"], q.max_results)
        out = envelope(cal, entry.access_role)
        out["items"] = page
        if not done:
            out["nextPageToken"] = codec.encode(
                {"k": "ip", "f": page_fp, "g": store.generation, "c": cursor}
            )
        return out
