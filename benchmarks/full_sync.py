"""Full sync of 100,000 events over 10 calendars: the connector (exactly-once) vs a hand-written
baseline (google-api-python-client list loop, ``json.dumps`` values, a plain confluent-kafka
``Producer`` without transactions), over the same emulator data into the same real Kafka broker.

Each side runs in its own subprocess, so its CPU time and peak memory (``getrusage``, plus the
connector's page decoding processes, read from ``/proc``) are its own; the emulator runs in a
third process, so its CPU is excluded from both (it is reported separately). Two cases: no
injected latency, and 50 ms per ``events.list`` page (the emulator's latency knob).

Run: ``python benchmarks/full_sync.py`` (starts a local Kafka from ``deploy/local/kafka``,
unless ``GCAL_KAFKA_TEST_BOOTSTRAP`` names a broker). ``--profile DIR`` also writes a cProfile
of the connector (every thread) for each case; ``--latencies 0`` runs one case only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402  (after the sys.path line)
    broker,
    children_usage,
    emit,
    google_client,
    proc_cpu,
    read_result,
    thread_cpu,
)

EMAIL = "user00000@example.com"
PARTITIONS = 3
PAGE = 2500
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _usage() -> tuple[float, int]:
    """(user+system CPU seconds, peak RSS in MiB) of this process so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss // 1024


# -- the emulator process ---------------------------------------------------------------------
def role_emulator(args: argparse.Namespace) -> None:
    from connector.emulator.clock import Clock
    from connector.emulator.sample import generate_dataset
    from connector.emulator.server import EmulatorServer

    data = generate_dataset(
        users=1,
        calendars_per_user=args.calendars,
        events_per_calendar=args.events // args.calendars,
        seed=7,
        now=NOW,
    )
    server = EmulatorServer(clock=Clock(frozen=NOW)).start()
    server.control.seed(data)
    calendars = [c["id"] for c in data["users"][0]["calendars"]]
    emit({"url": server.url, "calendars": calendars, "email": data["users"][0]["email"]})
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()


# -- the connector process --------------------------------------------------------------------
def _with_thread_profiles(profiles: list[Any]) -> None:
    """cProfile every thread started from now on (cProfile only sees its own thread)."""
    import cProfile

    # Per-thread CPU time, not wall time: threads waiting for the GIL or for I/O cost nothing.
    def start(_frame: Any, _event: str, _arg: Any) -> None:
        prof = cProfile.Profile(time.thread_time)
        profiles.append(prof)
        prof.enable()  # replaces this hook for the thread

    threading.setprofile(start)


class _GcTimer:
    """Collections and CPU seconds spent in the garbage collector, per generation."""

    def __init__(self) -> None:
        import gc

        self._started = 0.0
        self._totals = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()  # collections run in the allocating thread
        else:
            entry = self._totals[info["generation"]]
            entry[0] += 1
            entry[1] += time.thread_time() - self._started

    def reset(self) -> None:
        self._totals = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}

    def totals(self) -> dict[str, list[float]]:
        return {str(gen): list(v) for gen, v in self._totals.items()}


