"""Push latency: a change in the emulator to the committed change event a consumer sees.

The emulator (``gcal-kafka emulator --seed FILE``) and the connector (``gcal-kafka run``, push
on, safety polls of an hour, so push is what triggers each pass) run in their own processes
against a real Kafka broker (``deploy/local/kafka``, unless ``GCAL_KAFKA_TEST_BOOTSTRAP``).
This process patches events through google-api-python-client (timestamp before the call) and
reads the events topic with a read_committed ``confluent_kafka.Consumer`` (timestamp on
receipt), matching each record by event id and summary.

Where the time goes, per change (all clocks are this machine's wall clock):

- ``patch``: the events.patch call returned;
- ``notified``: a probe watch channel of this process on the same calendar got its ``exists``
  notification (the emulator sends the connector's at the same moment, from a 4-thread pool);
- ``fetched``: the connector's events.list for that calendar hit the emulator (request log);
- ``mapped``: ``published_at_ms`` of the change event (the page was mapped);
- ``produced``: the Kafka record's timestamp (CreateTime, when it was produced);
- ``received``: this consumer got it (the transaction committed and the fetch returned).

Run: ``python benchmarks/push_latency.py [--changes 1000 --calendars 5 --rate 10]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import broker, free_port, google_client  # noqa: E402
from benchmarks.many_calendars import (  # noqa: E402  (after the sys.path line)
    http_get,
    ready,
    start_connector,
    start_emulator,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
EMAIL = "user00000@example.com"
WORKERS = 8
TARGET_P99_MS = 250.0


class Probe:
    """A webhook of our own: when did the emulator's ``exists`` notifications arrive."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}  # channel id -> arrival times
        arrivals, lock = self.arrivals, threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.time()
                if self.headers.get("X-Goog-Resource-State") == "exists":
                    with lock:
                        arrivals.setdefault(self.headers.get("X-Goog-Channel-ID", ""), []).append(
                            now
                        )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/probe"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def google(url: str) -> Any:
    return google_client(url, EMAIL)


def settings(bootstrap: str, url: str, workdir: Path, calendars: list[str]) -> dict[str, Any]:
    creds = workdir / "creds.json"
    creds.write_text(
        json.dumps({"client_id": "b", "client_secret": "b", "refresh_token": f"refresh-{EMAIL}"})
    )
    prefix = f"lat-{uuid.uuid4().hex[:8]}."
    webhook = free_port()
    return {
        "name": f"{prefix}connector",
        "kafka": {"bootstrap.servers": bootstrap},
        "topics": {"prefix": prefix, "partitions": 6},
        "google": {"api_endpoint": f"{url}/calendar/v3/", "token_uri": f"{url}/token"},
        "sync": {"poll_interval_seconds": 3600},
        "workers": WORKERS,
        "accounts": [
            {
                "name": "lat",
                "credentials": {"kind": "authorized_user", "path": str(creds)},
                "calendars": calendars,
            }
        ],
        "metrics": {"enabled": True, "host": "127.0.0.1", "port": free_port()},
        "webhook": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": webhook,
            "public_url": f"http://127.0.0.1:{webhook}/notifications",
            "secret": "bench-secret-0123456789abcdef",
            "healthy_poll_seconds": 3600,
        },
        "logging": {"level": "INFO", "format": "json"},
    }


