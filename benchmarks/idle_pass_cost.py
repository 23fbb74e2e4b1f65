"""CPU of one no-change incremental pass (the safety poll), vs the bare events.list call.

With push on, each stream is still polled every ``webhook.healthy_poll_seconds`` (3,600 s) and
nearly every such pass finds nothing. Four processes, each one's CPU its own: Kafka
(``deploy/local/kafka`` or ``GCAL_KAFKA_TEST_BOOTSTRAP``), the emulator (``gcal-kafka emulator
--seed FILE``), the connector (``wiring.build`` as ``gcal-kafka run`` does: exactly-once, push
on, Prometheus observer, JSON logs at INFO, the tuned GC) and the bare baseline (a hand-written
google-api-python-client poller: ``events().list(syncToken=..., maxResults=2500).execute()``).

The connector syncs every calendar, opens every channel, goes quiet, measures its idle CPU for
``--idle`` s, then triggers ``--passes`` POLL passes at ``--rate`` per second (paced, so each
pass is on its own as in the spread-out safety poll; 0: all at once). CPU comes from
``/proc/self/task/*/stat`` by thread kind, idle background subtracted. ``--commit-every-pass``
commits quiet passes too (the cost before they were skipped); ``--profile FILE`` writes a
cProfile (per-thread CPU) of the measured passes' worker and committer work.

Run: ``python benchmarks/idle_pass_cost.py [--users 3 --calendars 100 --passes 600 --rate 20]``.
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
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402  (after the sys.path line)
    broker,
    emit,
    free_port,
    google_client,
    proc_cpu,
    read_result,
)
from benchmarks.common import thread_cpu as _all_thread_cpu  # noqa: E402
from benchmarks.many_calendars import start_emulator  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEALTHY_POLL_SECONDS = 3600.0
FLEET = 10_000


def thread_cpu() -> dict[str, float]:
    """CPU by thread kind, without the benchmark's own thread (its triggering and waiting)."""
    totals = _all_thread_cpu()
    totals.pop("main", None)
    return totals


def minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in sorted(set(a) | set(b))}


# -- the connector process --------------------------------------------------------------------
def role_connector(args: argparse.Namespace) -> None:
    from connector import logs, wiring
    from connector.adapters.metrics import PrometheusObserver
    from connector.config import Settings
    from connector.core.records import Phase, Trigger
    from connector.gc_tuning import tune_garbage_collector

    work = Path(args.workdir)
    accounts = []
    for email in args.emails.split(","):
        creds = work / f"creds-{email}.json"
        secret = {"client_id": "b", "client_secret": "b", "refresh_token": f"refresh-{email}"}
        creds.write_text(json.dumps(secret))
        kind = {"kind": "authorized_user", "path": str(creds)}
        accounts.append({"name": email.split("@")[0], "credentials": kind, "calendars": "all"})
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    port = free_port()
    settings = Settings(
        name=f"{prefix}connector",
        kafka={"bootstrap.servers": args.bootstrap},
        topics={"prefix": prefix, "partitions": 6},
        google={"api_endpoint": f"{args.url}/calendar/v3/", "token_uri": f"{args.url}/token"},
        sync={"poll_interval_seconds": 300},
        workers=8,
        accounts=accounts,
        metrics={"enabled": False},
        webhook={
            "enabled": True,
            "host": "127.0.0.1",
            "port": port,
            "public_url": f"http://127.0.0.1:{port}/notifications",
            "secret": "bench-secret-0123456789abcdef",
            "healthy_poll_seconds": HEALTHY_POLL_SECONDS,
        },
    )
    log_file = (work / "connector.log").open("a")
    logs.configure("INFO", "json", stream=log_file)
    observer = PrometheusObserver()
    connector = wiring.build(settings, observer)
    tune_garbage_collector()
    service = connector.service
    if args.commit_every_pass:  # the cost of the commit that quiet passes skip
        service._passes._quiet_max_age_ms = 0
    loop = threading.Thread(
        target=service.run, kwargs={"poll": connector.tick}, name="main-loop", daemon=True
    )
    loop.start()

    def count(counter: Any) -> float:
        return sum(s.value for m in counter.collect() for s in m.samples if s.name[-6:] == "_total")

    def passes() -> float:
        return count(observer.passes)

    def synced() -> bool:
        rts = list(service.runtimes.values())
        return len(rts) >= args.expect and all(
            rt.committed is not None
            and rt.committed.phase is Phase.INCREMENTAL
            and rt.committed.channel is not None
            for rt in rts
        )

    deadline = time.monotonic() + args.timeout
    while not synced():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the first sync and the channels")
        time.sleep(0.2)
    last, since = passes(), time.monotonic()
    while time.monotonic() - since < 3:  # the pass after each channel opened
        time.sleep(0.5)
        if passes() != last:
            last, since = passes(), time.monotonic()
    profiles = install_profiles() if args.profile else None

    c0, t0 = thread_cpu(), time.monotonic()
    time.sleep(args.idle)
    c1, t1 = thread_cpu(), time.monotonic()
    idle = minus(c1, c0)

    streams = sorted(service.runtimes)
    start, commits0 = passes(), count(observer.commits)
    if profiles is not None:
        profiles["on"] = True
    c2, t2 = thread_cpu(), time.monotonic()
    for i in range(args.passes):
        service.trigger(streams[i % len(streams)], Trigger.POLL)
        if args.rate > 0:
            time.sleep(max(0.0, t2 + (i + 1) / args.rate - time.monotonic()))
    # A burst (--rate 0) may ask a stream for a pass while one is still due: those coalesce
    # into one, so stop waiting once no pass has finished for 2 s (``done`` counts them).
    last, last_change = passes(), time.monotonic()
    while last < start + args.passes and time.monotonic() - last_change < 2.0:
        time.sleep(0.01)
        if passes() != last:
            last, last_change = passes(), time.monotonic()
    c3, t3 = thread_cpu(), time.monotonic()
    if profiles is not None:
        profiles["on"] = False
    done = passes() - start
    service.stop()
    loop.join(60)
    connector.close()
    if profiles is not None:
        import pstats

        pstats.Stats(*profiles["all"]).dump_stats(args.profile)
    emit(
        {
            "streams": len(streams),
            "passes": done,
            "window": t3 - t2,
            "cpu": minus(c3, c2),
            "idle": {k: v / (t1 - t0) for k, v in idle.items()},
            "commits": count(observer.commits) - commits0,
        }
    )


