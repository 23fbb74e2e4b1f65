"""Every benchmark in ``benchmarks/`` runs end to end at a tiny size, so none of them rots.

They are measured by hand (the README says how); here each one only has to finish and print
its table, against the test broker (``GCAL_KAFKA_TEST_BOOTSTRAP``) and its own emulator.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "full_sync": (
        ["--events", "600", "--calendars", "2", "--latencies", "0"],
        "connector/baseline",
    ),
    "idle_pass_cost": (
        ["--users", "1", "--calendars", "4", "--passes", "8", "--rate", "0", "--idle", "0.5"],
        "bare",
    ),
    "many_calendars": (
        ["--users", "2", "--calendars", "2", "--events", "1", "--idle", "1", "--timeout", "240"],
        "restart: process start to /readyz 200",
    ),
    "push_latency": (
        ["--changes", "10", "--calendars", "2", "--rate", "20", "--warmup", "2"],
        "end to end",
    ),
    "avro_encode": (["--events", "300", "--calendars", "2", "--rounds", "1"], "sparse writer"),
    "emulator_paging": (["--events", "600", "--page-size", "250"], "paged 600 events in 3 pages"),
    "observer_scaling": (["--sizes", "50", "--repeat", "1"], "channel_state"),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_benchmark_runs(name: str, kafka_bootstrap: str) -> None:
    args, expected = CASES[name]
    env = {**os.environ, "GCAL_KAFKA_TEST_BOOTSTRAP": kafka_bootstrap}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert expected in done.stdout, done.stdout[-3000:]