class Reader:
    """read_committed consumer from the current end of the events topic; receipt times."""

    def __init__(self, config: dict[str, Any]) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from connector import wiring
        from connector.config import Settings

        s = Settings(**config)
        self.codec = wiring.codec_for(s)
        topic = wiring.topic_names(s).events
        self.consumer = Consumer(
            {
                "bootstrap.servers": config["kafka"]["bootstrap.servers"],
                "group.id": f"lat-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        parts = self.consumer.list_topics(topic, timeout=30).topics[topic].partitions
        assigned = []
        for p in parts:
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            assigned.append(TopicPartition(topic, p, high))
        self.consumer.assign(assigned)
        self.seen: dict[tuple[str, str], tuple[float, int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            msg = self.consumer.poll(0.2)
            now = time.time()
            if msg is None or msg.error() or msg.value() is None:
                continue
            _cal, event_id = self.codec.decode_key(msg.key())
            change = self.codec.decode_change(msg.value())
            summary = (change.event or {}).get("summary")
            if event_id is not None and isinstance(summary, str):
                self.seen.setdefault(
                    (event_id, summary), (now, change.published_at_ms, msg.timestamp()[1])
                )

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def request_log(url: str) -> list[dict[str, Any]]:
    code, body = http_get(f"{url}/emulator/requests", timeout=30)
    return list(json.loads(body)["requests"]) if code == 200 else []


def parse_ms(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--calendars", type=int, default=5)
    parser.add_argument("--rate", type=float, default=10.0, help="changes per second")
    parser.add_argument("--warmup", type=int, default=20, help="changes not counted")
    args = parser.parse_args()
    from connector.emulator.sample import generate_dataset

    workdir = Path(tempfile.mkdtemp(prefix="gcal-lat-"))
    print(f"work dir {workdir}", flush=True)
    data = generate_dataset(
        users=1, calendars_per_user=args.calendars, events_per_calendar=40, seed=3, now=NOW
    )
    (workdir / "dataset.json").write_text(json.dumps(data))
    targets = [
        (c["id"], [e["id"] for e in c["events"] if "recurrence" not in e][:20])
        for c in data["users"][0]["calendars"]
    ]
    bootstrap, kafka = broker(workdir)
    emulator, url = start_emulator(workdir / "dataset.json", workdir / "emulator.log")
    config = settings(bootstrap, url, workdir, [c for c, _ in targets])
    import yaml

    (workdir / "connector.yaml").write_text(yaml.safe_dump(config))
    proc = start_connector(workdir / "connector.yaml", workdir / "connector.log")
    probe = Probe()
    api = google(url)
    reader: Reader | None = None
    sent: list[tuple[int, str, str, str, float, float]] = []
    log: dict[tuple[str, str, str], dict[str, Any]] = {}
    try:
        port = config["metrics"]["port"]
        deadline = time.monotonic() + 300
        while not channels_open(port, len(targets)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"connector not ready; see {workdir / 'connector.log'}")
            time.sleep(0.5)
        probes = {}
        for calendar_id, _ in targets:
            channel_id = f"probe-{uuid.uuid4().hex}"
            api.events().watch(
                calendarId=calendar_id,
                body={"id": channel_id, "type": "web_hook", "address": probe.url},
            ).execute()
            probes[calendar_id] = channel_id
        reader = Reader(config)
        time.sleep(2)
        total = args.changes + args.warmup
        t_start = time.monotonic()
        for i in range(total):
            calendar_id, events = targets[i % len(targets)]
            event_id = events[(i // len(targets)) % len(events)]
            summary = f"lat-{i}"
            due = t_start + i / args.rate
            time.sleep(max(0.0, due - time.monotonic()))
            before = time.time()
            api.events().patch(
                calendarId=calendar_id, eventId=event_id, body={"summary": summary}
            ).execute()
            sent.append((i, calendar_id, event_id, summary, before, time.time()))
            if i % 300 == 299:
                for r in request_log(url):
                    log[(r["time"], r["path"], r["query"])] = r
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            (e, s) not in reader.seen for _i, _c, e, s, _b, _a in sent
        ):
            time.sleep(0.2)
        for r in request_log(url):
            log[(r["time"], r["path"], r["query"])] = r
        metrics_text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    finally:
        if reader is not None:
            reader.close()
        api.close()
        probe.stop()
        proc.terminate()
        proc.wait(120)
        emulator.terminate()
        emulator.wait(60)
        if kafka is not None:
            kafka.stop()
    assert reader is not None
    report(args, sent, reader.seen, probe.arrivals, probes, log, metrics_text)


def channels_open(port: int, n: int) -> bool:
    if not ready(port):
        return False
    text = http_get(f"http://127.0.0.1:{port}/metrics")[1]
    opened = 0.0
    for line in text.splitlines():
        if line.startswith(
            ('gcal_kafka_watch_channels{state="open"}', 'gcal_kafka_watch_channels{state="active"}')
        ):
            opened += float(line.split()[-1])
    return opened >= n


def first_after(times: list[float], t: float) -> float | None:
    return next((x for x in sorted(times) if x >= t), None)


def report(
    args: argparse.Namespace,
    sent: list[tuple[int, str, str, str, float, float]],
    seen: dict[tuple[str, str], tuple[float, int, int]],
    arrivals: dict[str, list[float]],
    probes: dict[str, str],
    log: dict[tuple[str, str, str], dict[str, Any]],
    metrics_text: str,
) -> None:
    lists: dict[str, list[float]] = {}
    for r in log.values():
        if r.get("route") == "events.list" and r["method"] == "GET":
            lists.setdefault(r["path"], []).append(parse_ms(r["time"]))
    cols = ("total", "patch", "notified", "fetched", "mapped", "produced", "received")
    rows: list[dict[str, float]] = []
    missing = 0
    for i, calendar_id, event_id, summary, before, after in sent:
        if i < args.warmup:
            continue
        got = seen.get((event_id, summary))
        if got is None:
            missing += 1
            continue
        received, published_ms, produced_ms = got
        path = next((p for p in lists if calendar_id in p or _quoted(calendar_id) in p), "")
        notified = first_after(arrivals.get(probes[calendar_id], []), before)
        fetched = first_after(lists.get(path, []), before)
        row = {
            "total": received - before,
            "patch": after - before,
            "notified": (notified or float("nan")) - before,
            "fetched": (fetched or float("nan")) - before,
            "mapped": published_ms / 1000 - before,
            "produced": produced_ms / 1000 - before,
            "received": received - before,
        }
        rows.append(row)
    print(
        f"\npush latency: {len(rows)} changes over {args.calendars} calendars at "
        f"{args.rate:g}/s (after {args.warmup} warm-up), {missing} not seen; "
        "ms after the patch call began"
    )
    print("| milestone | p50 | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for col in cols:
        values = [1000 * r[col] for r in rows if r[col] == r[col]]
        if not values:
            continue
        print(
            f"| {col} | {percentile(values, 50):.1f} | {percentile(values, 90):.1f} | "
            f"{percentile(values, 99):.1f} | {max(values):.1f} |"
        )
    totals = [1000 * r["total"] for r in rows]
    p99 = percentile(totals, 99)
    verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
    print(
        f"end to end: p50 {percentile(totals, 50):.1f} ms, p99 {p99:.1f} ms, mean "
        f"{statistics.fmean(totals):.1f} ms: {verdict} the p99 < {TARGET_P99_MS:.0f} ms target"
    )
    for line in metrics_text.splitlines():
        if line.startswith(("gcal_kafka_passes_total", "gcal_kafka_push_notifications_total")):
            print("  " + line)


def _quoted(calendar_id: str) -> str:
    from urllib.parse import quote

    return quote(calendar_id, safe="")


if __name__ == "__main__":
    main()