def install_profiles() -> dict[str, Any]:
    """cProfile (per-thread CPU time) around each worker's pass and each commit, while on."""
    import cProfile

    from connector.adapters.kafka_publisher import KafkaChangePublisher
    from connector.service import SyncService

    state: dict[str, Any] = {"on": False, "all": []}
    local = threading.local()

    def wrap(fn: Any) -> Any:
        def wrapped(*a: Any, **kw: Any) -> Any:
            if not state["on"]:
                return fn(*a, **kw)
            prof = getattr(local, "prof", None)
            if prof is None:
                prof = local.prof = cProfile.Profile(time.thread_time)
                state["all"].append(prof)
            prof.enable()
            try:
                return fn(*a, **kw)
            finally:
                prof.disable()

        return wrapped

    SyncService._run_stream = wrap(SyncService._run_stream)  # type: ignore[method-assign]
    KafkaChangePublisher._commit_batch = wrap(  # type: ignore[method-assign]
        KafkaChangePublisher._commit_batch
    )
    return state


# -- the bare baseline process ----------------------------------------------------------------
def role_bare(args: argparse.Namespace) -> None:
    """A hand-written poller: events.list with the sync token, keep the next one, nothing else."""
    calendars: list[tuple[Any, str]] = []
    for email, ids in json.loads(args.calendars_json).items():
        api = google_client(args.url, email)
        calendars += [(api, cid) for cid in ids]
    tokens: dict[str, str] = {}
    for api, cid in calendars:  # the full sync, not timed
        request = api.events().list(calendarId=cid, maxResults=2500)
        while request is not None:
            page = request.execute()
            if "nextSyncToken" in page:
                tokens[cid] = page["nextSyncToken"]
            request = api.events().list_next(request, page)
    items = 0
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(args.passes):
        api, cid = calendars[i % len(calendars)]
        page = api.events().list(calendarId=cid, syncToken=tokens[cid], maxResults=2500).execute()
        items += len(page.get("items", []))
        tokens[cid] = page["nextSyncToken"]
    # The same calls with each account's events collection made once (``service.events()``
    # builds every method and docstring again: about 1.5 ms a call).
    apis = {id(api): api for api, _ in calendars}
    collections = {key: api.events() for key, api in apis.items()}
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    for i in range(args.passes):
        api, cid = calendars[i % len(calendars)]
        events = collections[id(api)]
        page = events.list(calendarId=cid, syncToken=tokens[cid], maxResults=2500).execute()
        items += len(page.get("items", []))
        tokens[cid] = page["nextSyncToken"]
    r2 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    reused = (r2.ru_utime + r2.ru_stime) - (r1.ru_utime + r1.ru_stime)
    emit({"calls": args.passes, "cpu": cpu, "reused_cpu": reused, "items": items})


