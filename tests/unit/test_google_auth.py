"""Loading credentials: specific messages that name the file, never a secret; no network."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from googleapiclient.http import HttpMockSequence

from connector.adapters.google_auth import (
    GOOGLE_TOKEN_URI,
    READONLY_SCOPE,
    CredentialSpec,
    load_credentials,
)
from connector.adapters.google_source import GoogleCalendarSource
from connector.core.calendar_source import ListQuery
from connector.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "google"
SECRET = "1//0-very-secret-refresh-token"
USER = {
    "type": "authorized_user",
    "refresh_token": SECRET,
    "client_id": "client-123.apps.googleusercontent.com",
    "client_secret": "GOCSPX-client-secret",
}


@pytest.fixture(scope="module")
def private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def write(tmp_path: Path, content: object, name: str = "creds.json") -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def problems(spec: CredentialSpec) -> str:
    with pytest.raises(ConfigError) as info:
        load_credentials(spec)
    return str(info.value)


def test_authorized_user_keeps_a_token_uri_override(tmp_path: Path) -> None:
    path = write(tmp_path, {**USER, "token_uri": GOOGLE_TOKEN_URI})
    creds = load_credentials(
        CredentialSpec("authorized_user", path, token_uri="http://127.0.0.1:9/token")
    )
    assert isinstance(creds, user_credentials.Credentials)
    assert creds.token_uri == "http://127.0.0.1:9/token"
    assert creds.refresh_token == SECRET and creds.client_id == USER["client_id"]
    assert creds.scopes == [READONLY_SCOPE]
    assert not creds.valid  # no access token yet: the first request refreshes


def test_authorized_user_uses_the_files_token_uri_then_googles(tmp_path: Path) -> None:
    with_uri = write(tmp_path, {**USER, "token_uri": "http://127.0.0.1:9/token"}, "a.json")
    without = write(tmp_path, USER, "b.json")
    creds_a = load_credentials(CredentialSpec("authorized_user", with_uri))
    creds_b = load_credentials(CredentialSpec("authorized_user", without))
    assert isinstance(creds_a, user_credentials.Credentials)
    assert isinstance(creds_b, user_credentials.Credentials)
    assert creds_a.token_uri == "http://127.0.0.1:9/token"
    assert creds_b.token_uri == GOOGLE_TOKEN_URI


def test_first_request_refreshes_against_the_overridden_token_endpoint(tmp_path: Path) -> None:
    spec = CredentialSpec(
        "authorized_user", write(tmp_path, USER), token_uri="http://127.0.0.1:9/token"
    )
    seq = HttpMockSequence(
        [
            ({"status": "200"}, (DATA / "token_response.json").read_text()),
            ({"status": "200"}, (DATA / "events_page_last.json").read_text()),
        ]
    )
    source = GoogleCalendarSource(load_credentials(spec), http_factory=lambda: seq)
    source.list_events("primary", ListQuery(), sync_token=None, page_token=None)
    (token_uri, method, form, _), (_, _, _, headers) = seq.request_sequence
    assert (token_uri, method) == ("http://127.0.0.1:9/token", "POST")
    assert parse_qs(form.decode() if isinstance(form, bytes) else form)["grant_type"] == [
        "refresh_token"
    ]
    assert headers["authorization"] == "Bearer ya29.refreshed-access-token"


def test_missing_file_is_named(tmp_path: Path) -> None:
    message = problems(CredentialSpec("authorized_user", tmp_path / "nope.json"))
    assert "nope.json" in message and "does not exist" in message


def test_a_directory_is_not_a_credentials_file(tmp_path: Path) -> None:
    assert "is a directory" in problems(CredentialSpec("authorized_user", tmp_path))


def test_invalid_json_does_not_echo_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '{"refresh_token": "' + SECRET + '",,}')
    message = problems(CredentialSpec("authorized_user", path))
    assert "not valid JSON" in message and str(path) in message
    assert SECRET not in message


def test_a_json_list_is_refused(tmp_path: Path) -> None:
    assert "JSON object" in problems(CredentialSpec("authorized_user", write(tmp_path, [USER])))


def test_missing_keys_are_listed_together_without_values(tmp_path: Path) -> None:
    path = write(tmp_path, {"refresh_token": SECRET, "client_id": ""})
    message = problems(CredentialSpec("authorized_user", path))
    assert "client_id, client_secret" in message
    assert SECRET not in message


def test_a_service_account_key_configured_as_a_user_file_is_refused(
    tmp_path: Path, private_key_pem: str
) -> None:
    path = write(tmp_path, {"type": "service_account", "private_key": private_key_pem})
    message = problems(CredentialSpec("authorized_user", path))
    assert "'service_account'" in message
    assert "PRIVATE KEY" not in message


def test_subject_is_only_for_service_accounts(tmp_path: Path) -> None:
    spec = CredentialSpec("authorized_user", write(tmp_path, USER), subject="bob@example.com")
    assert "only for service accounts" in problems(spec)


def service_info(private_key: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "demo",
        "private_key_id": "abc123",
        "private_key": private_key,
        "client_email": "sync@demo.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": GOOGLE_TOKEN_URI,
    }


def test_service_account_with_delegation_and_token_uri_override(
    tmp_path: Path, private_key_pem: str
) -> None:
    spec = CredentialSpec(
        "service_account",
        write(tmp_path, service_info(private_key_pem)),
        subject="alice@example.com",
        token_uri="http://127.0.0.1:9/token",
    )
    creds = load_credentials(spec)
    assert isinstance(creds, service_account.Credentials)
    assert creds.service_account_email == "sync@demo.iam.gserviceaccount.com"
    assert creds._subject == "alice@example.com"
    assert creds._token_uri == "http://127.0.0.1:9/token"


def test_a_broken_private_key_is_reported_without_key_material(tmp_path: Path) -> None:
    broken = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYDATA\n-----END PRIVATE KEY-----\n"
    spec = CredentialSpec("service_account", write(tmp_path, service_info(broken)))
    message = problems(spec)
    assert "private_key that cannot be parsed" in message and "creds.json" in message
    assert "TOPSECRETKEYDATA" not in message


def test_service_account_missing_fields(tmp_path: Path) -> None:
    message = problems(CredentialSpec("service_account", write(tmp_path, {"type": "x"})))
    assert "client_email, private_key" in message
    assert "'x'" in message
