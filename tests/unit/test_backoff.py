"""Backoff decisions and request budgets: pure functions, property-tested with hypothesis."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.core.backoff import (
    BackoffPolicy,
    decide,
    exponential_ceiling,
    full_jitter_delay,
    long_delay,
)
from connector.core.budget import RequestBudget, try_acquire_all
from connector.errors import (
    AuthError,
    CalendarGoneError,
    ConfigError,
    FullSyncRequired,
    PageTokenRejected,
    QuotaExceededError,
    RetriableError,
    StreamFailedError,
)

POLICY = BackoffPolicy(base=1.0, cap=64.0, quota_base=300.0, quota_cap=14_400.0)
attempts = st.integers(min_value=1, max_value=10_000)
units = st.floats(min_value=0.0, max_value=1.0)


class Fixed:
    """A "random" source that always returns the same value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def rate_limit(status: int = 429, retry_after: float | None = None) -> RetriableError:
    reason = "rateLimitExceeded"
    return RetriableError("rl", status=status, reason=reason, retry_after=retry_after)


# --- delays --------------------------------------------------------------------------------


@given(attempts, units, st.floats(0.01, 10.0), st.floats(0.01, 1000.0))
def test_full_jitter_never_exceeds_the_cap(attempt: int, u: float, base: float, cap: float) -> None:
    assert 0.0 <= full_jitter_delay(attempt, base, cap, u) <= cap


@given(attempts, units)
def test_for_the_same_random_draw_the_delay_never_shrinks(attempt: int, u: float) -> None:
    assert full_jitter_delay(attempt + 1, 1.0, 64.0, u) >= full_jitter_delay(attempt, 1.0, 64.0, u)


def test_the_expected_delay_grows_until_the_cap() -> None:
    rng = random.Random(7)
    means = [
        sum(full_jitter_delay(a, 1.0, 64.0, rng.random()) for _ in range(2000)) / 2000
        for a in range(1, 9)
    ]
    assert all(later > earlier for earlier, later in itertools.pairwise(means[:7]))
    assert means[7] == pytest.approx(32.0, rel=0.1)  # capped: mean of U(0, 64)


def test_the_ceiling_doubles_and_survives_huge_attempt_numbers() -> None:
    assert [exponential_ceiling(a, 1.0, 64.0) for a in range(1, 9)] == [1, 2, 4, 8, 16, 32, 64, 64]
    assert exponential_ceiling(10**9, 1.0, 64.0) == 64.0


@given(attempts, units)
def test_long_delay_stays_between_half_the_ceiling_and_the_ceiling(attempt: int, u: float) -> None:
    ceiling = exponential_ceiling(attempt, 300.0, 14_400.0)
    assert ceiling / 2 <= long_delay(attempt, 300.0, 14_400.0, u) <= ceiling


# --- decisions -----------------------------------------------------------------------------


@given(attempts, units, st.sampled_from([429, 403]))
def test_rate_limits_pause_the_whole_account_within_the_cap(
    attempt: int, u: float, status: int
) -> None:
    d = decide(rate_limit(status), attempt, Fixed(u), POLICY)
    assert d.retry and d.account_wide
    assert 0.0 <= d.delay <= POLICY.cap


@given(attempts, units, st.sampled_from([500, 502, 503, 504, None]))
def test_server_errors_and_timeouts_back_off_per_stream(
    attempt: int, u: float, status: int | None
) -> None:
    d = decide(RetriableError("5xx", status=status), attempt, Fixed(u), POLICY)
    assert d.retry and not d.account_wide
    assert 0.0 <= d.delay <= POLICY.cap


def test_a_403_that_is_not_a_rate_limit_is_not_account_wide() -> None:
    d = decide(RetriableError("x", status=403, reason="other"), 1, Fixed(0.5), POLICY)
    assert not d.account_wide


@given(attempts, units)
def test_quota_exceeded_waits_minutes_to_hours_account_wide(attempt: int, u: float) -> None:
    d = decide(QuotaExceededError("q", status=403, reason="quotaExceeded"), attempt, Fixed(u))
    assert d.retry and d.account_wide
    assert POLICY.quota_base / 2 <= d.delay <= POLICY.quota_cap