# -- the orchestrator -------------------------------------------------------------------------
def side(role: str, args: argparse.Namespace, **extra: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--role", role, "--passes", str(args.passes)]
    for key, value in extra.items():
        command += [f"--{key.replace('_', '-')}", value][: 2 if value else 1]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        result = read_result(proc)
        proc.wait(120)
    return result


def orchestrate(args: argparse.Namespace) -> None:
    from connector.emulator.sample import generate_dataset

    workdir = Path(tempfile.mkdtemp(prefix="gcal-idle-"))
    data = generate_dataset(
        users=args.users,
        calendars_per_user=args.calendars,
        events_per_calendar=args.events,
        seed=7,
        now=NOW,
    )
    seed = workdir / "dataset.json"
    seed.write_text(json.dumps(data))
    calendars = {u["email"]: [c["id"] for c in u["calendars"]] for u in data["users"]}
    n = sum(len(ids) for ids in calendars.values())
    print(f"work dir {workdir} ({n} calendars; logs: emulator.log, connector.log)", flush=True)
    bootstrap, kafka = broker(workdir)
    emulator, url = start_emulator(seed, workdir / "emulator.log")
    try:
        extra = {"bootstrap": bootstrap, "url": url, "workdir": str(workdir)}
        extra |= {"emails": ",".join(calendars), "expect": str(n), "rate": str(args.rate)}
        extra |= {"idle": str(args.idle), "timeout": str(args.timeout)}
        if args.profile:
            extra["profile"] = str(Path(args.profile).resolve())
        if args.commit_every_pass:
            extra["commit_every_pass"] = ""
        e0 = proc_cpu(emulator.pid)
        conn = side("connector", args, **extra)
        e1 = proc_cpu(emulator.pid)
        bare = side("bare", args, url=url, calendars_json=json.dumps(calendars))
        e2 = proc_cpu(emulator.pid)
    finally:
        emulator.terminate()
        emulator.wait(60)
        if kafka is not None:
            kafka.stop()
    report(args, conn, bare, n, e1 - e0, e2 - e1)


def report(
    args: argparse.Namespace,
    conn: dict[str, Any],
    bare: dict[str, Any],
    n: int,
    emu_conn: float,
    emu_bare: float,
) -> None:
    passes, window = conn["passes"], conn["window"]
    background = {k: v * window for k, v in conn["idle"].items()}
    raw = sum(conn["cpu"].values())
    net = raw - sum(background.values())
    per_pass, bare_ms = 1000 * net / passes, 1000 * bare["cpu"] / bare["calls"]
    print(
        f"\n{passes:.0f} no-change incremental passes over {conn['streams']} calendars "
        f"(push on, 8 workers, {args.rate:g} passes/s, {conn['commits']:.0f} Kafka "
        f"transactions), {os.cpu_count()} cores shared; {window:.1f} s window"
    )
    print("| thread kind | CPU ms per pass | of which idle background |")
    print("|---|---:|---:|")
    for kind, cpu in conn["cpu"].items():
        idle_ms = 1000 * background.get(kind, 0) / passes
        print(f"| {kind} | {1000 * cpu / passes:.2f} | {idle_ms:.2f} |")
    print(f"| **total, background subtracted** | **{per_pass:.2f}** | |")
    reused_ms = 1000 * bare["reused_cpu"] / bare["calls"]
    print(
        f"\nconnector ms per pass {per_pass:.2f} (raw {1000 * raw / passes:.2f}); bare list "
        f"call ms {bare_ms:.2f} ({bare['calls']} calls, {bare['items']} items): ratio "
        f"{per_pass / bare_ms:.2f}x; bare with the events collection reused {reused_ms:.2f} ms: "
        f"ratio {per_pass / reused_ms:.2f}x"
    )
    print(
        f"implied safety poll at {FLEET:,} streams per {HEALTHY_POLL_SECONDS:.0f} s: connector "
        f"{per_pass * FLEET / HEALTHY_POLL_SECONDS / 10:.2f}% of a core, bare "
        f"{bare_ms * FLEET / HEALTHY_POLL_SECONDS / 10:.2f}%; idle background "
        f"{100 * sum(conn['idle'].values()):.2f}% at {conn['streams']} streams"
    )
    print(
        f"emulator CPU (not counted): {1000 * emu_conn / max(1, passes):.2f} ms per pass during "
        f"the connector run (incl. its first sync), {1000 * emu_bare / bare['calls']:.2f} ms per "
        "bare call (incl. its full sync)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=("connector", "bare"))
    parser.add_argument("--users", type=int, default=3, help="accounts")
    parser.add_argument("--calendars", type=int, default=100, help="calendars per account")
    parser.add_argument("--events", type=int, default=3, help="events per calendar")
    parser.add_argument("--passes", type=int, default=600, help="no-change passes to measure")
    parser.add_argument("--rate", type=float, default=20.0, help="passes per second (0: burst)")
    parser.add_argument("--idle", type=float, default=5.0, help="idle window before, seconds")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--profile", help="write a cProfile of the measured passes here")
    parser.add_argument(
        "--commit-every-pass", action="store_true", help="commit quiet passes too (as before)"
    )
    for hidden in ("bootstrap", "url", "workdir", "emails", "expect", "calendars-json"):
        parser.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.expect is not None:
        args.expect = int(args.expect)
    {"connector": role_connector, "bare": role_bare}.get(args.role, orchestrate)(args)


if __name__ == "__main__":
    main()