def role_connector(args: argparse.Namespace) -> None:
    import gc
    import logging

    from connector import wiring
    from connector.config import Settings
    from connector.core.records import Phase
    from connector.gc_tuning import tune_garbage_collector

    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="gcal-bench-"))
    creds = tmp / "creds.json"
    creds.write_text(
        json.dumps({"client_id": "b", "client_secret": "b", "refresh_token": f"refresh-{EMAIL}"})
    )
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    settings = Settings(
        name=f"{prefix}connector",
        kafka={"bootstrap.servers": args.bootstrap},
        topics={"prefix": prefix, "partitions": PARTITIONS},
        google={"api_endpoint": f"{args.url}/calendar/v3/", "token_uri": f"{args.url}/token"},
        sync={"poll_interval_seconds": 3600},
        delivery={"mode": "exactly_once"},
        accounts=[
            {
                "name": "bench",
                "credentials": {"kind": "authorized_user", "path": str(creds)},
                "calendars": args.calendar_ids.split(","),
            }
        ],
        metrics={"enabled": False},
        **({"workers": args.workers} if args.workers else {}),
    )
    gc_time = _GcTimer()
    profiles: list[Any] = []
    if args.profile:
        _with_thread_profiles(profiles)
    cpu0, _ = _usage()
    t0 = time.perf_counter()
    connector = wiring.build(settings)
    built = time.perf_counter()
    if args.gc == "run":
        tune_garbage_collector()  # what ``gcal-kafka run`` does once built
    elif args.gc != "default":
        gc.set_threshold(*(int(n) for n in args.gc.split(",")))
    cpu1 = _usage()[0] + children_usage()[0]
    gc_time.reset()
    service = connector.service
    thread = threading.Thread(target=service.run, kwargs={"poll": connector.signals.poll})
    thread.start()
    runtimes = list(service.runtimes.values())

    def done() -> bool:
        return all(
            rt.committed is not None and rt.committed.phase is Phase.INCREMENTAL for rt in runtimes
        )

    while not done():
        time.sleep(0.02)  # the harness's own CPU counts in the connector's: keep it small
    finished = time.perf_counter()
    decoders_cpu, decoders_rss = children_usage()
    cpu2 = _usage()[0] + decoders_cpu
    threads = thread_cpu()
    threads["decoding processes"] = decoders_cpu
    events = sum(len(rt.published.live) + len(rt.published.deleted) for rt in runtimes)
    service.stop()
    thread.join(60)
    connector.close()
    rss = _usage()[1] + decoders_rss
    if args.profile:
        import pstats

        threading.setprofile(None)  # type: ignore[arg-type]
        stats = pstats.Stats(*profiles)
        stats.dump_stats(args.profile)
    emit(
        {
            "events": events,
            "seconds": finished - built,
            "cpu": cpu2 - cpu1,
            "startup_seconds": built - t0,
            "startup_cpu": cpu1 - cpu0,
            "rss_mib": rss,
            "streams": len(runtimes),
            "threads": threads,
            "gc": gc_time.totals(),
        }
    )


