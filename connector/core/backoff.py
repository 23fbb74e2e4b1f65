"""Retry decisions: how long to wait after a failure, and who waits (a stream or a whole account).

Pure functions with no clock and no randomness of their own: the caller passes the attempt number
and a source of uniform random numbers (``random.Random`` works), and sleeps or reschedules itself.

Policy (contract section 5, Google's retry guidance):

- rate limits (403 ``rateLimitExceeded`` / ``userRateLimitExceeded``, 429): truncated exponential
  backoff with full jitter, **account-wide**, since the quota is per user;
- 403 ``quotaExceeded``: a long backoff (minutes to hours), account-wide;
- 5xx, timeouts, connection errors: truncated exponential backoff with full jitter, per stream;
- auth lost: account-wide, retried rarely (an operator may fix the credentials);
- a ``Retry-After`` hint is honoured: the delay is never shorter than it;
- 404 and other stream failures: no retry, the stream stops;
- ``FullSyncRequired`` / ``PageTokenRejected``: signals, not failures: go on at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from connector.errors import (
    AuthError,
    FullSyncRequired,
    PageTokenRejected,
    QuotaExceededError,
    RetriableError,
    StreamFailedError,
)

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})


class UniformSource(Protocol):
    """Anything with ``random() -> float`` in [0, 1), e.g. ``random.Random``."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Delays in seconds. ``max_attempts`` bounds per-stream retries (None: retry forever)."""

    base: float = 1.0
    cap: float = 64.0
    quota_base: float = 300.0
    quota_cap: float = 4 * 3600.0
    auth_delay: float = 900.0
    max_retry_after: float = 4 * 3600.0
    max_attempts: int | None = None


DEFAULT_POLICY = BackoffPolicy()


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    delay: float
    account_wide: bool


def exponential_ceiling(attempt: int, base: float, cap: float) -> float:
    """``min(cap, base * 2 ** (attempt - 1))`` for attempt >= 1, without overflowing."""
    exponent = min(max(attempt, 1) - 1, 64)
    return min(cap, base * 2.0**exponent)


def full_jitter_delay(attempt: int, base: float, cap: float, u: float) -> float:
    """Truncated exponential backoff with full jitter: a uniform delay in [0, ceiling).

    For a fixed ``u`` the delay never shrinks as ``attempt`` grows, so the expected delay grows
    until it reaches ``cap / 2``.
    """
    return _unit(u) * exponential_ceiling(attempt, base, cap)


def long_delay(attempt: int, base: float, cap: float, u: float) -> float:
    """Equal jitter for long waits: a delay in [ceiling / 2, ceiling), never close to zero."""
    ceiling = exponential_ceiling(attempt, base, cap)
    return ceiling * (0.5 + 0.5 * _unit(u))


def is_rate_limited(error: RetriableError) -> bool:
    """True for 429 and 403 rate limits: the per-user quota, shared by the whole account."""
    return error.status == 429 or (error.status == 403 and error.reason in RATE_LIMIT_REASONS)


def decide(
    error: BaseException,
    attempt: int,
    rng: UniformSource,
    policy: BackoffPolicy = DEFAULT_POLICY,
) -> RetryDecision:
    """What to do after ``attempt`` consecutive failures (1 for the first failure).

    ``account_wide=True`` means the caller pauses every stream of the account, not just this one.
    """
    if isinstance(error, FullSyncRequired | PageTokenRejected):
        return RetryDecision(retry=True, delay=0.0, account_wide=False)
    if isinstance(error, QuotaExceededError):
        delay = long_delay(attempt, policy.quota_base, policy.quota_cap, rng.random())
        return RetryDecision(True, _honour(delay, error.retry_after, policy), account_wide=True)
    if isinstance(error, RetriableError):
        delay = full_jitter_delay(attempt, policy.base, policy.cap, rng.random())
        delay = _honour(delay, error.retry_after, policy)
        if is_rate_limited(error):
            return RetryDecision(retry=True, delay=delay, account_wide=True)
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            return RetryDecision(retry=False, delay=0.0, account_wide=False)
        return RetryDecision(retry=True, delay=delay, account_wide=False)
    if isinstance(error, AuthError):
        delay = long_delay(1, policy.auth_delay, policy.auth_delay, rng.random())
        return RetryDecision(retry=True, delay=delay, account_wide=True)
    if isinstance(error, StreamFailedError):
        return RetryDecision(retry=False, delay=0.0, account_wide=False)
    return RetryDecision(retry=False, delay=0.0, account_wide=False)


def _honour(delay: float, retry_after: float | None, policy: BackoffPolicy) -> float:
    """Never retry before the server's ``Retry-After``; ignore absurd hints beyond the limit."""
    if retry_after is None or retry_after <= 0:
        return delay
    return max(delay, min(retry_after, policy.max_retry_after))


def _unit(u: float) -> float:
    """Clamp a random value into [0, 1] so a bad source cannot produce negative delays."""
    return min(max(u, 0.0), 1.0)
