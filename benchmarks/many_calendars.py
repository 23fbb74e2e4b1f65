"""10,000 calendars in one connector process, push on: first sync, idle CPU, memory, restart.

Three processes, so each one's CPU is its own: the emulator (``gcal-kafka emulator --seed FILE``
with a generated dataset of USERS x CALENDARS calendars, a few events each), the connector
(``gcal-kafka run --config FILE``, metrics and webhook on loopback) and a real Kafka broker
(``deploy/local/kafka``, unless ``GCAL_KAFKA_TEST_BOOTSTRAP`` names one). The connector's CPU
and memory come from ``/proc/<pid>``, summed with its page decoding process; readiness from
``/readyz``; progress from ``/metrics``.

Phases: (1) first start on empty topics until every stream passed once and every calendar has
an open push channel; (2) idle for ``--idle`` seconds (nothing changes, channels healthy);
(3) SIGTERM, restart, time until ``/readyz`` answers 200 (checkpoints read, published state
rebuilt) and until every stream finished its start-up pass; (4) idle again.

Run: ``python benchmarks/many_calendars.py [--users 100 --calendars 100 --events 3 --idle 60]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
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
    free_port,
    proc_cpu,
    process_tree,
    tree_cpu,
)

GCAL_KAFKA = str(Path(sys.executable).with_name("gcal-kafka"))
NOW = datetime(2026, 1, 1, tzinfo=UTC)

# What a real deployment of this size would set (stated in the README with the figures).
WORKERS = 8
POLL_SECONDS = 300.0  # safety poll without a healthy channel (the default)
HEALTHY_POLL_SECONDS = 3600.0  # safety poll while the channel is healthy (the default)
PARTITIONS = 6


# -- /proc -----------------------------------------------------------------------------------
def status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in MiB and the thread count, from /proc/<pid>/status, summed over the
    connector and its page decoding process."""
    out = {"VmRSS": 0, "VmHWM": 0, "Threads": 0}
    for member in process_tree(pid):
        for line in Path(f"/proc/{member}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] += int(value.split()[0]) // 1024
            elif key == "Threads":
                out[key] += int(value)
    return out


# -- HTTP ------------------------------------------------------------------------------------
def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except OSError:
        return 0, ""


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def metrics(port: int) -> dict[str, float]:
    """Every sample of /metrics as ``name{labels}`` -> value."""
    code, text = http_get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    if code != 200:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def total(sample: dict[str, float], prefix: str, contains: str = "") -> float:
    return sum(v for k, v in sample.items() if k.startswith(prefix) and contains in k)


def open_channels(sample: dict[str, float]) -> float:
    """Open push channels (the state is ``open``; older builds said ``active``)."""
    return sum(
        sample.get(f'gcal_kafka_watch_channels{{state="{s}"}}', 0) for s in ("open", "active")
    )


# -- set-up ----------------------------------------------------------------------------------
def write_dataset(path: Path, users: int, calendars: int, events: int) -> list[str]:
    from connector.emulator.sample import generate_dataset

    data = generate_dataset(
        users=users, calendars_per_user=calendars, events_per_calendar=events, seed=7, now=NOW
    )
    path.write_text(json.dumps(data))
    return [u["email"] for u in data["users"]]


def write_config(
    workdir: Path, bootstrap: str, emulator_url: str, emails: list[str], ports: dict[str, int]
) -> Path:
    import yaml

    accounts = []
    for email in emails:
        creds = workdir / f"creds-{email}.json"
        creds.write_text(
            json.dumps(
                {"client_id": "b", "client_secret": "b", "refresh_token": f"refresh-{email}"}
            )
        )
        accounts.append(
            {
                "name": email.split("@")[0],
                "credentials": {"kind": "authorized_user", "path": str(creds)},
                "calendars": "all",
            }
        )
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    webhook = ports["webhook"]
    config = {
        "name": f"{prefix}connector",
        "kafka": {"bootstrap.servers": bootstrap},
        "topics": {"prefix": prefix, "partitions": PARTITIONS},
        "google": {
            "api_endpoint": f"{emulator_url}/calendar/v3/",
            "token_uri": f"{emulator_url}/token",
        },
        "sync": {"poll_interval_seconds": POLL_SECONDS},
        "workers": WORKERS,
        "accounts": accounts,
        "metrics": {"enabled": True, "host": "127.0.0.1", "port": ports["metrics"]},
        "webhook": {
            "enabled": True,
            "host": "127.0.0.1",
            "port": webhook,
            "public_url": f"http://127.0.0.1:{webhook}/notifications",
            "secret": "bench-secret-0123456789abcdef",
            "healthy_poll_seconds": HEALTHY_POLL_SECONDS,
        },
        "logging": {"level": "INFO", "format": "json"},
    }
    path = workdir / "connector.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_emulator(seed: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [GCAL_KAFKA, "emulator", "--port", str(port), "--seed", str(seed)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while http_get(f"{url}/emulator/config")[0] == 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"emulator did not start; see {log}")
        time.sleep(0.2)
    return proc, url


def start_connector(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [GCAL_KAFKA, "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def wait(what: str, predicate: Any, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """Poll ``predicate`` every 0.1-1 s; the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        if predicate():
            return time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"the connector exited ({proc.returncode}) waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)
        pause = min(1.0, pause * 1.5)


def quiescent(port: int, proc: subprocess.Popen[bytes], timeout: float) -> float:
    """The time the passes counter last moved, once it has not moved for 10 s."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while time.monotonic() - since < 10:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the connector exited or never went quiet")
        passes = total(metrics(port), "gcal_kafka_passes_total")
        if passes != last:
            last, since = passes, time.monotonic()
        time.sleep(1)
    return since


def ready(port: int) -> bool:
    return http_get(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200


def idle(pid: int, seconds: float, port: int) -> dict[str, float]:
    """CPU share of one core over ``seconds`` while nothing changes (no scrapes inside)."""
    before = metrics(port)
    time.sleep(1)
    c0, t0 = tree_cpu(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = tree_cpu(pid), time.monotonic()
    after = metrics(port)
    req = "gcal_kafka_google_requests_total"
    passes = "gcal_kafka_passes_total"
    return {
        "cpu_pct": 100 * (c1 - c0) / (t1 - t0),
        "seconds": t1 - t0,
        "requests": total(after, req) - total(before, req),
        "passes": total(after, passes) - total(before, passes),
        **status(pid),
    }


# -- the run ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--calendars", type=int, default=100, help="calendars per user")
    parser.add_argument("--events", type=int, default=3, help="events per calendar")
    parser.add_argument("--idle", type=float, default=60.0, help="idle window, seconds")
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    n = args.users * args.calendars
    workdir = Path(tempfile.mkdtemp(prefix="gcal-many-"))
    print(f"work dir {workdir} (logs: emulator.log, connector.log)", flush=True)
    seed = workdir / "dataset.json"
    emails = write_dataset(seed, args.users, args.calendars, args.events)
    bootstrap, kafka = broker(workdir)
    emulator, url = start_emulator(seed, workdir / "emulator.log")
    ports = {"metrics": free_port(), "webhook": free_port()}
    config = write_config(workdir, bootstrap, url, emails, ports)
    log = workdir / "connector.log"
    port = ports["metrics"]
    rows: dict[str, Any] = {}
    proc: subprocess.Popen[bytes] | None = None
    try:
        # (1) first start, empty topics
        emu0 = proc_cpu(emulator.pid)
        t0 = time.monotonic()
        proc = start_connector(config, log)
        pid = proc.pid
        rows["first_ready"] = wait("/readyz", lambda: ready(port), proc, args.timeout) - t0
        synced = wait(
            "every stream synced",
            lambda: metrics(port).get('gcal_kafka_streams{state="ok"}', 0) >= n,
            proc,
            args.timeout,
        )
        rows["first_sync"] = synced - t0
        rows["first_sync_cpu"] = tree_cpu(pid)
        channels = wait(
            "every channel open",
            lambda: open_channels(metrics(port)) >= n,
            proc,
            args.timeout,
        )
        rows["channels_open"] = channels - t0
        # Opening a channel schedules one more pass (closing the gap before it): wait until no
        # pass has finished for 10 s, so the idle window below really is idle.
        rows["quiet"] = quiescent(port, proc, args.timeout) - t0
        rows["first_cpu"] = tree_cpu(pid)
        rows["first_status"] = status(pid)
        rows["emulator_cpu_first"] = proc_cpu(emulator.pid) - emu0
        state = json.loads(http_get(f"{url}/emulator/state", timeout=60)[1] or "{}")
        rows["emulator_channels"] = len(state.get("push", {}).get("channels", []) or [])
        time.sleep(5)  # the last notifications and stops settle
        # (2) idle
        rows["idle1"] = idle(pid, args.idle, port)
        rows["metrics_first"] = metrics(port)
        # (3) restart
        stop0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
        rows["stop"] = time.monotonic() - stop0
        t0 = time.monotonic()
        proc = start_connector(config, log)
        pid = proc.pid
        rows["restart_ready"] = wait("/readyz", lambda: ready(port), proc, args.timeout) - t0
        rows["restart_ready_cpu"] = tree_cpu(pid)
        resumed = wait(
            "every start-up pass",
            lambda: total(metrics(port), "gcal_kafka_passes_total", 'trigger="startup"') >= n,
            proc,
            args.timeout,
        )
        rows["restart_resumed"] = resumed - t0
        rows["restart_cpu"] = tree_cpu(pid)
        rows["restart_status"] = status(pid)
        time.sleep(5)
        # (4) idle after the restart
        rows["idle2"] = idle(pid, args.idle, port)
        rows["metrics_restart"] = metrics(port)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(60)
        if kafka is not None:
            kafka.stop()
    (workdir / "result.json").write_text(json.dumps(rows, indent=1, default=str))
    report(rows, n, args)


def report(r: dict[str, Any], n: int, args: argparse.Namespace) -> None:
    i1, i2 = r["idle1"], r["idle2"]
    per_pass = (r["restart_cpu"] - r["restart_ready_cpu"]) / n
    steady = 100 * per_pass * n / HEALTHY_POLL_SECONDS
    print(
        f"\n{n:,} calendars ({args.users} accounts x {args.calendars}, {args.events} events "
        f"each), push on, workers {WORKERS}, safety poll {HEALTHY_POLL_SECONDS:.0f} s healthy / "
        f"{POLL_SECONDS:.0f} s without channel, {os.cpu_count()} cores (shared)"
    )
    print("| measure | value | target |")
    print("|---|---:|---|")
    rows = [
        ("first start: /readyz 200", f"{r['first_ready']:.1f} s", ""),
        ("first full sync of every calendar", f"{r['first_sync']:.1f} s", ""),
        ("... and every push channel open", f"{r['channels_open']:.1f} s", ""),
        ("... and the last pass finished (quiet 10 s)", f"{r['quiet']:.1f} s", ""),
        ("connector CPU for all that", f"{r['first_cpu']:.1f} s", ""),
        ("emulator CPU meanwhile (not counted)", f"{r['emulator_cpu_first']:.1f} s", ""),
        ("channels open in the emulator", f"{r['emulator_channels']:,}", ""),
        (f"idle CPU after first sync ({i1['seconds']:.0f} s)", f"{i1['cpu_pct']:.2f} %", "< 5 %"),
        ("  requests / passes during that idle", f"{i1['requests']:.0f} / {i1['passes']:.0f}", ""),
        ("RSS after first sync (VmRSS)", f"{i1['VmRSS']} MiB", "< 500 MB"),
        ("peak RSS, first run (VmHWM)", f"{i1['VmHWM']} MiB", "< 500 MB"),
        ("threads", f"{i1['Threads']}", ""),
        ("SIGTERM to exit", f"{r['stop']:.1f} s", ""),
        ("restart: process start to /readyz 200", f"{r['restart_ready']:.1f} s", "seconds"),
        ("  CPU until ready", f"{r['restart_ready_cpu']:.1f} s", ""),
        ("restart: every stream's start-up pass done", f"{r['restart_resumed']:.1f} s", ""),
        ("  CPU per incremental no-change pass", f"{1000 * per_pass:.2f} ms", ""),
        (
            f"  => steady safety-poll CPU ({n:,} / {HEALTHY_POLL_SECONDS:.0f} s)",
            f"{steady:.2f} %",
            "< 5 %",
        ),
        (f"idle CPU after restart ({i2['seconds']:.0f} s)", f"{i2['cpu_pct']:.2f} %", "< 5 %"),
        ("RSS after restart (VmRSS / VmHWM)", f"{i2['VmRSS']} / {i2['VmHWM']} MiB", "< 500 MB"),
        ("threads after restart", f"{i2['Threads']}", ""),
    ]
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")


if __name__ == "__main__":
    main()
