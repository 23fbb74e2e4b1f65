"""Opaque page and sync tokens: base64url of a compact JSON struct followed by a truncated MAC.

A token carries what the server needs to continue (cursor, snapshot counter, query fingerprint);
the MAC makes a garbled or hand-edited token detectable, which the API answers with 400 (page
token) or 410 (sync token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

_MAC_BYTES = 8


class TokenError(Exception):
    """The token is not one this server issued (garbled, truncated or from another secret)."""


class TokenCodec:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, payload: Mapping[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        mac = hmac.new(self._secret, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        return base64.urlsafe_b64encode(raw + mac).decode().rstrip("=")

    def decode(self, token: str) -> dict[str, Any]:
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise TokenError("not base64url") from exc
        if len(blob) <= _MAC_BYTES:
            raise TokenError("too short")
        raw, mac = blob[:-_MAC_BYTES], blob[-_MAC_BYTES:]
        expected = hmac.new(self._secret, raw, hashlib.sha256).digest()[:_MAC_BYTES]
        if not hmac.compare_digest(mac, expected):
            raise TokenError("bad MAC")
        try:
            value = json.loads(raw)
        except ValueError as exc:
            raise TokenError("bad payload") from exc
        if not isinstance(value, dict):
            raise TokenError("bad payload")
        return value


def fingerprint(params: Mapping[str, Any]) -> str:
    """A short stable hash of query parameters (order-insensitive, repeated values sorted)."""
    norm = {k: sorted(v) if isinstance(v, list) else v for k, v in params.items() if v is not None}
    raw = json.dumps(norm, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:12]
