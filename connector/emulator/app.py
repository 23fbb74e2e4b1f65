"""The emulator as one object: store, clock, tokens, push, faults and the request log.

``Emulator.handle`` takes a parsed HTTP request and returns a :class:`Response`; the HTTP server
(server.py) is a thin shell around it, so everything here is testable without sockets.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote

from connector.emulator import api, calendars, control, errors
from connector.emulator.auth import TokenIssuer
from connector.emulator.clock import Clock, to_rfc3339_ms
from connector.emulator.faults import FaultInjector
from connector.emulator.push import PushHub
from connector.emulator.query import ListCache
from connector.emulator.store import Store, StoreConfig
from connector.emulator.tokens import TokenCodec

log = logging.getLogger(__name__)
REQUEST_LOG_SIZE = 2000


class Emulator:
    def __init__(
        self,
        *,
        dataset: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        config: StoreConfig | None = None,
        seed: int | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.store = Store(config, seed=seed)
        self.issuer = TokenIssuer(self.store)
        self.push = PushHub(self.clock, seed=seed)
        self.faults = FaultInjector(seed=seed)
        self.cache = ListCache()
        self.base_url = "http://127.0.0.1"
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)
        self._log_lock = threading.Lock()
        self.store.listeners.append(self.push.changed)
        self.control = control.EmulatorControl(self)
        if dataset is not None:
            self.control.seed(dataset)

    @property
    def codec(self) -> TokenCodec:
        return TokenCodec(self.store.secret)

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> api.Response:
        path, _, query_string = target.partition("?")
        segments = [unquote(s) for s in path.split("/") if s]
        query = parse_qs(query_string, keep_blank_values=True)
        lower = {k.lower(): v for k, v in headers.items()}
        route, user = "unknown", None
        try:
            if segments[:1] == ["emulator"]:
                route = "emulator"
                response = control.dispatch(self.control, method, segments[1:], body)
            elif segments == ["token"] and method == "POST":
                route = "token"
                response = self._token(body)
            else:
                matched = api.match_route(method, segments)
                if matched is None:
                    raise errors.not_found()
                route, args = matched
                self._sleep(route)
                now = self.clock.now()
                record = self.issuer.user_for(lower.get("authorization"), now)
                user = record.email
                self.faults.check(route, user, now.timestamp())
                response = api.call(self, route, args, record, query, lower, body)
        except errors.ApiError as exc:
            response = api.error_response(exc)
        except Exception:
            log.exception("emulator: internal error on %s %s", method, path)
            response = api.error_response(errors.backend_error(500))
        if route != "emulator":
            self._record(method, path, query_string, response.status, user, route)
        return response

    def _token(self, body: bytes) -> api.Response:
        try:
            return api.json_response(200, self.issuer.grant(body, self.clock.now()))
        except errors.OAuthError as exc:
            return api.json_response(exc.status, exc.body())

    def _sleep(self, route: str) -> None:
        delay = self.faults.latency_ms(route)
        if delay > 0:
            time.sleep(delay / 1000)

    def _record(
        self, method: str, path: str, query: str, status: int, user: str | None, route: str
    ) -> None:
        with self._log_lock:
            self.requests.append(
                {
                    "time": to_rfc3339_ms(self.clock.now()),
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "user": user,
                    "route": route,
                }
            )

    def summary(self) -> dict[str, Any]:
        out = calendars.state_summary(self.store)
        out["now"] = to_rfc3339_ms(self.clock.now())
        out["push"] = self.push.summary()
        out["faults"] = self.faults.summary()
        out["config"] = vars(self.store.config).copy()
        with self._log_lock:
            out["requests_logged"] = len(self.requests)
        return out

    def close(self) -> None:
        self.push.close()
