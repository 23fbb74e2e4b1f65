"""OAuth2 token endpoint and bearer-token checks.

``POST /token`` accepts ``grant_type=refresh_token`` (the refresh token names the user) and the
service-account ``urn:ietf:params:oauth:grant-type:jwt-bearer`` grant: the JWT assertion is
decoded *without* verifying its signature, and the emulator impersonates its ``sub`` claim (or
``iss`` when there is no ``sub``: a service account acting as itself, with an empty primary
calendar). Access tokens expire on the emulator clock; revoking a user kills both kinds of token.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from connector.emulator import errors
from connector.emulator.calendars import ensure_user
from connector.emulator.store import Store, UserRecord

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_SCOPE = "https://www.googleapis.com/auth/calendar"


@dataclass
class AccessToken:
    email: str
    expires: datetime
    scope: str


class TokenIssuer:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def issue(self, email: str, scope: str, now: datetime) -> dict[str, Any]:
        lifetime = self._store.config.token_lifetime
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = AccessToken(email, now + timedelta(seconds=lifetime), scope)
        return {
            "access_token": token,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "scope": scope,
        }

    def grant(self, form_body: bytes, now: datetime) -> dict[str, Any]:
        """Answer a token request (form-encoded body); raises OAuthError."""
        form = {k: v[-1] for k, v in parse_qs(form_body.decode("utf-8", "replace")).items()}
        grant_type = form.get("grant_type")
        scope = form.get("scope") or DEFAULT_SCOPE
        if grant_type == "refresh_token":
            refresh = form.get("refresh_token", "")
            user = self._store.user_for_refresh_token(refresh)
            if user is None or user.revoked:
                raise errors.OAuthError("invalid_grant", "Token has been expired or revoked.")
            return self.issue(user.email, scope, now)
        if grant_type == JWT_BEARER:
            claims = _jwt_claims(form.get("assertion", ""))
            subject = claims.get("sub") or claims.get("iss")
            if not isinstance(subject, str) or not subject:
                raise errors.OAuthError("invalid_grant", "Invalid JWT: no subject.")
            if isinstance(claims.get("scope"), str):
                scope = claims["scope"]
            with self._store.lock:
                existing = self._store.users.get(subject)
                if existing is None and claims.get("sub"):
                    raise errors.OAuthError("invalid_grant", "Invalid email or User ID")
                user = existing or ensure_user(self._store, subject, now)
                if user.revoked:
                    raise errors.OAuthError("invalid_grant", "Token has been expired or revoked.")
            return self.issue(user.email, scope, now)
        raise errors.OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def user_for(self, authorization: str | None, now: datetime) -> UserRecord:
        """The user behind an ``Authorization: Bearer`` header, or the 401 authError."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise errors.auth_error()
        token = authorization[7:].strip()
        with self._lock:
            info = self._tokens.get(token)
        if info is None or info.expires <= now:
            raise errors.auth_error()
        user = self._store.users.get(info.email)
        if user is None or user.revoked:
            raise errors.auth_error()
        return user

    def revoke(self, email: str) -> None:
        with self._lock:
            for token in [t for t, i in self._tokens.items() if i.email == email]:
                del self._tokens[token]


def _jwt_claims(assertion: str) -> dict[str, Any]:
    parts = assertion.split(".")
    if len(parts) != 3:
        raise errors.OAuthError("invalid_grant", "Invalid JWT Signature.")
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        raise errors.OAuthError("invalid_grant", "Invalid JWT Signature.") from None
    if not isinstance(claims, dict):
        raise errors.OAuthError("invalid_grant", "Invalid JWT Signature.")
    return claims
