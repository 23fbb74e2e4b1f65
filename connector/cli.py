"""The ``gcal-kafka`` command line. Each subcommand delegates to the module that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from connector import __version__
from connector.config import Settings
from connector.config_load import load_settings, redact_kafka_conf
from connector.errors import ConfigError

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
    print(f"  topics: {settings.topics.name(settings.topics.events)} (events), "
          f"{settings.topics.name(settings.topics.checkpoints)} (checkpoints)")
    print(f"  delivery: {settings.delivery.mode}; accounts: {len(settings.accounts)}; "
          f"explicit calendars: {streams}")
    return 0


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
