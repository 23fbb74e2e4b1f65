"""Cost of ``PrometheusObserver``'s bookkeeping as the number of streams grows.

What a restart of a 10,000-calendar connector does to the observer (README, "Scale and
latency"): one ``channel_state("open")`` per restored channel (``wiring.make_channels``),
``streams_known``, then per stream one ``pass_finished`` and one ``stream_state`` (the start-up
passes). Each series of N calls is timed for N = 1,000 and 10,000 on a fresh observer; the
ratio of the 10,000-call time to the 1,000-call time is about 10 when a call costs the same
whatever the number of streams, about 100 when it is O(N) (quadratic in total). One scrape of
``/metrics`` (``generate_latest``) at the end shows what a scrape costs at that size.

Run: ``python benchmarks/observer_scaling.py [--sizes 1000 10000] [--repeat 3]`` (no broker,
no emulator; a few seconds with the O(1) observer, about a minute before it).
To compare with another version of the observer, put its tree first on the path:
``git worktree add /tmp/old COMMIT && PYTHONPATH=/tmp/old python benchmarks/observer_scaling.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # after PYTHONPATH, so another tree can be measured

from prometheus_client import generate_latest  # noqa: E402

import connector.adapters.metrics as metrics  # noqa: E402
from connector.adapters.metrics import PrometheusObserver  # noqa: E402

SERIES = ("channel_state", "stream_state", "pass_finished")


def run(n: int) -> dict[str, float]:
    """Seconds for each series of n calls, and for one scrape afterwards, on a fresh observer."""
    m = PrometheusObserver()
    ids = [f"acct{i // 100:03d}/cal{i % 100:02d}" for i in range(n)]
    accounts = {sid: sid.split("/", 1)[0] for sid in ids}
    base_ms = int(time.time() * 1000) + 86_400_000
    out: dict[str, float] = {}

    def timed(name: str, call: Callable[[int, str], None]) -> None:
        started = time.perf_counter()
        for i, sid in enumerate(ids):
            call(i, sid)
        out[name] = time.perf_counter() - started

    # restored channels, expiries in no particular order (as read from the checkpoints)
    timed("channel_state", lambda i, sid: m.channel_state(sid, "open", base_ms + (i * 7919) % n))
    m.streams_known(ids, accounts)
    timed("stream_state", lambda i, sid: m.stream_state(sid, accounts[sid], "ok"))
    timed("pass_finished", lambda i, sid: m.pass_finished(sid, "INCREMENTAL", "STARTUP", "ok", 0))
    started = time.perf_counter()
    generate_latest(m.registry)
    out["scrape"] = time.perf_counter() - started
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest is shown")
    args = ap.parse_args()
    print(f"observer: {metrics.__file__}")
    best: dict[int, dict[str, float]] = {}
    for n in args.sizes:
        runs = [run(n) for _ in range(args.repeat)]
        best[n] = {k: min(r[k] for r in runs) for k in runs[0]}
    header = f"{'calls':>8}" + "".join(f"{s + ' µs/call':>24}" for s in SERIES)
    print(header + f"{'total s':>10}{'scrape ms':>11}")
    for n, b in best.items():
        row = "".join(f"{b[s] / n * 1e6:>24.2f}" for s in SERIES)
        print(f"{n:>8,}" + row + f"{sum(b[s] for s in SERIES):>10.3f}{b['scrape'] * 1e3:>11.2f}")
    small, large = min(best), max(best)
    if small != large:
        ratios = ", ".join(f"{s} {best[large][s] / best[small][s]:.1f}" for s in SERIES)
        print(
            f"time for {large:,} calls / time for {small:,} calls: {ratios} "
            f"(linear: ~{large / small:.0f}, quadratic: ~{(large / small) ** 2:.0f})"
        )


if __name__ == "__main__":
    main()
