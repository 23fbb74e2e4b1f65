"""Client-side request budgets over a sliding 60 s window, matching how Google counts quota.

Google counts requests per minute over a sliding window (600 per user per project, 10,000 per
project). Staying under those numbers on our side avoids 403/429 storms: a budget is kept per
account and one globally. Time is passed in (a monotonic clock reading in seconds); there is no
clock inside. A budget is not thread-safe: the scheduler that owns it serialises access.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from math import nextafter

from connector.errors import ConfigError

WINDOW_SECONDS = 60.0
DEFAULT_PER_ACCOUNT = 600
DEFAULT_GLOBAL = 10_000


class RequestBudget:
    """At most ``limit_per_minute`` admissions in any half-open window ``[t, t + 60)``."""

    def __init__(self, limit_per_minute: int, window_seconds: float = WINDOW_SECONDS) -> None:
        if limit_per_minute < 1:
            raise ConfigError([f"a request budget needs a limit >= 1, got {limit_per_minute}"])
        if window_seconds <= 0:
            raise ConfigError([f"a request budget needs a window > 0, got {window_seconds}"])
        self.limit = limit_per_minute
        self.window = window_seconds
        self._admitted: deque[float] = deque()
        self._last = float("-inf")

    def wait_time(self, now: float) -> float:
        """Seconds until one more request would be admitted (0 if now), without taking it."""
        now = self._observe(now)
        if len(self._admitted) < self.limit:
            return 0.0
        target = self._admitted[0] + self.window
        wait = max(target - now, _EPSILON)
        # Float rounding: make sure that ``now + wait`` really reaches the end of the window.
        while now + wait < target:
            wait = nextafter(wait, float("inf"))
        return wait

    def try_acquire(self, now: float) -> float:
        """Take one request if allowed and return 0; otherwise return the seconds to wait."""
        wait = self.wait_time(now)
        if wait == 0.0:
            self._admitted.append(self._last)
        return wait

    def in_window(self, now: float) -> int:
        """How many admissions count against the window ending at ``now``."""
        self._observe(now)
        return len(self._admitted)

    def _observe(self, now: float) -> float:
        # A clock reading that goes backwards is treated as "no time passed", never as a reason
        # to admit more: the window only ever slides forward.
        now = max(now, self._last)
        self._last = now
        while self._admitted and self._admitted[0] + self.window <= now:
            self._admitted.popleft()
        return now


# The smallest wait ever returned: 0 means "admitted", so a refusal always asks for a positive one.
_EPSILON = 1e-6


def try_acquire_all(budgets: Iterable[RequestBudget], now: float) -> float:
    """Take one request from every budget, or from none: returns 0, or the longest wait.

    Used for the per-account and the global budget together, so a refusal by one does not burn
    a slot in the other.
    """
    chosen = list(budgets)
    wait = max((b.wait_time(now) for b in chosen), default=0.0)
    if wait > 0.0:
        return wait
    for budget in chosen:
        budget.try_acquire(now)
    return 0.0
