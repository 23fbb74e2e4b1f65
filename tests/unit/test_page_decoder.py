"""Pages decoded in a decoding process (``page_decoder``) give the connector exactly what the
in-thread path gives: the same items for the core, the same Avro bytes, the same JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from connector.adapters.avro_codec import SingleObjectCodec
from connector.adapters.avro_shapes import SparseWriter
from connector.adapters.google_transport import FastJsonModel
from connector.adapters.metrics import PrometheusObserver
from connector.adapters.page_decoder import (
    FACT_KEYS,
    NotFast,
    PageDecoder,
    PreparedEvent,
    PreparedPage,
    fast_loads,
    prepare_page,
)
from connector.core import sync
from connector.core.mapping import to_calendar_event
from connector.core.records import ChangeEvent, StreamRef, Trigger

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "tests" / "data" / "events"
STREAM = StreamRef("alice/cal", "alice", "cal@example.com")


def sample_items() -> list[dict[str, Any]]:
    """Every recorded Google event shape, each several times with other ids and etags."""
    items = []
    for path in sorted(EVENTS_DIR.glob("*.json")):
        item = json.loads(path.read_text())
        for n in range(3):
            items.append({**item, "id": f"{item['id']}-{n}", "etag": f'"{n}{path.stem}"'})
    items.append({"id": "no-etag", "summary": "the core hashes the content"})
    items.append({"summary": "no id: a dead letter"})
    items.append({"id": "odd", "etag": '"1"', "mystery": {"nested": [1, 2.5, None]}})
    return items


def events_page(items: list[Any], **extra: Any) -> bytes:
    body = {"kind": "calendar#events", "etag": '"p"', "items": items, **extra}
    return json.dumps(body).encode()


def prepared_page(content: bytes) -> dict[str, Any]:
    """What the worker thread gets: the decoding process's ``PreparedPage``, unpacked."""
    prepared = prepare_page(content)
    assert isinstance(prepared, PreparedPage)
    return prepared.page()


def body_of(item: Any) -> bytes:
    out = bytearray()
    SparseWriter().write(item, out)
    return bytes(out)


def test_prepared_events_read_as_the_google_json_and_carry_its_avro_body() -> None:
    items = sample_items()
    page = prepared_page(events_page(items, nextPageToken="next"))
    assert page["nextPageToken"] == "next"
    assert page["kind"] == "calendar#events"
    prepared = page["items"]
    assert len(prepared) == len(items)
    for got, item in zip(prepared, items, strict=True):
        if "id" not in item or "etag" not in item:
            assert got == item and type(got) is dict  # left to the core, as it is
            continue
        assert type(got) is PreparedEvent
        assert got.avro_body == body_of(item)
        for key in [*FACT_KEYS, "summary", "start", "absent"]:
            assert got.get(key) == item.get(key)
            assert got.get(key, "default") == item.get(key, "default")
            assert (key in got) == (key in item)
        assert dict(got) == item
        assert got == item
        # What a Schema Registry writer schema other than ours is written from:
        assert to_calendar_event(got) == to_calendar_event(item)
        assert len(got) == len(item)
        assert sorted(got) == sorted(item)  # in the schema's field order, not Google's


def test_the_core_maps_prepared_events_as_it_maps_dicts() -> None:
    items = sample_items()
    prepared = prepared_page(events_page(items, nextSyncToken="s"))["items"]

    def records(page_items: list[Any]) -> list[Any]:
        current = sync.start_pass(STREAM, None, "fp", Trigger.POLL)
        result, _ = sync.apply_page(current, page_items, None, "s", sync.Published(), 5)
        return result.records

    for plain, fast in zip(records(items), records(prepared), strict=True):
        assert type(plain) is type(fast)
        if isinstance(plain, ChangeEvent):
            assert plain.event == fast.event
            assert (plain.op, plain.version, plain.source_updated_at_ms) == (
                fast.op,
                fast.version,
                fast.source_updated_at_ms,
            )


def test_change_events_encode_to_the_same_bytes_either_way() -> None:
    codec = SingleObjectCodec()
    items = [i for i in sample_items() if "id" in i and "etag" in i]
    prepared = prepared_page(events_page(items, nextSyncToken="s"))["items"]
    current = sync.start_pass(STREAM, None, "fp", Trigger.POLL)
    for item, fast in zip(items, prepared, strict=True):
        plain, _ = sync.apply_page(current, [item], None, "s", sync.Published(), 5)
        quick, _ = sync.apply_page(current, [fast], None, "s", sync.Published(), 5)
        a = [codec.encode_change(r) for r in plain.records if isinstance(r, ChangeEvent)]
        b = [codec.encode_change(r) for r in quick.records if isinstance(r, ChangeEvent)]
        assert a == b
        assert [codec.decode_change(x).event for x in b] == [None, item, None]  # RESET_*


