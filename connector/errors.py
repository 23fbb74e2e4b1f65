"""The connector's error tree, grouped by what the caller must do.

::

    ConnectorError
    ├─ ConfigError            all problems at once; the process exits with code 2
    ├─ RetriableError         back off and retry (Google 5xx, timeouts, rate limits, broker down)
    │   └─ QuotaExceededError Google's abuse limit: back off for a long time
    ├─ StreamFailedError      stop this stream, keep the others, alert (auth lost, repeated 400s)
    │   ├─ AuthError          the account's credentials no longer work
    │   └─ CalendarGoneError  404 / access lost on a calendar
    └─ UnmappableItemError    one bad Google item: dead-letter it, count it, go on

    FullSyncRequired          Google said 410: a signal handled by the sync core, not an error
    PageTokenRejected         Google rejected a stored page token: the pass restarts

Data lives in attributes (``status``, ``reason``, ``stream_id``) and is never parsed back out of
a message. Messages never contain secrets or event bodies.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConnectorError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ConnectorError):
    """The configuration is invalid; ``problems`` lists every problem found, one line each."""

    exit_code = 2

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" in {source}" if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s){where}:\n{lines}")


class RetriableError(ConnectorError):
    """A transient failure: back off and try again.

    ``retry_after`` is a hint in seconds when the remote side gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class QuotaExceededError(RetriableError):
    """Google's ``quotaExceeded`` abuse limit: it can last hours, so back off for long."""


class StreamFailedError(ConnectorError):
    """This stream cannot go on; other streams are not affected."""

    def __init__(
        self,
        message: str,
        *,
        stream_id: str | None = None,
        status: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.stream_id = stream_id
        self.status = status
        self.reason = reason


class AuthError(StreamFailedError):
    """The account's credentials stopped working (refresh failed, or 401 after a refresh)."""


class CalendarGoneError(StreamFailedError):
    """Google answered 404 (or access was lost) for the stream's calendar."""


class UnmappableItemError(ConnectorError):
    """One Google item cannot be mapped to a change event; it goes to the dead-letter topic."""

    def __init__(self, message: str, *, item_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.item_id = item_id
        self.field = field


class FullSyncRequired(Exception):
    """Google answered HTTP 410 to an incremental list: the sync token is no longer valid."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "fullSyncRequired")
        self.reason = reason


class PageTokenRejected(Exception):
    """Google rejected a stored page token (400 on a resumed page): restart the pass."""
