"""Pure emulator logic, driven through Emulator.handle without sockets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.emulator import errors
from connector.emulator.app import Emulator
from connector.emulator.clock import Clock
from connector.emulator.faults import FaultInjector, FaultSpecError
from connector.emulator.tokens import TokenCodec, TokenError, fingerprint

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ALICE = "alice@example.com"


def _emu() -> tuple[Emulator, dict[str, str]]:
    emu = Emulator(
        dataset={
            "users": [
                {"email": ALICE, "calendars": [{"id": ALICE, "primary": True, "timeZone": "UTC"}]}
            ]
        },
        clock=Clock(frozen=T0),
        seed=3,
    )
    grant = emu.handle(
        "POST", "/token", {}, f"grant_type=refresh_token&refresh_token=refresh-{ALICE}".encode()
    )
    token = json.loads(grant.body)["access_token"]
    return emu, {"Authorization": f"Bearer {token}"}


def _call(
    emu: Emulator, headers: dict[str, str], method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    raw = b"" if body is None else json.dumps(body).encode()
    response = emu.handle(method, path, headers, raw)
    return response.status, json.loads(response.body) if response.body else None


def test_token_codec_detects_tampering() -> None:
    codec = TokenCodec(b"k" * 16)
    token = codec.encode({"s": 5, "c": [1, "x"]})
    assert codec.decode(token) == {"s": 5, "c": [1, "x"]}
    for bad in (token[:-2] + "AA", "garbage", "", token[:5]):
        with pytest.raises(TokenError):
            codec.decode(bad)
    with pytest.raises(TokenError):
        TokenCodec(b"other-secret-123").decode(token)


def test_fingerprint_ignores_order() -> None:
    assert fingerprint({"a": ["x", "y"], "b": "1"}) == fingerprint({"b": "1", "a": ["y", "x"]})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})


def test_fault_injector_counts_and_quota_window() -> None:
    faults = FaultInjector(seed=1)
    faults.set_faults({"faults": [{"route": "events.list", "error": "503", "count": 2}]})
    for _ in range(2):
        with pytest.raises(errors.ApiError) as exc:
            faults.check("events.list", "u", 0.0)
        assert exc.value.status == 503
    faults.check("events.list", "u", 0.0)
    faults.check("events.get", "u", 0.0)
    faults.set_quotas({"per_user_per_minute": 1})
    faults.check("events.get", "u", 100.0)
    with pytest.raises(errors.ApiError) as quota:
        faults.check("events.get", "u", 159.0)
    assert quota.value.reason == "userRateLimitExceeded"
    faults.check("events.get", "u", 160.5)
    with pytest.raises(FaultSpecError):
        faults.set_faults({"faults": [{"error": "nonsense"}]})


def test_full_list_matrix_and_incremental() -> None:
    emu, auth = _emu()
    base = "/calendar/v3/calendars/primary/events"
    ev = {
        "summary": "x",
        "start": {"dateTime": "2026-03-03T10:00:00Z"},
        "end": {"dateTime": "2026-03-03T11:00:00Z"},
    }
    status, created = _call(emu, auth, "POST", base, ev | {"id": "aaaaa"})
    assert status == 200
    _call(emu, auth, "POST", base, ev | {"id": "bbbbb"})
    status, page = _call(emu, auth, "GET", base)
    token = page["nextSyncToken"]
    assert _call(emu, auth, "DELETE", f"{base}/aaaaa")[0] == 204
    assert [i["id"] for i in _call(emu, auth, "GET", base)[1]["items"]] == ["bbbbb"]
    shown = _call(emu, auth, "GET", f"{base}?showDeleted=true")[1]["items"]
    assert {i["id"]: i["status"] for i in shown} == {"aaaaa": "cancelled", "bbbbb": "confirmed"}
    changes = _call(emu, auth, "GET", f"{base}?syncToken={token}")[1]["items"]
    assert changes == [
        {
            "kind": "calendar#event",
            "etag": changes[0]["etag"],
            "id": "aaaaa",
            "status": "cancelled",
            "updated": "2026-03-02T09:00:00.001Z",
        }
    ]
    assert created["etag"] != changes[0]["etag"]


def test_root_layout_and_errors_never_leak_tracebacks() -> None:
    emu, auth = _emu()
    assert _call(emu, auth, "GET", "/calendars/primary/events")[0] == 200
    status, body = _call(emu, auth, "POST", "/calendars/primary/events", None)
    assert status == 400 and body["error"]["errors"][0]["reason"] == "required"
    raw = emu.handle("POST", "/calendars/primary/events", auth, b"{not json")
    assert raw.status == 400 and json.loads(raw.body)["error"]["code"] == 400
    assert _call(emu, {}, "GET", "/calendars/primary/events")[0] == 401


def test_purge_raises_floor_and_keeps_live_series_exceptions() -> None:
    emu, auth = _emu()
    base = "/calendars/primary/events"
    ev = {
        "summary": "x",
        "start": {"dateTime": "2026-03-03T10:00:00Z"},
        "end": {"dateTime": "2026-03-03T11:00:00Z"},
        "id": "ccccc",
    }
    _call(emu, auth, "POST", base, ev)
    _call(emu, auth, "DELETE", f"{base}/ccccc")
    emu.control.configure(tombstone_horizon=10)
    emu.control.advance_clock(11)
    assert emu.control.purge() == 1
    assert emu.store.calendars[ALICE].purge_floor > 0
    assert _call(emu, auth, "GET", f"{base}/ccccc")[0] == 404