# -- the baseline process ---------------------------------------------------------------------
def role_baseline(args: argparse.Namespace) -> None:
    """What a user writes by hand: list every calendar, dump each item as JSON, produce it."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench-{uuid.uuid4().hex[:8]}.baseline"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    api = google_client(args.url, EMAIL)
    producer = Producer({"bootstrap.servers": args.bootstrap})
    producer.list_topics(topic, timeout=30)  # connected, metadata known: not timed
    cpu1, _ = _usage()
    t0 = time.perf_counter()
    events = 0
    for calendar_id in args.calendar_ids.split(","):
        request = api.events().list(calendarId=calendar_id, maxResults=PAGE)
        while request is not None:
            page = request.execute()
            for item in page.get("items", []):
                value = json.dumps(item).encode()
                while True:
                    try:
                        producer.produce(topic, key=item["id"].encode(), value=value)
                        break
                    except BufferError:
                        producer.poll(0.1)
                events += 1
            producer.poll(0)
            request = api.events().list_next(request, page)
    remaining = producer.flush(120)
    finished = time.perf_counter()
    cpu2, rss = _usage()
    api.close()
    assert remaining == 0, f"{remaining} messages not delivered"
    emit({"events": events, "seconds": finished - t0, "cpu": cpu2 - cpu1, "rss_mib": rss})


# -- the orchestrator -------------------------------------------------------------------------
def _side(role: str, emulator: dict[str, Any], bootstrap: str, **extra: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--role", role, "--bootstrap", bootstrap]
    command += ["--url", emulator["url"], "--calendar-ids", ",".join(emulator["calendars"])]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", value]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        result = read_result(proc)
        proc.wait(120)
    return result


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _row(name: str, r: dict[str, Any]) -> str:
    rate = r["events"] / r["seconds"]
    per_k = 1000 * r["cpu"] / r["events"]
    return (
        f"| {name:<10} | {r['events']:>7,} | {r['seconds']:>7.2f} | {rate:>9,.0f} "
        f"| {per_k:>7.3f} | {r['rss_mib']:>6} | {r['events'] / r['cpu']:>10,.0f} |"
    )


def orchestrate(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="gcal-bench-"))
    bootstrap, local_kafka = broker(workdir)
    command = [sys.executable, __file__, "--role", "emulator"]
    command += ["--events", str(args.events), "--calendars", str(args.calendars)]
    emulator_proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    rows: list[tuple[int, dict[str, Any], dict[str, Any], float, float]] = []
    try:
        emulator = read_result(emulator_proc)
        for latency in args.latencies:
            _post(f"{emulator['url']}/emulator/latency", {"routes": {"events.list": latency}})
            extra = {"workers": str(args.workers)} if args.workers else {}
            extra["gc"] = args.gc
            if args.profile:
                Path(args.profile).mkdir(parents=True, exist_ok=True)
                extra["profile"] = str(Path(args.profile) / f"connector-{latency}ms.prof")
            emu0 = proc_cpu(emulator_proc.pid)
            connector = _side("connector", emulator, bootstrap, **extra)
            emu1 = proc_cpu(emulator_proc.pid)
            baseline = _side("baseline", emulator, bootstrap)
            emu2 = proc_cpu(emulator_proc.pid)
            rows.append((latency, connector, baseline, emu1 - emu0, emu2 - emu1))
    finally:
        assert emulator_proc.stdin is not None
        emulator_proc.stdin.close()
        emulator_proc.wait(30)
        if local_kafka is not None:
            local_kafka.stop()
    print(
        f"\nfull sync, {args.events:,} events over {args.calendars} calendars, "
        f"page {PAGE}, {os.cpu_count()} cores; CPU = the side's own process (emulator excluded)"
    )
    print("| case       | events  | seconds | events/s  | CPU s/1k | RSS MiB | events/CPU-s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for latency, connector, baseline, emu_c, emu_b in rows:
        print(_row(f"{latency} ms conn", connector))
        print(_row(f"{latency} ms base", baseline))
        speed = (connector["events"] / connector["seconds"]) / (
            baseline["events"] / baseline["seconds"]
        )
        cpu = (connector["cpu"] / connector["events"]) / (baseline["cpu"] / baseline["events"])
        print(
            f"  {latency} ms/page: connector/baseline throughput {speed:.2f}x, CPU per event "
            f"{cpu:.2f}x; connector start-up {connector['startup_seconds']:.2f} s "
            f"(not timed); emulator CPU {emu_c:.1f} s (connector run), {emu_b:.1f} s (baseline)"
        )
        threads = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(connector["threads"].items()))
        print(f"  connector CPU by thread kind since start (incl. start-up): {threads}")
        collections = ", ".join(
            f"gen {gen}: {n:.0f} in {sec:.2f} s" for gen, (n, sec) in connector["gc"].items()
        )
        print(f"  connector garbage collector ({args.gc}): {collections}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("emulator", "connector", "baseline"))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--calendars", type=int, default=10)
    parser.add_argument("--latencies", type=int, nargs="+", default=[0, 50])
    parser.add_argument("--workers", type=int, default=0, help="connector workers (0: default)")
    parser.add_argument(
        "--gc",
        default="run",
        help="connector collector: 'run' (as gcal-kafka run tunes it), 'default' (Python's), "
        "or thresholds 'g0,g1,g2'",
    )
    parser.add_argument("--profile", help="directory (orchestrator) or file (connector role)")
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--calendar-ids", help=argparse.SUPPRESS)
    args = parser.parse_args()
    roles = {"emulator": role_emulator, "connector": role_connector, "baseline": role_baseline}
    roles.get(args.role, orchestrate)(args)


if __name__ == "__main__":
    main()
