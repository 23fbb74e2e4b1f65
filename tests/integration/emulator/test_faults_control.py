"""Injected faults, quotas, latency and the /emulator/ control API over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httplib2
import pytest
from googleapiclient.errors import HttpError

from connector.emulator.server import EmulatorServer
from tests.integration.emulator.conftest import ALICE, list_all

pytestmark = pytest.mark.integration


def _body(exc: HttpError) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.content)
    return body


@pytest.mark.parametrize(
    ("error", "status", "reason"),
    [
        ("backendError", 500, "backendError"),
        ("503", 503, "backendError"),
        ("quotaExceeded", 403, "quotaExceeded"),
        ("429", 429, "rateLimitExceeded"),
        ("notFound", 404, "notFound"),
        ("fullSyncRequired", 410, "fullSyncRequired"),
    ],
)
def test_next_n_faults(
    emulator: EmulatorServer, service: Any, error: str, status: int, reason: str
) -> None:
    emulator.control.set_faults({"faults": [{"route": "events.list", "error": error, "count": 1}]})
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary").execute()
    assert exc.value.resp.status == status
    assert _body(exc.value)["error"]["errors"][0]["reason"] == reason
    service.events().list(calendarId="primary").execute()


def test_probability_faults_are_seeded(emulator: EmulatorServer, service: Any) -> None:
    emulator.control.set_faults(
        {"faults": [{"route": "*", "error": "backendError", "probability": 1.0}]}
    )
    with pytest.raises(HttpError):
        service.calendarList().list().execute()
    emulator.control.clear_faults()
    service.calendarList().list().execute()


def test_per_user_quota(emulator: EmulatorServer, service: Any) -> None:
    emulator.control.set_quotas({"per_user_per_minute": 2})
    service.events().list(calendarId="primary").execute()
    service.events().list(calendarId="primary").execute()
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary").execute()
    assert exc.value.resp.status == 403
    assert _body(exc.value) == {
        "error": {
            "errors": [
                {
                    "domain": "usageLimits",
                    "reason": "userRateLimitExceeded",
                    "message": "User Rate Limit Exceeded",
                }
            ],
            "code": 403,
            "message": "User Rate Limit Exceeded",
        }
    }
    emulator.control.advance_clock(61)  # the sliding window moves on
    service.events().list(calendarId="primary").execute()


def test_project_quota_429(emulator: EmulatorServer, service: Any) -> None:
    emulator.control.set_quotas({"per_project_per_minute": 1, "status": 429})
    service.events().list(calendarId="primary").execute()
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary").execute()
    assert exc.value.resp.status == 429


def _call(server: EmulatorServer, method: str, path: str, body: Any = None) -> Any:
    http = httplib2.Http()
    try:
        resp, content = http.request(
            server.url + path, method, body=None if body is None else json.dumps(body)
        )
    finally:
        http.close()
    assert resp.status == 200, content
    return json.loads(content)


def test_control_api_over_http(emulator: EmulatorServer, service: Any) -> None:
    seeded = _call(
        emulator,
        "POST",
        "/emulator/seed",
        {
            "users": [
                {
                    "email": ALICE,
                    "calendars": [
                        {
                            "id": ALICE,
                            "primary": True,
                            "events": [
                                {
                                    "id": "abcde",
                                    "summary": "s",
                                    "start": {"date": "2026-03-03"},
                                    "end": {"date": "2026-03-04"},
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )
    assert seeded["calendars"][ALICE]["events"] == 1
    items, token, _ = list_all(service, calendarId="primary")
    assert [i["id"] for i in items] == ["abcde"]
    _call(emulator, "POST", f"/emulator/calendars/{ALICE}/invalidate-tokens")
    with pytest.raises(HttpError) as exc:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert exc.value.resp.status == 410
    assert _call(emulator, "POST", "/emulator/clock", {"advance_seconds": 60})["now"] == (
        "2026-03-02T09:01:00.000Z"
    )
    assert (
        _call(emulator, "POST", "/emulator/clock", {"set": "2026-04-01T00:00:00Z"})["now"]
        == "2026-04-01T00:00:00.000Z"
    )
    _call(
        emulator,
        "POST",
        "/emulator/faults",
        {"faults": [{"route": "events.get", "error": "backendError"}]},
    )
    _call(emulator, "DELETE", "/emulator/faults")
    _call(emulator, "POST", "/emulator/latency", {"default_ms": 1})
    _call(emulator, "POST", "/emulator/quotas", {})
    _call(emulator, "POST", "/emulator/push", {"drop_probability": 0.5, "delay_ms": 1})
    assert _call(emulator, "POST", "/emulator/config", {"empty_pages": 0})["empty_pages"] == 0
    log = _call(emulator, "GET", "/emulator/requests")["requests"]
    assert {"method", "path", "query", "status", "user", "route"} <= set(log[-1])
    assert any(r["route"] == "events.list" and r["status"] == 410 for r in log)
    _call(emulator, "DELETE", "/emulator/requests")
    assert _call(emulator, "GET", "/emulator/requests")["requests"] == []
    _call(emulator, "POST", f"/emulator/users/{ALICE}/revoke")
    _call(emulator, "POST", f"/emulator/users/{ALICE}/restore")
    assert _call(emulator, "POST", "/emulator/purge")["purged"] == 0
    _call(emulator, "POST", "/emulator/reset")
    assert _call(emulator, "GET", "/emulator/state")["users"] == {}
