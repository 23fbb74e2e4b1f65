"""HTTP shell of the emulator (stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive) and its CLI.

``EmulatorServer`` runs in-process for tests (``port=0`` picks a free port); ``run`` is
``gcal-kafka emulator``. Every answer, error or not, comes from :class:`Emulator`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connector.emulator.app import Emulator
from connector.emulator.clock import Clock
from connector.emulator.control import EmulatorControl
from connector.emulator.store import StoreConfig

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gcal-kafka-emulator"
    emulator: Emulator

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        response = self.emulator.handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-response (killed, timed out) is not an error here."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            log.debug("client %s disconnected: %s", client_address, exc)
            return
        log.exception("unexpected error serving %s", client_address)


class EmulatorServer:
    """An emulator listening on ``host:port``; ``control`` is its thread-safe Python handle."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        dataset: dict[str, Any] | None = None,
        clock: Clock | None = None,
        config: StoreConfig | None = None,
        seed: int | None = None,
    ) -> None:
        self.emulator = Emulator(dataset=dataset, clock=clock, config=config, seed=seed)
        handler = type("Handler", (_Handler,), {"emulator": self.emulator})
        self._httpd = _Server((host, port), handler)
        bound_host, bound_port = self._httpd.server_address[:2]
        self.host, self.port = str(bound_host), int(bound_port)
        self.emulator.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_endpoint(self) -> str:
        return f"{self.url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def control(self) -> EmulatorControl:
        return self.emulator.control

    @property
    def clock(self) -> Clock:
        return self.emulator.clock

    def start(self) -> EmulatorServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="gcal-emulator", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def shutdown(self) -> None:
        self._httpd.shutdown()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
        self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8085, help="port (0 picks a free one)")
    parser.add_argument(
        "--seed", metavar="sample|FILE", help="initial data: 'sample' or a dataset JSON file"
    )
    parser.add_argument(
        "--tombstone-horizon",
        type=float,
        metavar="SECONDS",
        help="how long deleted events are kept (default 30 days)",
    )
    parser.add_argument(
        "--max-results-default",
        type=int,
        help="events.list page size when maxResults is absent (default 250)",
    )
    parser.add_argument(
        "--updated-min-window",
        type=float,
        metavar="SECONDS",
        help="updatedMin older than this answers 410 (default 29 days)",
    )
    parser.add_argument(
        "--empty-pages",
        type=int,
        default=0,
        help="empty non-final pages before each data page (client testing)",
    )
    parser.add_argument(
        "--token-lifetime", type=int, metavar="SECONDS", help="access token lifetime (default 3600)"
    )


def _dataset(seed: str | None, now: datetime) -> dict[str, Any] | None:
    if seed is None:
        return None
    if seed == "sample":
        sample = importlib.import_module("connector.emulator.sample")  # written alongside
        generated: dict[str, Any] = sample.sample_dataset(now)
        return generated
    with open(seed, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
        return data


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = StoreConfig()
    if args.tombstone_horizon is not None:
        config.tombstone_horizon = args.tombstone_horizon
    if args.max_results_default is not None:
        config.max_results_default = args.max_results_default
    if args.updated_min_window is not None:
        config.updated_min_window = args.updated_min_window
    if args.token_lifetime is not None:
        config.token_lifetime = args.token_lifetime
    config.empty_pages = args.empty_pages
    clock = Clock()
    server = EmulatorServer(
        args.host, args.port, dataset=_dataset(args.seed, clock.now()), clock=clock, config=config
    )
    log.info("Google Calendar API emulator on %s", server.url)
    log.info("  api_endpoint: %s   token_uri: %s", server.api_endpoint, server.token_uri)
    for email, info in server.control.state()["users"].items():
        log.info("  user %s  refresh token: %s", email, info["refreshToken"])
    log.info(
        "  credentials: google.oauth2.credentials.Credentials(token=None, refresh_token=..., "
        "token_uri=%r, client_id='any', client_secret='any')",
        server.token_uri,
    )
    log.info("  control API: %s/emulator/state (see connector/emulator/control.py)", server.url)
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    stop.wait()
    log.info("emulator stopping")
    server.stop()
    return 0
