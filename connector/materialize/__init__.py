"""``gcal-kafka materialize``: keep an ``events`` table in SQLite or PostgreSQL, exactly once.

``rows`` turns a change event into a row, ``stores`` holds the tables (the rebuild rule of
``connector.consumer`` plus the consumed offsets in the same transaction), ``source`` reads the
events topic from those offsets, ``runner`` is the loop. ``run`` wires them from the settings.
"""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType

from connector.config import Settings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="sqlite:///PATH (sqlite:////abs/path) or postgresql://user@host:port/db",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        help="records per database transaction (default 5000)",
    )
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="exit once no new record arrived for SECONDS (default: run until SIGTERM)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Materialize until SIGTERM / SIGINT (or idle); the last batch is committed first."""
    from connector import wiring
    from connector.materialize.runner import Materializer
    from connector.materialize.source import AssignedChangeReader
    from connector.materialize.stores import open_store

    topic = wiring.topic_names(settings).events
    store = open_store(args.to)
    reader = AssignedChangeReader(wiring.kafka_conf(settings), topic, wiring.codec_for(settings))
    materializer = Materializer(reader, store, topic, batch_size=max(1, args.batch_size))

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s received: stopping after this batch", signal.Signals(signum).name)
        materializer.stop()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        progress = materializer.run(idle_exit=args.exit_when_idle)
    finally:
        materializer.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped cleanly: %d records applied", progress.records)
    return 0
