"""Quotas (sliding one-minute windows), injected faults and latency, checked per request.

A fault spec (``POST /emulator/faults``)::

    {"faults": [{"route": "events.list", "error": "backendError", "count": 2},
                {"route": "*", "error": "rateLimitExceeded", "probability": 0.1}],
     "seed": 7}

``error`` is one of the keys of ``FAULTS``; ``count`` fails the next N matching requests,
``probability`` fails each matching request with that chance (seeded). Latency is
``{"default_ms": 0, "routes": {"events.list": 50}}``. Quotas are
``{"per_user_per_minute": 600, "per_project_per_minute": 10000, "status": 403}`` (off when
absent); exceeding answers userRateLimitExceeded / rateLimitExceeded with 403 or 429.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connector.emulator import errors

FAULTS: dict[str, Callable[[], errors.ApiError]] = {
    "backendError": lambda: errors.backend_error(500),
    "500": lambda: errors.backend_error(500),
    "serviceUnavailable": lambda: errors.backend_error(503),
    "503": lambda: errors.backend_error(503),
    "quotaExceeded": errors.quota_exceeded,
    "rateLimitExceeded": lambda: errors.rate_limit(403),
    "userRateLimitExceeded": lambda: errors.user_rate_limit(403),
    "429": lambda: errors.rate_limit(429),
    "notFound": errors.not_found,
    "404": errors.not_found,
    "fullSyncRequired": errors.full_sync_required,
    "410": errors.full_sync_required,
    "deleted": errors.deleted,
    "authError": errors.auth_error,
}


class FaultSpecError(ValueError):
    """The fault/latency/quota spec sent to the control API is malformed."""


@dataclass
class Fault:
    route: str
    error: str
    count: int | None = None
    probability: float | None = None


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = random.Random(seed)
        self.latency_default_ms = 0
        self.latency_routes: dict[str, int] = {}
        self.per_user: int | None = None
        self.per_project: int | None = None
        self.quota_status = 403
        self._user_hits: dict[str, deque[float]] = {}
        self._project_hits: deque[float] = deque()

    def set_faults(self, spec: dict[str, Any]) -> None:
        faults = []
        for item in spec.get("faults", []):
            if not isinstance(item, dict) or item.get("error") not in FAULTS:
                raise FaultSpecError(f"unknown fault {item!r}; known: {sorted(FAULTS)}")
            count = item.get("count")
            probability = item.get("probability")
            if count is None and probability is None:
                count = 1
            faults.append(
                Fault(
                    str(item.get("route", "*")),
                    str(item["error"]),
                    None if count is None else int(count),
                    None if probability is None else float(probability),
                )
            )
        with self._lock:
            self._faults = faults
            if "seed" in spec:
                self._rng = random.Random(spec["seed"])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = []

    def set_latency(self, spec: dict[str, Any]) -> None:
        routes = spec.get("routes", {})
        if not isinstance(routes, dict):
            raise FaultSpecError("routes must be an object of route -> ms")
        with self._lock:
            self.latency_default_ms = int(spec.get("default_ms", 0))
            self.latency_routes = {str(k): int(v) for k, v in routes.items()}

    def set_quotas(self, spec: dict[str, Any]) -> None:
        with self._lock:
            user, project = spec.get("per_user_per_minute"), spec.get("per_project_per_minute")
            self.per_user = None if user is None else int(user)
            self.per_project = None if project is None else int(project)
            self.quota_status = int(spec.get("status", 403))
            if self.quota_status not in (403, 429):
                raise FaultSpecError("status must be 403 or 429")

    def latency_ms(self, route: str) -> int:
        with self._lock:
            return self.latency_routes.get(route, self.latency_default_ms)

    def check(self, route: str, user: str | None, now: float) -> None:
        """Raise the injected fault or quota error due for this request, if any."""
        with self._lock:
            for fault in self._faults:
                if fault.route not in ("*", route):
                    continue
                if fault.count is not None and fault.count > 0:
                    fault.count -= 1
                    raise FAULTS[fault.error]()
                if fault.probability is not None and self._rng.random() < fault.probability:
                    raise FAULTS[fault.error]()
            self._faults = [f for f in self._faults if f.count != 0 or f.probability is not None]
            self._check_quota(user, now)

    def _check_quota(self, user: str | None, now: float) -> None:
        if self.per_project is not None:
            _trim(self._project_hits, now)
            if len(self._project_hits) >= self.per_project:
                raise errors.rate_limit(self.quota_status)
        if self.per_user is not None and user is not None:
            hits = self._user_hits.setdefault(user, deque())
            _trim(hits, now)
            if len(hits) >= self.per_user:
                raise errors.user_rate_limit(self.quota_status)
            hits.append(now)
        if self.per_project is not None:
            self._project_hits.append(now)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [vars(f).copy() for f in self._faults],
                "latency": {
                    "default_ms": self.latency_default_ms,
                    "routes": dict(self.latency_routes),
                },
                "quotas": {
                    "per_user_per_minute": self.per_user,
                    "per_project_per_minute": self.per_project,
                    "status": self.quota_status,
                },
            }


def _trim(hits: deque[float], now: float) -> None:
    while hits and now - hits[0] >= 60.0:
        hits.popleft()
