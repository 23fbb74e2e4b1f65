"""Google's JSON error envelope (reference section 7) as one exception type.

Every failure the emulator answers is an :class:`ApiError`; the HTTP layer turns it into the
classic ``{"error": {"errors": [...], "code": N, "message": ...}}`` body, so a client never sees a
stack trace. The constructors below carry the exact bodies of the reference's catalogue.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An HTTP error answered with Google's error envelope."""

    def __init__(
        self,
        status: int,
        domain: str,
        reason: str,
        message: str,
        *,
        location: str | None = None,
        location_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.domain = domain
        self.reason = reason
        self.message = message
        self.location = location
        self.location_type = location_type

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location_type is not None:
            item["locationType"] = self.location_type
        if self.location is not None:
            item["location"] = self.location
        return {"error": {"errors": [item], "code": self.status, "message": self.message}}


class OAuthError(Exception):
    """An OAuth2 token-endpoint error: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description}


def not_found() -> ApiError:
    return ApiError(404, "global", "notFound", "Not Found")


def auth_error() -> ApiError:
    return ApiError(
        401,
        "global",
        "authError",
        "Invalid Credentials",
        location="Authorization",
        location_type="header",
    )


def invalid_param(location: str, message: str = "Invalid Value") -> ApiError:
    return ApiError(400, "global", "invalid", message, location=location, location_type="parameter")


def required(message: str) -> ApiError:
    return ApiError(400, "global", "required", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "global", "badRequest", message)


def invalid_page_token() -> ApiError:
    return invalid_param("pageToken", "Invalid page token value.")


def time_range_empty(location: str = "timeMax") -> ApiError:
    return ApiError(
        400,
        "calendar",
        "timeRangeEmpty",
        "The specified time range is empty.",
        location=location,
        location_type="parameter",
    )


def ordering_not_available() -> ApiError:
    return invalid_param(
        "orderBy", "The requested ordering is not available for the particular query."
    )


def sync_token_restrictions() -> ApiError:
    return ApiError(
        400,
        "calendar",
        "syncTokenWithRequestRestrictions",
        "Sync token cannot be used with other request restrictions.",
    )


def full_sync_required() -> ApiError:
    return ApiError(
        410,
        "calendar",
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        location="syncToken",
        location_type="parameter",
    )


def updated_min_too_long_ago() -> ApiError:
    return ApiError(
        410,
        "calendar",
        "updatedMinTooLongAgo",
        "The requested minimum modification time lies too far in the past.",
        location="updatedMin",
        location_type="parameter",
    )


def deleted() -> ApiError:
    return ApiError(410, "global", "deleted", "Resource has been deleted")


def duplicate() -> ApiError:
    return ApiError(409, "global", "duplicate", "The requested identifier already exists.")


def condition_not_met() -> ApiError:
    return ApiError(
        412,
        "global",
        "conditionNotMet",
        "Precondition Failed",
        location="If-Match",
        location_type="header",
    )


def writer_access_required() -> ApiError:
    return ApiError(
        403, "calendar", "requiredAccessLevel", "You need to have writer access to this calendar."
    )


def user_rate_limit(status: int = 403) -> ApiError:
    return ApiError(status, "usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded")


def rate_limit(status: int = 403) -> ApiError:
    return ApiError(status, "usageLimits", "rateLimitExceeded", "Rate Limit Exceeded")


def quota_exceeded() -> ApiError:
    return ApiError(403, "usageLimits", "quotaExceeded", "Calendar usage limits exceeded.")


def backend_error(status: int = 500) -> ApiError:
    if status == 503:
        return ApiError(503, "global", "backendError", "Service Unavailable")
    return ApiError(status, "global", "backendError", "Backend Error")
