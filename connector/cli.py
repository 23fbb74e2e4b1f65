"""The ``gcal-kafka`` command line. Each subcommand delegates to the module that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connector import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gcal-kafka",
        description="Google Calendar to Apache Kafka change events, exactly once.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    code: int = handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
