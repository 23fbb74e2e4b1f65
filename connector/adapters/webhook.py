"""The HTTP listener Google posts push notifications to.

It answers at once with the verdict of ``ChannelManager.on_notification`` (200 for a verified
notification, a 4xx for anything else) and never syncs inside the request: an accepted
``exists`` only asks the scheduler for a pass, and bursts coalesce there.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from connector.core.push import Decision

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # Calendar notifications have no body; refuse large ones


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        log.exception("webhook: unexpected error")


class WebhookServer:
    def __init__(
        self, host: str, port: int, handle: Callable[[Mapping[str, str]], Decision]
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413, "too large")
                    return
                if length:
                    self.rfile.read(length)
                decision = handle(dict(self.headers.items()))
                self._answer(decision.status, decision.reason)

            def do_GET(self) -> None:
                self._answer(405, "notifications are POSTed")

            def _answer(self, status: int, text: str) -> None:
                body = f"{text}\n".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server((host, port), Handler)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting notifications (first thing on SIGTERM)."""
        self._server.shutdown()
        self._server.server_close()
