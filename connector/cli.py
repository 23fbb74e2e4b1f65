"""The ``gcal-kafka`` command line. Each subcommand delegates to the module that owns it."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from connector import __version__
from connector.config import Settings
from connector.config_load import load_settings, redact_kafka_conf
from connector.core.records import Checkpoint
from connector.errors import ConfigError, ConnectorError

Handler = Callable[[argparse.Namespace], int]


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help="YAML configuration file (GCAL_KAFKA_* variables override it)",
    )


def load_or_exit(path: str | None) -> Settings:
    """Load the settings, or print every problem and exit with code 2."""
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"gcal-kafka: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


def _validate(args: argparse.Namespace) -> int:
    settings = load_or_exit(args.config)
    streams = sum(
        len(a.credentials.subjects or (None,)) * (1 if a.calendars == "all" else len(a.calendars))
        for a in settings.accounts
    )
    print(f"{args.config or '(environment only)'}: valid")
    print(f"  kafka: {redact_kafka_conf(settings.kafka)}")
    print(
        f"  topics: {settings.topics.name(settings.topics.events)} (events), "
        f"{settings.topics.name(settings.topics.checkpoints)} (checkpoints)"
    )
    print(
        f"  delivery: {settings.delivery.mode}; accounts: {len(settings.accounts)}; "
        f"explicit calendars: {streams}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    settings = load_or_exit(args.config)
    from connector import logs, wiring

    logs.configure(settings.logging.level, settings.logging.format)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: for "why is it stuck?".
    with contextlib.suppress(OSError, ValueError):  # stderr without a file descriptor
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        return wiring.run(settings)
    except ConfigError as exc:
        print(f"gcal-kafka: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConnectorError as exc:
        print(f"gcal-kafka: cannot start: {exc}", file=sys.stderr)
        return 1


def _resync(args: argparse.Namespace) -> int:
    settings = load_or_exit(args.config)
    from connector import signals, wiring

    topic = settings.topics.name(settings.topics.signals)
    wiring.prepare_topics(settings)
    signals.send_resync(wiring.kafka_conf(settings), topic, args.stream)
    print(
        f"resync of {args.stream} requested (reason OPERATOR); a running connector picks it "
        "up within a second, otherwise the next start does"
    )
    return 0


def _checkpoints(args: argparse.Namespace) -> int:
    settings = load_or_exit(args.config)
    from connector import wiring
    from connector.adapters.kafka_state import read_checkpoints

    if args.action == "reset":
        return _resync(args)
    names = wiring.topic_names(settings)
    found = read_checkpoints(
        wiring.kafka_conf(settings), names.checkpoints, wiring.codec_for(settings)
    )
    if args.action == "list":
        print(f"{'stream':50} {'gen':>4} {'phase':12} {'token':6} last success")
        for stream_id, cp in sorted(found.items()):
            print(checkpoint_line(stream_id, cp))
        return 0
    shown = found.get(args.stream)
    if shown is None:
        print(f"gcal-kafka: no checkpoint for stream {args.stream}", file=sys.stderr)
        return 1
    print(json.dumps(_checkpoint_view(shown), indent=2))
    return 0


def checkpoint_line(stream_id: str, cp: Checkpoint) -> str:
    """One row of ``checkpoints list``."""
    from connector.calendar_lists import is_task

    if is_task(stream_id):  # an account's calendarList channel record, not a stream
        expires = _when(cp.channel.expiration_ms) if cp.channel else "none"
        return f"{stream_id:50} {'-':>4} {'list channel':12} {'-':6} expires {expires}"
    token = "yes" if cp.sync_token else "no"
    return (
        f"{stream_id:50} {cp.generation:>4} {cp.phase.value:12} {token:6} "
        f"{_when(cp.last_success_at_ms)}"
    )


def _when(ms: int | None) -> str:
    if ms is None:
        return "never"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _checkpoint_view(cp: Checkpoint) -> dict[str, object]:
    """A checkpoint for people: tokens shortened (they are opaque and long)."""

    def short(token: str | None) -> str | None:
        return None if token is None else f"{token[:12]}... ({len(token)} chars)"

    return {
        "stream": cp.stream.stream_id,
        "account": cp.stream.account,
        "calendar_id": cp.stream.calendar_id,
        "generation": cp.generation,
        "phase": cp.phase.value,
        "sync_token": short(cp.sync_token),
        "page_token": short(cp.page_token),
        "query_fingerprint": cp.query_fingerprint,
        "reset_reason": cp.reset_reason.value if cp.reset_reason else None,
        "last_attempt": _when(cp.last_attempt_at_ms),
        "last_success": _when(cp.last_success_at_ms),
        "channel": None
        if cp.channel is None
        else {"id": cp.channel.id, "expiration": _when(cp.channel.expiration_ms)},
        "extra": dict(cp.extra),
    }


def _tail(args: argparse.Namespace) -> int:
    settings = load_or_exit(args.config)
    from connector import tail, wiring
    from connector.consumer import ChangeReader

    names = wiring.topic_names(settings)
    reader = ChangeReader(
        wiring.kafka_conf(settings),
        names.events,
        wiring.codec_for(settings),
        from_beginning=args.from_beginning,
    )
    return tail.run(reader, args)


def _materialize(args: argparse.Namespace) -> int:
    settings = load_or_exit(args.config)
    from connector import logs, materialize

    logs.configure(settings.logging.level, settings.logging.format)
    try:
        return materialize.run(settings, args)
    except ConfigError as exc:
        print(f"gcal-kafka: {exc}", file=sys.stderr)
        return exc.exit_code
    except ConnectorError as exc:
        print(f"gcal-kafka: materialize failed: {exc}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gcal-kafka",
        description="Google Calendar to Apache Kafka change events, exactly once.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = sub.add_parser("validate", help="check a configuration and list every problem")
    _config_arg(validate)
    validate.set_defaults(handler=_validate)

    run = sub.add_parser("run", help="run the connector until SIGTERM")
    _config_arg(run)
    run.set_defaults(handler=_run)

    resync = sub.add_parser("resync", help="ask for a full resync of one stream (OPERATOR)")
    _config_arg(resync)
    resync.add_argument("--stream", required=True, help="stream id: <account>/<calendar id>")
    resync.set_defaults(handler=_resync)

    cps = sub.add_parser("checkpoints", help="inspect or reset the stored checkpoints")
    cps_sub = cps.add_subparsers(dest="action", required=True, metavar="ACTION")
    cps_list = cps_sub.add_parser("list", help="one line per stream")
    _config_arg(cps_list)
    for action, text in (("show", "one stream in detail"), ("reset", "resync one stream")):
        sp = cps_sub.add_parser(action, help=text)
        _config_arg(sp)
        sp.add_argument("--stream", required=True, help="stream id: <account>/<calendar id>")
    cps.set_defaults(handler=_checkpoints)

    from connector import tail

    tail_parser = sub.add_parser("tail", help="print change events from the topic")
    _config_arg(tail_parser)
    tail.add_arguments(tail_parser)
    tail_parser.set_defaults(handler=_tail)

    from connector import materialize

    mat = sub.add_parser(
        "materialize", help="keep an events table in SQLite or PostgreSQL, exactly once"
    )
    _config_arg(mat)
    materialize.add_arguments(mat)
    mat.set_defaults(handler=_materialize)

    from connector.emulator import server as emulator_server

    emu = sub.add_parser(
        "emulator", help="serve the bundled Google Calendar API v3 emulator over HTTP"
    )
    emulator_server.add_arguments(emu)
    emu.set_defaults(handler=emulator_server.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
