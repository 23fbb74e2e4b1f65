"""OAuth token endpoint: refresh tokens, service accounts with delegation, 401s, revocation."""

from __future__ import annotations

import json
from typing import Any

import httplib2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from google.oauth2.credentials import Credentials

from connector.emulator.server import EmulatorServer
from tests.integration.emulator.conftest import ALICE, BOB, build_service, service_for

pytestmark = pytest.mark.integration

AUTH_401 = {
    "error": {
        "errors": [
            {
                "domain": "global",
                "reason": "authError",
                "message": "Invalid Credentials",
                "locationType": "header",
                "location": "Authorization",
            }
        ],
        "code": 401,
        "message": "Invalid Credentials",
    }
}


def _sa_info(server: EmulatorServer) -> dict[str, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "emu",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "sync@emu.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": server.token_uri,
    }


def test_refresh_token_user(make_service: Any) -> None:
    entries = make_service(BOB).calendarList().list().execute()["items"]
    assert {e["id"] for e in entries} == {BOB, "team#ops@group.calendar.google.com"}


def test_service_account_impersonates_subject(emulator: EmulatorServer) -> None:
    creds = service_account.Credentials.from_service_account_info(
        _sa_info(emulator),
        scopes=["https://www.googleapis.com/auth/calendar.readonly"],
        subject=ALICE,
    )
    svc = build_service(emulator, creds)
    assert svc.calendars().get(calendarId="primary").execute()["id"] == ALICE
    unknown = creds.with_subject("nobody@example.com")
    with pytest.raises(RefreshError):
        build_service(emulator, unknown).calendars().get(calendarId="primary").execute()


def test_service_account_without_subject_acts_as_itself(emulator: EmulatorServer) -> None:
    creds = service_account.Credentials.from_service_account_info(
        _sa_info(emulator), scopes=["https://www.googleapis.com/auth/calendar"]
    )
    got = build_service(emulator, creds).events().list(calendarId="primary").execute()
    assert got["items"] == []


def test_missing_and_unknown_token_401(emulator: EmulatorServer) -> None:
    http = httplib2.Http()
    try:
        for headers in ({}, {"Authorization": "Bearer nope"}):
            resp, content = http.request(
                emulator.api_endpoint + "calendars/primary/events", "GET", headers=headers
            )
            assert resp.status == 401 and json.loads(content) == AUTH_401
    finally:
        http.close()


def test_expired_access_token_is_refreshed(emulator: EmulatorServer, service: Any) -> None:
    service.events().list(calendarId="primary").execute()
    emulator.control.advance_clock(4000)  # past the 3600 s lifetime: the server says 401
    service.events().list(calendarId="primary").execute()  # the client refreshes and retries
    tokens = [r for r in emulator.control.requests() if r["route"] == "token"]
    assert len(tokens) == 2


def test_revoke_and_restore(emulator: EmulatorServer) -> None:
    creds = Credentials(
        token=None,
        refresh_token=emulator.control.refresh_token(ALICE),
        token_uri=emulator.token_uri,
        client_id="c",
        client_secret="s",
    )
    svc = build_service(emulator, creds)
    svc.events().list(calendarId="primary").execute()
    emulator.control.revoke_user(ALICE)
    with pytest.raises(RefreshError) as exc:
        svc.events().list(calendarId="primary").execute()
    assert "invalid_grant" in str(exc.value)
    emulator.control.restore_user(ALICE)
    assert service_for(emulator).events().list(calendarId="primary").execute()["items"] == []


def test_token_endpoint_errors(emulator: EmulatorServer) -> None:
    http = httplib2.Http()
    try:
        resp, content = http.request(
            emulator.token_uri,
            "POST",
            body="grant_type=refresh_token&refresh_token=bad",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status == 400
        assert json.loads(content) == {
            "error": "invalid_grant",
            "error_description": "Token has been expired or revoked.",
        }
    finally:
        http.close()


def test_unknown_route_404_google_body(emulator: EmulatorServer) -> None:
    http = httplib2.Http()
    try:
        resp, content = http.request(emulator.url + "/calendar/v3/nothing/here", "GET")
        assert resp.status == 404
        assert json.loads(content)["error"]["errors"][0]["reason"] == "notFound"
    finally:
        http.close()
