"""CPU cost of encoding the ``CalendarEvent`` Avro body, per event, three ways.

- fastavro: ``schemaless_writer`` of ``to_calendar_event(item)`` (what the bytes must equal),
  and ``schemaless_writer`` alone on records mapped beforehand;
- the previous writer, ``avro_fastpath.compile_writer()``: generated code visiting every field;
- ``avro_shapes.SparseWriter``: code per key set, only the fields an event has.

The events are what the emulator renders for ``generate_dataset`` (the data set of
``full_sync.py``), paged in-process with ``maxResults=2500``, then decoded with ``json.loads``
as the connector sees them. Every writer's bytes are checked against fastavro's first. Timings
are CPU time (``process_time``: this machine is shared), the best of ``--rounds`` interleaved
passes over all events (single thread, GC as usual), so the ratios come from the same run.
Run: ``python benchmarks/avro_encode.py [--events N]``.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import fastavro

from connector.adapters.avro_codec import parse_schema
from connector.adapters.avro_fastpath import compile_writer
from connector.adapters.avro_schemas import CALENDAR_EVENT, load_schema
from connector.adapters.avro_shapes import SparseWriter
from connector.core.mapping import to_calendar_event
from connector.emulator.app import Emulator
from connector.emulator.clock import Clock
from connector.emulator.sample import generate_dataset

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def rendered_events(events: int, calendars: int) -> list[dict[str, Any]]:
    """The emulator's pages of a generated data set, as ``json.loads`` gives them."""
    data = generate_dataset(
        users=1,
        calendars_per_user=calendars,
        events_per_calendar=events // calendars,
        seed=7,
        now=NOW,
    )
    user = data["users"][0]
    emulator = Emulator(clock=Clock(frozen=NOW))
    try:
        emulator.control.seed(data)
        refresh = emulator.control.refresh_token(user["email"])
        grant = f"grant_type=refresh_token&refresh_token={refresh}".encode()
        token = json.loads(emulator.handle("POST", "/token", {}, grant).body)
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        items: list[dict[str, Any]] = []
        for calendar in user["calendars"]:
            page_token = None
            while True:
                target = f"/calendar/v3/calendars/{quote(calendar['id'])}/events?maxResults=2500"
                if page_token:
                    target += f"&pageToken={quote(page_token)}"
                page = json.loads(emulator.handle("GET", target, headers, b"").body)
                items += page["items"]
                page_token = page.get("nextPageToken")
                if not page_token:
                    break
        return items
    finally:
        emulator.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--calendars", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    items = rendered_events(args.events, args.calendars)
    parsed = parse_schema(load_schema(CALENDAR_EVENT))
    mapped = [to_calendar_event(item) for item in items]
    previous = compile_writer()
    sparse = SparseWriter()

    t0 = time.process_time()
    first = [bytearray() for _ in items]
    for item, out in zip(items, first, strict=True):
        sparse.write(item, out)
    cold = time.process_time() - t0

    def fastavro_body(record: dict[str, Any]) -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, record)
        return out.getvalue()

    for item, record, body in zip(items, mapped, first, strict=True):
        expected = fastavro_body(record)
        again = bytearray()
        sparse.write(item, again)
        old = bytearray()
        previous(item, old)
        assert body == again == old == expected, item

    def run_fastavro_mapping() -> None:
        for item in items:
            fastavro.schemaless_writer(io.BytesIO(), parsed, to_calendar_event(item))

    def run_fastavro_only() -> None:
        for record in mapped:
            fastavro.schemaless_writer(io.BytesIO(), parsed, record)

    def run_writer(writer: Callable[[Any, bytearray], None]) -> Callable[[], None]:
        def run() -> None:
            for item in items:
                out = bytearray()
                writer(item, out)

        return run

    cases: dict[str, Callable[[], None]] = {
        "fastavro schemaless_writer + to_calendar_event (baseline)": run_fastavro_mapping,
        "fastavro schemaless_writer alone (records mapped beforehand)": run_fastavro_only,
        "previous writer (avro_fastpath.compile_writer, every field)": run_writer(previous),
        "sparse writer (avro_shapes.SparseWriter, per-shape code)": run_writer(sparse.write),
    }
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(args.rounds):
        for name, run in cases.items():
            gc.collect()
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)

    n = len(items)
    base = best["fastavro schemaless_writer + to_calendar_event (baseline)"] / n * 1e6
    old_us = best["previous writer (avro_fastpath.compile_writer, every field)"] / n * 1e6
    print(f"{n} events rendered by the emulator; all bytes identical to fastavro's")
    print(f"{'writer':<64} {'us/event':>9} {'vs fastavro':>12} {'vs previous':>12}")
    for name, seconds in best.items():
        us = seconds / n * 1e6
        print(f"{name:<64} {us:>9.2f} {base / us:>11.1f}x {old_us / us:>11.2f}x")
    counts = sparse.shape_counts()
    print(
        f"sparse writer, first pass (compiling shapes as they repeat): {cold / n * 1e6:.2f}"
        f" us/event; {counts['CalendarEvent']} CalendarEvent shapes, {sum(counts.values())} in all"
    )


if __name__ == "__main__":
    main()