def test_logs_never_see_an_events_content() -> None:
    item = {"id": "e1", "etag": '"1"', "summary": "Salary review with Bob"}
    prepared = prepared_page(events_page([item]))["items"][0]
    assert "Salary" not in repr(prepared)
    assert "e1" in repr(prepared)


def test_other_responses_and_odd_items_pass_through() -> None:
    listing = {"kind": "calendar#calendarList", "items": [{"id": "a", "etag": '"1"'}]}
    assert prepare_page(json.dumps(listing).encode()) == listing
    odd = {
        "kind": "calendar#events",
        "items": [
            *(1, "x", None, {"id": 5, "etag": '"1"'}),
            [1.5e300, -(2**53), 0.1, "\u00e9\U0001f600"],
        ],
    }
    assert prepared_page(json.dumps(odd).encode()) == odd
    assert prepare_page(b'{"kind": "calendar#events"}') == {"kind": "calendar#events"}


def test_what_orjson_might_read_differently_is_left_to_json() -> None:
    big = b'{"kind": "calendar#events", "items": [{"id": "a", "n": 123456789012345678901}]}'
    surrogate = b'{"kind": "calendar#events", "summary": "\\ud800"}'
    for content in (big, surrogate, b"not json"):
        with pytest.raises(NotFast):
            fast_loads(content)
        assert prepare_page(content) is None
    model = FastJsonModel()
    assert model.deserialize(big)["items"][0]["n"] == 123456789012345678901
    assert model.deserialize(b"not json") == "not json"  # the stock model's answer


def test_a_decoding_process_decodes_large_pages_and_is_restarted_if_it_dies() -> None:
    items = [i for i in sample_items() if "id" in i and "etag" in i]
    content = events_page(items * 20)
    decoder = PageDecoder(1, min_bytes=1024)
    model = FastJsonModel(decoder)
    try:
        decoder.start()
        page = model.deserialize(content)
        assert decoder.decoded == 1
        assert all(type(i) is PreparedEvent for i in page["items"])
        assert [dict(i) for i in page["items"]] == items * 20
        small = events_page(items[:1])
        assert len(small) < 1024
        assert type(model.deserialize(small)["items"][0]) is dict  # not worth a process
        assert decoder.decoded == 1

        for pid in decoder.pids():
            os.kill(pid, signal.SIGKILL)
        again = model.deserialize(content)  # decoded here while the pool is replaced
        assert [dict(i) for i in again["items"]] == items * 20
        assert decoder.restarts == 1
        model.deserialize(content)
        assert decoder.decoded == 2  # a new process took the next page
    finally:
        decoder.close()
    assert decoder.decode(content) is None  # closed: the worker thread decodes


def test_decoding_processes_exit_when_the_connector_is_killed() -> None:
    """SIGKILL (an OOM kill) gives the pool no chance to stop its processes; they notice."""
    script = (
        "import time\n"
        "from connector.adapters.page_decoder import PageDecoder\n"
        "decoder = PageDecoder(1)\n"
        "decoder.start()\n"
        "print(*decoder.pids(), flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT
    ) as parent:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        os.kill(child, 0)  # alive
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the decoding process outlived its connector")


def test_pages_are_counted_by_who_decoded_them() -> None:
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    decoder = PageDecoder(1, min_bytes=16, on_page=observer.page_decoded)
    model = FastJsonModel(decoder)
    try:
        model.deserialize(events_page([{"id": "a", "etag": '"1"'}]))
        model.deserialize(b'{"kind": "calendar#events", "n": 12345678901234567890}')
        for pid in decoder.pids():
            os.kill(pid, signal.SIGKILL)
        model.deserialize(events_page([{"id": "a", "etag": '"1"'}]))
    finally:
        decoder.close()

    def value(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, labels)
        return found or 0.0

    assert value("gcal_kafka_decoded_pages_total", by="process") == 1
    assert value("gcal_kafka_decoded_pages_total", by="thread") == 2
    assert value("gcal_kafka_decoding_process_restarts_total") == 1
