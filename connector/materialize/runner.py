"""The consume loop of ``gcal-kafka materialize``: batch, apply, commit rows with offsets.

Each batch of records is applied to the store and committed in ONE database transaction
together with the next offset of every partition it touched. A crash at any point therefore
leaves the database at a batch boundary, and the restart resumes from exactly there. After any
consumer error the reader is rebuilt from the committed offsets, so a batch that was half read
is read again from its first record, never skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from connector.consumer import apply
from connector.errors import RetriableError
from connector.materialize.source import RecordSource
from connector.materialize.stores import SqlStore

log = logging.getLogger(__name__)


@dataclass
class Progress:
    records: int = 0
    batches: int = 0
    caught_up: bool = False


class Materializer:
    """Drives a ``RecordSource`` into a ``SqlStore`` until stopped."""

    def __init__(
        self,
        source: RecordSource,
        store: SqlStore,
        topic: str,
        *,
        batch_size: int = 5000,
        poll_timeout: float = 0.5,
        progress_every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.store = store
        self.topic = topic
        self.batch_size = batch_size
        self.poll_timeout = poll_timeout
        self.progress_every = progress_every
        self.clock = clock
        self.progress = Progress()
        self.stopped = threading.Event()
        self._started = False

    def start(self) -> None:
        offsets = self.store.offsets(self.topic)
        partitions = self.source.start(offsets)
        self._started = True
        log.info(
            "materializing %s from %s",
            self.topic,
            ", ".join(f"{p}@{offsets.get(p, 'beginning')}" for p in partitions),
        )

    def step(self) -> int:
        """Read one batch and commit it with its offsets; returns the records applied."""
        if not self._started:
            self.start()
        records = self.source.poll(self.poll_timeout, self.batch_size)
        if not records:
            return 0
        offsets: dict[tuple[str, int], int] = {}
        try:
            for record in records:
                self.store.position(record.partition, record.offset)
                apply(self.store, record)
                offsets[(record.topic, record.partition)] = record.offset + 1
            self.store.commit(offsets)
        except BaseException:
            self.store.rollback()
            raise
        self.progress.records += len(records)
        self.progress.batches += 1
        return len(records)

    def run(self, idle_exit: float | None = None) -> Progress:
        """Until ``stop()`` (or, with ``idle_exit``, until nothing new came for that long)."""
        last_report = self.clock()
        last_data = self.clock()
        reported = 0
        while not self.stopped.is_set():
            try:
                got = self.step()
            except RetriableError as exc:
                log.warning("consumer error, re-reading from the committed offsets: %s", exc)
                self._restart()
                self.stopped.wait(1.0)
                continue
            now = self.clock()
            if got:
                last_data = now
                self.progress.caught_up = False
            elif not self.progress.caught_up:
                self.progress.caught_up = True
                log.info("caught up: %d records applied", self.progress.records)
            if now - last_report >= self.progress_every:
                rate = (self.progress.records - reported) / max(now - last_report, 1e-9)
                log.info(
                    "materialized %d records in %d batches (%.0f/s)",
                    self.progress.records,
                    self.progress.batches,
                    rate,
                )
                last_report, reported = now, self.progress.records
            if idle_exit is not None and not got and now - last_data >= idle_exit:
                break
        return self.progress

    def stop(self) -> None:
        self.stopped.set()

    def close(self) -> None:
        self.source.close()
        self.store.close()

    def _restart(self) -> None:
        self.source.close()
        self._started = False
