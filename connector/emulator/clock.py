"""The emulator's clock: real UTC time plus an offset that tests and the control API move."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Real time by default; ``frozen`` pins it (deterministic tests); both can be advanced."""

    def __init__(self, frozen: datetime | None = None) -> None:
        if frozen is not None and frozen.tzinfo is None:
            raise ValueError("frozen time must be timezone-aware")
        self._frozen = frozen
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            base = self._frozen if self._frozen is not None else datetime.now(UTC)
            return (base + self._offset).astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("time must be timezone-aware")
        with self._lock:
            base = self._frozen if self._frozen is not None else datetime.now(UTC)
            self._offset = when - base
        return self.now()


def to_rfc3339_ms(when: datetime) -> str:
    """Google's ``created``/``updated`` form: UTC with millisecond precision."""
    utc = when.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_rfc3339(value: str, *, require_offset: bool = True) -> datetime:
    """Parse an RFC 3339 timestamp; raises ValueError when malformed or (if asked) naive."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        if require_offset:
            raise ValueError("offset required")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
