"""What the service reports as it works; the Prometheus adapter implements it.

Kept as a small Protocol so the service loop has no dependency on prometheus_client, and tests
can record what happened with a fake of their own.
"""

from __future__ import annotations

from typing import Protocol

from connector.core.records import Op, ResetReason


class SyncObserver(Protocol):
    def pass_finished(
        self, stream_id: str, phase: str, trigger: str, result: str, seconds: float
    ) -> None: ...

    def published(self, stream_id: str, counts: dict[Op, int], dead_letters: int) -> None: ...

    def reset(self, stream_id: str, reason: ResetReason) -> None: ...

    def checkpoint_committed(self, stream_id: str, source_updated_ms: int | None) -> None: ...

    def stream_state(self, stream_id: str, account: str, state: str) -> None: ...

    def account_state(self, account: str, state: str) -> None: ...

    def backoff(self, account: str, reason: str, seconds: float) -> None: ...

    def channel_state(self, stream_id: str, state: str, expiration_ms: int | None) -> None: ...

    def push_notification(self, state: str) -> None: ...


class NullObserver:
    def pass_finished(
        self, stream_id: str, phase: str, trigger: str, result: str, seconds: float
    ) -> None:
        pass

    def published(self, stream_id: str, counts: dict[Op, int], dead_letters: int) -> None:
        pass

    def reset(self, stream_id: str, reason: ResetReason) -> None:
        pass

    def checkpoint_committed(self, stream_id: str, source_updated_ms: int | None) -> None:
        pass

    def stream_state(self, stream_id: str, account: str, state: str) -> None:
        pass

    def account_state(self, account: str, state: str) -> None:
        pass

    def backoff(self, account: str, reason: str, seconds: float) -> None:
        pass

    def channel_state(self, stream_id: str, state: str, expiration_ms: int | None) -> None:
        pass

    def push_notification(self, state: str) -> None:
        pass