@given(attempts, units, st.floats(0.0, 3600.0))
def test_retry_after_is_honoured(attempt: int, u: float, retry_after: float) -> None:
    d = decide(rate_limit(retry_after=retry_after), attempt, Fixed(u), POLICY)
    assert d.delay >= retry_after
    assert d.delay <= max(POLICY.cap, retry_after)


def test_an_absurd_retry_after_is_bounded() -> None:
    d = decide(rate_limit(retry_after=10**9), 1, Fixed(0.5), POLICY)
    assert d.delay == POLICY.max_retry_after


def test_auth_errors_pause_the_account_for_long() -> None:
    d = decide(AuthError("lost", reason="invalid_grant"), 1, Fixed(0.0), POLICY)
    assert d.retry and d.account_wide and d.delay >= POLICY.auth_delay / 2


@pytest.mark.parametrize("error", [CalendarGoneError("404"), StreamFailedError("400"), KeyError()])
def test_permanent_failures_are_not_retried(error: BaseException) -> None:
    d = decide(error, 1, Fixed(0.5), POLICY)
    assert not d.retry and not d.account_wide


@pytest.mark.parametrize("signal", [FullSyncRequired("fullSyncRequired"), PageTokenRejected()])
def test_reset_signals_go_on_at_once(signal: BaseException) -> None:
    d = decide(signal, 1, Fixed(0.9), POLICY)
    assert d.retry and d.delay == 0.0 and not d.account_wide


def test_max_attempts_stops_per_stream_retries_but_not_rate_limits() -> None:
    policy = BackoffPolicy(max_attempts=3)
    assert decide(RetriableError("5xx", status=503), 2, Fixed(0.5), policy).retry
    assert not decide(RetriableError("5xx", status=503), 3, Fixed(0.5), policy).retry
    assert decide(rate_limit(), 30, Fixed(0.5), policy).retry


# --- budgets -------------------------------------------------------------------------------

limits = st.integers(min_value=1, max_value=20)
gaps = st.lists(st.floats(min_value=0.0, max_value=30.0), min_size=1, max_size=200)


@settings(max_examples=200)
@given(limits, gaps)
def test_a_budget_never_admits_more_than_the_limit_in_any_60s_window(
    limit: int, deltas: list[float]
) -> None:
    budget = RequestBudget(limit)
    now, admitted = 0.0, []
    for delta in deltas:
        now += delta
        if budget.try_acquire(now) == 0.0:
            admitted.append(now)
    # Any half-open window [t, t + 60) is fullest when it starts at an admission.
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 60.0) <= limit


@given(limits, gaps)
def test_waiting_the_returned_time_is_enough(limit: int, deltas: list[float]) -> None:
    budget = RequestBudget(limit)
    now = 0.0
    for delta in deltas:
        now += delta
        wait = budget.try_acquire(now)
        assert wait >= 0.0
        if wait > 0.0:
            assert budget.try_acquire(now + wait) == 0.0
            now += wait


def test_budget_refuses_with_the_time_until_the_oldest_request_leaves() -> None:
    budget = RequestBudget(3)
    assert [budget.try_acquire(t) for t in (0.0, 10.0, 20.0)] == [0.0, 0.0, 0.0]
    assert budget.try_acquire(30.0) == pytest.approx(30.0)
    assert budget.try_acquire(59.9) == pytest.approx(0.1)
    assert budget.try_acquire(60.0) == 0.0
    assert budget.in_window(60.0) == 3


def test_a_clock_going_backwards_does_not_free_capacity() -> None:
    budget = RequestBudget(1)
    assert budget.try_acquire(100.0) == 0.0
    assert budget.try_acquire(50.0) > 0.0


def test_acquire_all_takes_from_every_budget_or_from_none() -> None:
    account, shared = RequestBudget(2), RequestBudget(1)
    assert try_acquire_all([account, shared], 0.0) == 0.0
    assert try_acquire_all([account, shared], 1.0) == pytest.approx(59.0)
    assert account.in_window(1.0) == 1  # the refusal by `shared` did not burn an account slot
    assert try_acquire_all([account], 1.0) == 0.0


@pytest.mark.parametrize(("limit", "window"), [(0, 60.0), (10, 0.0)])
def test_invalid_budgets_are_config_errors(limit: int, window: float) -> None:
    with pytest.raises(ConfigError):
        RequestBudget(limit, window)
