"""The garbage collector's settings for the connector and its decoding processes."""

from __future__ import annotations

import gc

# Collect the young generation after this many net new container objects (Python: 700).
YOUNG_THRESHOLD = 200_000


def tune_garbage_collector(*, freeze: bool = True) -> None:
    """Freeze the start-up heap (restored state, schemas, clients) out of the collector's
    reach and collect the young generation only after 200,000 net new container objects.

    A page of 2,500 events is about 75,000 containers, alive from decode to encode. Python's
    default (700) scanned them as they were built and again in older generations: a third of
    a full sync's CPU. At 200,000: 1-3 collections per 100,000 events (benchmarks/full_sync.py
    prints them). The cost: cyclic garbage (a few tens of MB at most) may live longer.
    """
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
