"""google-auth credentials for one account: an OAuth authorized-user file or a service-account key.

``Credentials.from_authorized_user_file`` forces Google's token endpoint whatever the file says, so
the authorized-user credentials are built by hand: that is what lets the emulator's ``/token``
refresh them. Error messages name the file and the missing keys, never a secret (refresh token,
client secret, private key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import google.auth.credentials
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from connector.errors import ConfigError

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
READONLY_SCOPE = "https://www.googleapis.com/auth/calendar.readonly"

_USER_KEYS = ("refresh_token", "client_id", "client_secret")
_SERVICE_KEYS = ("client_email", "private_key")


@dataclass(frozen=True, slots=True)
class CredentialSpec:
    """Where an account's credentials come from.

    ``subject`` is the user a service account impersonates (domain-wide delegation).
    ``token_uri`` overrides the token endpoint (the emulator's ``/token``).
    """

    kind: Literal["authorized_user", "service_account"]
    path: Path
    subject: str | None = None
    scopes: tuple[str, ...] = (READONLY_SCOPE,)
    token_uri: str | None = None


def load_credentials(spec: CredentialSpec) -> google.auth.credentials.Credentials:
    """Build credentials without any network call: the first request refreshes the token."""
    info = _read_json_object(spec.path)
    if spec.kind == "authorized_user":
        return _authorized_user(spec, info)
    if spec.kind == "service_account":
        return _service_account(spec, info)
    raise ConfigError([f"unknown credentials kind {spec.kind!r}"], source=str(spec.path))


def _read_json_object(path: Path) -> dict[str, Any]:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"credentials file {path} does not exist"], source=source) from None
    except IsADirectoryError:
        raise ConfigError([f"credentials file {path} is a directory"], source=source) from None
    except PermissionError:
        raise ConfigError([f"credentials file {path} is not readable"], source=source) from None
    except UnicodeDecodeError:
        raise ConfigError([f"credentials file {path} is not UTF-8 text"], source=source) from None
    except OSError as exc:
        msg = f"credentials file {path} cannot be read: {exc.strerror or type(exc).__name__}"
        raise ConfigError([msg], source=source) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        # Only the position: the exception's document excerpt could hold a secret.
        msg = f"credentials file {path} is not valid JSON (line {exc.lineno}, column {exc.colno})"
        raise ConfigError([msg], source=source) from None
    if not isinstance(data, dict):
        raise ConfigError([f"credentials file {path} must hold a JSON object"], source=source)
    return data


def _missing(info: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if not isinstance(info.get(k), str) or not info[k].strip()]


def _check_type(spec: CredentialSpec, info: dict[str, Any]) -> list[str]:
    declared = info.get("type")
    if declared is not None and declared != spec.kind:
        return [
            f"credentials file {spec.path} holds type {declared!r} credentials, "
            f"but the account is configured as {spec.kind!r}"
        ]
    return []


def _authorized_user(
    spec: CredentialSpec, info: dict[str, Any]
) -> google.auth.credentials.Credentials:
    problems = _check_type(spec, info)
    missing = _missing(info, _USER_KEYS)
    if missing:
        problems.append(f"credentials file {spec.path} lacks {', '.join(missing)}")
    if spec.subject:
        problems.append(
            f"subject (impersonation) is only for service accounts, not for {spec.path}"
        )
    if problems:
        raise ConfigError(problems, source=str(spec.path))
    token_uri = spec.token_uri or info.get("token_uri") or GOOGLE_TOKEN_URI
    # No stored access token is reused: without its expiry it would look valid forever.
    return user_credentials.Credentials(  # type: ignore[no-untyped-call]
        token=None,
        refresh_token=info["refresh_token"],
        token_uri=str(token_uri),
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        scopes=list(spec.scopes),
        quota_project_id=info.get("quota_project_id"),
    )


def _service_account(
    spec: CredentialSpec, info: dict[str, Any]
) -> google.auth.credentials.Credentials:
    problems = _check_type(spec, info)
    missing = _missing(info, _SERVICE_KEYS)
    if missing:
        problems.append(f"service-account key {spec.path} lacks {', '.join(missing)}")
    if problems:
        raise ConfigError(problems, source=str(spec.path))
    info = {**info, "token_uri": spec.token_uri or info.get("token_uri") or GOOGLE_TOKEN_URI}
    try:
        creds: google.auth.credentials.Credentials = (
            service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
                info, scopes=list(spec.scopes), subject=spec.subject
            )
        )
    except (ValueError, TypeError, KeyError, IndexError):
        # The backend's message may quote key material: say only which file is broken.
        msg = f"service-account key {spec.path} has a private_key that cannot be parsed"
        raise ConfigError([msg], source=str(spec.path)) from None
    return creds
