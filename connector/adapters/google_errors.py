"""Google API errors translated into the project's error tree, in exactly one place.

``to_connector_error`` is the only function that looks at ``HttpError``, ``RefreshError`` or a
transport exception; ``GoogleCalendarSource`` calls it for every failed request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import HttpError

from connector.errors import (
    AuthError,
    CalendarGoneError,
    FullSyncRequired,
    PageTokenRejected,
    QuotaExceededError,
    RetriableError,
    StreamFailedError,
)

_RATE_LIMIT = frozenset({"ratelimitexceeded", "userratelimitexceeded"})


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the error translation needs to know about the request that failed."""

    method: str
    calendar_id: str | None = None
    sync_token_sent: bool = False
    page_token_sent: bool = False


def to_connector_error(exc: BaseException, ctx: CallContext) -> BaseException | None:
    """Translate a client-library exception into the project's tree; None if it is not ours.

    =================================================  ==========================================
    what Google / the transport did                    raised
    =================================================  ==========================================
    410, request carried a sync token                  FullSyncRequired(reason) (on 410 alone)
    410 / 400 on a page token (location ``pageToken``  PageTokenRejected
    or the message mentions the page token)
    other 400, 409, 412, other 410, other 4xx          StreamFailedError(status, reason)
    401 (AuthorizedHttp already refreshed once)        AuthError
    RefreshError (e.g. invalid_grant)                  AuthError(reason=the OAuth error code)
    RefreshError, retryable (token endpoint 5xx)       RetriableError(reason=the OAuth error code)
    403 rateLimitExceeded / userRateLimitExceeded      RetriableError(status, reason, retry_after)
    429, 408, 5xx                                      RetriableError(status, reason, retry_after)
    403 quotaExceeded                                  QuotaExceededError(status, reason)
    other 403 (forbidden, insufficientPermissions)     StreamFailedError(status, reason)
    404                                                CalendarGoneError
    google.auth TransportError (token endpoint down)   RetriableError(reason="tokenTransport")
    httplib2 errors, timeouts, OSError                 RetriableError(reason="timeout"/"network")
    =================================================  ==========================================

    ``reason`` is ``errors[0].reason`` of Google's body, else the first ``details[].reason``.
    """
    if isinstance(exc, HttpError):
        return _from_http_error(exc, ctx)
    if isinstance(exc, google.auth.exceptions.RefreshError):
        code = _refresh_error_code(exc)
        text = f"{ctx.method}: refreshing the credentials failed ({code})"
        if exc.retryable:  # the token endpoint's own 5xx / rate limit, not a revoked grant
            return RetriableError(text, reason=code)
        return AuthError(text, reason=code)
    if isinstance(exc, google.auth.exceptions.TransportError):
        return RetriableError(f"{ctx.method}: token endpoint unreachable", reason="tokenTransport")
    if isinstance(exc, TimeoutError):
        return RetriableError(f"{ctx.method}: timed out", reason="timeout")
    if isinstance(exc, httplib2.HttpLib2Error | OSError):
        return RetriableError(f"{ctx.method}: {type(exc).__name__}", reason="network")
    return None


def _from_http_error(exc: HttpError, ctx: CallContext) -> BaseException:
    status = int(exc.resp.status)
    errors, details = _error_lists(exc.content)
    reasons = [str(e["reason"]) for e in [*errors, *details] if e.get("reason")]
    reason = reasons[0] if reasons else None
    normalised = {r.replace("_", "").lower() for r in reasons}
    message = _message(exc, errors)
    where = f"{ctx.method}" + (f" on {ctx.calendar_id}" if ctx.calendar_id else "")
    text = f"{where}: HTTP {status} {reason or ''} {message}".rstrip()
    if status == 410 and ctx.sync_token_sent:
        return FullSyncRequired(reason)
    if status in (400, 410) and ctx.page_token_sent and _blames_page_token(errors, message):
        return PageTokenRejected(text)
    if status == 401:
        return AuthError(text, status=status, reason=reason)
    if status == 403 and normalised & _RATE_LIMIT:
        return RetriableError(text, status=status, reason=reason, retry_after=_retry_after(exc))
    if status == 403 and "quotaexceeded" in normalised:
        return QuotaExceededError(text, status=status, reason=reason, retry_after=_retry_after(exc))
    if status == 404:
        return CalendarGoneError(text, status=status, reason=reason)
    if status in (408, 429) or status >= 500:
        return RetriableError(text, status=status, reason=reason, retry_after=_retry_after(exc))
    return StreamFailedError(text, status=status, reason=reason)


def _error_lists(content: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    try:
        body = json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return [], []
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [], []

    def dicts(value: object) -> list[dict[str, Any]]:
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    return dicts(error.get("errors")), dicts(error.get("details"))


def _message(exc: HttpError, errors: list[dict[str, Any]]) -> str:
    if errors and isinstance(errors[0].get("message"), str):
        return str(errors[0]["message"])
    return str(exc.reason or "")


def _blames_page_token(errors: list[dict[str, Any]], message: str) -> bool:
    if any(str(e.get("location", "")).lower() == "pagetoken" for e in errors):
        return True
    lowered = message.lower()
    return "page token" in lowered or "pagetoken" in lowered


def _retry_after(exc: HttpError) -> float | None:
    """``Retry-After`` in seconds; HTTP-date values are ignored (they would need a clock)."""
    raw = exc.resp.get("retry-after") if hasattr(exc.resp, "get") else None
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def _refresh_error_code(exc: google.auth.exceptions.RefreshError) -> str:
    # RefreshError(args=("invalid_grant: Bad Request", {response json})): keep the OAuth code only.
    for arg in exc.args:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return str(arg["error"])
    first = str(exc.args[0]) if exc.args else ""
    code = first.split(":", 1)[0].strip()
    return code if code and " " not in code else "refreshFailed"
