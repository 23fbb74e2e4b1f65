"""Kill the connector with SIGKILL at random moments while the calendar keeps changing.

The connector runs as a real subprocess (``gcal-kafka run``) against the real broker and the
emulator over HTTP. It is killed 20+ times, spread over full passes (a 410 is injected now and
then, and pages are slowed down) and incremental passes, then run to completion and stopped
with SIGTERM. A read_committed consumer applying the rebuild rule must end with exactly the
emulator's calendar, and the (key, op, generation, version) stream has no duplicate and no gap.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from connector.config import Settings
from connector.consumer import ChangeRecord
from connector.core.records import Op
from connector.emulator.server import EmulatorServer
from tests.integration.engine import (
    credentials_file,
    dataset,
    emulator_events,
    event,
    google,
    in_sync,
    observed,
    rebuilt,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration
ALICE = "alice@example.com"
KILLS = 22


class Mutator(threading.Thread):
    """Keeps inserting, renaming and deleting events through the Calendar API."""

    def __init__(self, emulator: EmulatorServer, seed: int) -> None:
        super().__init__(daemon=True)
        self.api = google(emulator).events()
        self.rng = random.Random(seed)
        self.stop_flag = threading.Event()
        self.live = [f"base{i:05d}" for i in range(3000)]
        self.count = 0

    def run(self) -> None:
        while not self.stop_flag.wait(0.02):
            roll = self.rng.random()
            if roll < 0.4 or len(self.live) < 10:
                new_id = f"mut{self.count:06d}"
                self.api.insert(calendarId=ALICE, body=event(new_id, "new")).execute()
                self.live.append(new_id)
            elif roll < 0.8:
                target = self.rng.choice(self.live)
                self.api.patch(
                    calendarId=ALICE, eventId=target, body={"summary": f"v{self.count}"}
                ).execute()
            else:
                target = self.live.pop(self.rng.randrange(len(self.live)))
                self.api.delete(calendarId=ALICE, eventId=target).execute()
            self.count += 1


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def markers(settings: Settings) -> tuple[int, int] | None:
    """(RESET_BEGIN count, RESET_END count), or None while a transaction holds readers back."""
    try:
        records = observed(settings)
    except AssertionError:  # the reader did not reach the end: a transaction is still open
        return None
    ends = sum(1 for r in records if r.change is not None and r.change.op is Op.RESET_END)
    return begins(records), ends


def incremental_now(settings: Settings, seen: list[tuple[int, int]]) -> bool:
    counts = markers(settings)
    if counts is None or counts[0] == 0 or counts[0] != counts[1]:
        return False
    seen.append(counts)
    return True


def new_generation_begun(settings: Settings, before: int) -> bool:
    counts = markers(settings)
    return counts is not None and counts[0] > before


def begins(records: list[ChangeRecord]) -> int:
    return sum(1 for r in records if r.change is not None and r.change.op is Op.RESET_BEGIN)


def check_stream(records: list[ChangeRecord]) -> None:
    """No duplicate, no gap: what exactly-once means for a consumer of the topic."""
    seen: Counter[tuple[str | None, str, int, str]] = Counter()
    where: dict[tuple[str | None, str, int, str], list[str]] = {}
    begins: Counter[int] = Counter()
    ends: dict[int, int] = {}
    counted: Counter[int] = Counter()
    first_op: dict[tuple[int, str], Op] = {}
    for r in records:
        change = r.change
        if change is None:
            continue
        gen = change.generation
        if change.op is Op.RESET_BEGIN:
            begins[gen] += 1
            continue
        if change.op is Op.RESET_END:
            assert gen not in ends, f"two RESET_END for generation {gen}"
            ends[gen] = change.event_count or 0
            assert change.event_count == counted[gen], (gen, change.event_count, counted[gen])
            continue
        version = str((change.event or {}).get("updated")) + str((change.event or {}).get("etag"))
        key = (r.event_id, change.op.value, gen, version)
        seen[key] += 1
        where.setdefault(key, []).append(
            f"@{r.offset} {change.phase.value}/{change.trigger.value} t={change.published_at_ms}"
        )
        if gen not in ends:
            counted[gen] += 1
        assert r.event_id is not None
        first = first_op.setdefault((gen, r.event_id), change.op)
        assert first in (Op.CREATED, Op.CANCELLED), f"{r.event_id} began with {first} in g{gen}"
    duplicates = {k: n for k, n in seen.items() if n > 1}
    assert not duplicates, "records published twice: " + "; ".join(
        f"{k[0]} {k[1]} g{k[2]}: {where[k]}" for k in list(duplicates)[:5]
    )
    assert all(n == 1 for n in begins.values()), begins
    generations = sorted(begins)
    assert generations == list(range(1, len(generations) + 1)), generations
    assert set(ends) == set(generations), (ends, generations)


def test_sigkill_at_random_moments_loses_nothing_and_duplicates_nothing(
    kafka_bootstrap: str, topic_prefix: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    rng = random.Random(20261122)
    emulator.control.seed(
        dataset({ALICE: [event(f"base{i:05d}", f"B{i}", day=1 + i % 28) for i in range(3000)]})
    )
    emulator.control.set_latency({"routes": {"events.list": 150}})
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, sync={"poll_interval_seconds": 0.2}
    )
    config = tmp_path / "config.yaml"
    raw = settings.model_dump(mode="json", exclude_none=True)
    raw["accounts"][0]["credentials"]["path"] = str(credentials_file(tmp_path))
    config.write_text(yaml.safe_dump(raw))
    log = tmp_path / "connector.log"

    mutator = Mutator(emulator, seed=7)
    mutator.start()
    try:
        for kill in range(KILLS):
            proc = start(config, log)
            if kill % 4 == 1:
                # A 410 in an incremental pass, then a kill inside the full pass it starts:
                # wait until no full pass is under way (a 410 only hits a pass that uses a
                # sync token), invalidate, wait for the new generation's RESET_BEGIN, kill.
                seen: list[tuple[int, int]] = []
                wait_for(
                    functools.partial(incremental_now, settings, seen),
                    timeout=120,
                    what="the restarted connector to be incremental",
                )
                emulator.control.invalidate_tokens(ALICE)
                wait_for(
                    functools.partial(new_generation_begun, settings, seen[-1][0]),
                    timeout=120,
                    what="the full pass after the 410",
                )
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                time.sleep(rng.uniform(0.5, 3.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
    finally:
        mutator.stop_flag.set()
        mutator.join(30)
    emulator.control.set_latency({})

    proc = start(config, log)
    try:
        wait_for(
            in_sync(settings, emulator, ALICE),
            timeout=240,
            what="the connector to catch up after the last kill",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()[-3000:]

    records = observed(settings)
    assert rebuilt(records).live(ALICE) == emulator_events(emulator, ALICE)
    check_stream(records)
    assert mutator.count > 50
    assert begins(records) >= 6, "the kills should have spread over several full passes"
