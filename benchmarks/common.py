"""What the benchmarks share: the local broker, results passed between processes, CPU from /proc.

Each benchmark runs its sides in their own processes so that each one's CPU is its own; a side
prints one ``RESULT {json}`` line that the orchestrator reads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def emit(result: dict[str, Any]) -> None:
    """A side's result, for ``read_result`` in the orchestrator."""
    print("RESULT " + json.dumps(result), flush=True)


def read_result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    raise RuntimeError(f"{proc.args} exited without a result (code {proc.wait()})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker(workdir: Path) -> tuple[str, Any]:
    """(bootstrap, broker to stop or None): ``GCAL_KAFKA_TEST_BOOTSTRAP`` if set, else a local
    single-node Apache Kafka (``deploy/local/kafka``) under ``workdir``."""
    external = os.environ.get("GCAL_KAFKA_TEST_BOOTSTRAP")
    if external:
        return external, None
    path = ROOT / "deploy" / "local" / "kafka" / "broker.py"
    spec = importlib.util.spec_from_file_location("gcal_bench_broker", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    local = module.LocalKafka(workdir / "kafka")
    return local.start(timeout=120), local


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the connector and its page decoding processes)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(c) for c in task.read_text().split()]
        except OSError:
            continue
        for child in children:
            found += process_tree(child)
    return found


def tree_cpu(pid: int) -> float:
    """User+system CPU seconds of ``pid`` and its live descendants."""
    total = 0.0
    for member in process_tree(pid):
        try:
            total += proc_cpu(member)
        except OSError:
            continue
    return total


def children_usage() -> tuple[float, int]:
    """(CPU seconds, sum of peak RSS in MiB) of this process's live descendants (the
    connector's page decoding processes): ``getrusage`` of the process does not include them."""
    cpu, peak_kib = 0.0, 0
    for child in process_tree(os.getpid())[1:]:
        try:
            cpu += proc_cpu(child)
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        peak_kib += next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM"))
    return cpu, peak_kib // 1024


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's live threads by kind: ``librdkafka`` (``rdk:*``),
    ``workers`` (the sync pool), ``kafka-committer``, ``main-loop``, ``main`` (the
    benchmark's own thread, with start-up) and ``other``."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    totals: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), comm)
        if comm.startswith("rdk:"):
            kind = "librdkafka"
        elif name.startswith("sync"):
            kind = "workers"
        elif name in ("kafka-committer", "main-loop"):
            kind = name
        elif name == "MainThread":
            kind = "main"
        else:
            kind = "other"
        totals[kind] = totals.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return totals


def google_client(url: str, email: str) -> Any:
    """A google-api-python-client Calendar service on the emulator at ``url``, as ``email``."""
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    creds = Credentials(
        None,
        refresh_token=f"refresh-{email}",
        client_id="b",
        client_secret="b",
        token_uri=f"{url}/token",
    )
    return build(
        "calendar",
        "v3",
        credentials=creds,
        client_options={"api_endpoint": f"{url}/calendar/v3/"},
        static_discovery=True,
    )
