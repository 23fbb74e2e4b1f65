"""The emulator's control API (no auth) and the same operations as a Python handle.

Routes, all JSON in and out:

- ``POST /emulator/seed``: body is a dataset (docs/architecture.md); replaces all data.
- ``POST /emulator/reset``: empties the store, tokens, channels, faults and the request log.
- ``POST /emulator/calendars/{id}/invalidate-tokens``: that calendar's sync tokens answer 410.
- ``POST /emulator/users/{email}/invalidate-tokens``: the user's calendarList sync tokens 410.
- ``POST /emulator/users/{email}/revoke``: kills the user's access and refresh tokens (refresh
  then fails with invalid_grant, API calls with 401).
- ``POST /emulator/users/{email}/restore``: undoes revoke (old access tokens stay dead).
- ``POST /emulator/clock``: ``{"advance_seconds": N}`` or ``{"set": "RFC3339"}``.
- ``POST /emulator/faults``: fault spec (see faults.py); ``DELETE /emulator/faults`` clears it.
- ``POST /emulator/latency``: ``{"default_ms": N, "routes": {"events.list": N}}``.
- ``POST /emulator/quotas``: ``{"per_user_per_minute": N, "per_project_per_minute": N,
  "status": 403|429}``; absent keys switch that quota off.
- ``POST /emulator/push``: ``{"drop_probability": p, "delay_ms": N, "seed": S}``.
- ``POST /emulator/config``: any StoreConfig field (``tombstone_horizon``,
  ``updated_min_window``, ``instances_horizon``, ``max_results_default``, ``empty_pages``,
  ``token_lifetime``, ``calendar_list_default``).
- ``POST /emulator/purge``: purge tombstones older than the horizon now.
- ``GET /emulator/requests``: the request log (method, path, query, status, user, route);
  ``DELETE /emulator/requests`` clears it.
- ``GET /emulator/state``: summary of users, calendars, channels, faults and configuration.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from connector.emulator import api, calendars, errors
from connector.emulator.clock import parse_rfc3339, to_rfc3339_ms
from connector.emulator.faults import FaultSpecError
from connector.emulator.store import UserRecord

if TYPE_CHECKING:
    from connector.emulator.app import Emulator


class EmulatorControl:
    """Thread-safe handle on a running emulator (what the control API calls)."""

    def __init__(self, emu: Emulator) -> None:
        self._emu = emu

    def seed(self, dataset: Any) -> dict[str, Any]:
        if not isinstance(dataset, dict) or not isinstance(dataset.get("users", []), list):
            raise errors.bad_request("dataset must be an object with a 'users' list")
        emu = self._emu
        with emu.store.lock:
            calendars.seed(emu.store, dataset, emu.clock.now())
            emu.cache = type(emu.cache)()
        emu.issuer.clear()
        emu.push.clear()
        return self.state()

    def reset(self) -> None:
        self.seed({"users": []})
        self._emu.faults.clear_faults()
        self._emu.faults.set_latency({})
        self._emu.faults.set_quotas({})
        self.clear_requests()

    def invalidate_tokens(self, calendar_id: str) -> None:
        with self._emu.store.lock:
            cal = self._emu.store.calendars.get(calendar_id)
            if cal is None:
                raise errors.not_found()
            cal.token_epoch += 1

    def invalidate_list_tokens(self, email: str) -> None:
        with self._emu.store.lock:
            self._user(email).list_epoch += 1

    def revoke_user(self, email: str) -> None:
        with self._emu.store.lock:
            self._user(email).revoked = True
        self._emu.issuer.revoke(email)

    def restore_user(self, email: str) -> None:
        with self._emu.store.lock:
            self._user(email).revoked = False

    def advance_clock(self, seconds: float) -> datetime:
        return self._emu.clock.advance(seconds)

    def set_clock(self, when: datetime) -> datetime:
        return self._emu.clock.set(when)

    def set_faults(self, spec: dict[str, Any]) -> None:
        self._emu.faults.set_faults(spec)

    def clear_faults(self) -> None:
        self._emu.faults.clear_faults()

    def set_latency(self, spec: dict[str, Any]) -> None:
        self._emu.faults.set_latency(spec)

    def set_quotas(self, spec: dict[str, Any]) -> None:
        self._emu.faults.set_quotas(spec)

    def set_push(
        self,
        *,
        drop_probability: float | None = None,
        delay_ms: int | None = None,
        seed: int | None = None,
    ) -> None:
        self._emu.push.configure(drop_probability=drop_probability, delay_ms=delay_ms, seed=seed)

    def configure(self, **changes: Any) -> dict[str, Any]:
        config = self._emu.store.config
        known = {f.name: f.type for f in fields(config)}
        for key, value in changes.items():
            if key not in known:
                raise errors.bad_request(f"unknown setting {key!r}; known: {sorted(known)}")
            current = getattr(config, key)
            setattr(config, key, type(current)(value))
        self._emu.cache = type(self._emu.cache)()
        return vars(config).copy()

    def purge(self) -> int:
        return self._emu.store.purge(self._emu.clock.now())

    def requests(self) -> list[dict[str, Any]]:
        with self._emu._log_lock:
            return list(self._emu.requests)

    def clear_requests(self) -> None:
        with self._emu._log_lock:
            self._emu.requests.clear()

    def state(self) -> dict[str, Any]:
        return self._emu.summary()

    def refresh_token(self, email: str) -> str:
        with self._emu.store.lock:
            return self._user(email).refresh_token

    def _user(self, email: str) -> UserRecord:
        user = self._emu.store.users.get(email)
        if user is None:
            raise errors.not_found()
        return user


def dispatch(ctl: EmulatorControl, method: str, path: list[str], body: bytes) -> api.Response:
    """Route ``/emulator/...`` (``path`` is what follows ``emulator``)."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        raise errors.ApiError(400, "global", "parseError", "Parse Error") from None
    spec = payload if isinstance(payload, dict) else {}
    ok = api.json_response(200, {"ok": True})
    try:
        match method, path:
            case "POST", ["seed"]:
                return api.json_response(200, ctl.seed(payload))
            case "POST", ["reset"]:
                ctl.reset()
                return ok
            case "POST", ["calendars", calendar_id, "invalidate-tokens"]:
                ctl.invalidate_tokens(calendar_id)
                return ok
            case "POST", ["users", email, "invalidate-tokens"]:
                ctl.invalidate_list_tokens(email)
                return ok
            case "POST", ["users", email, "revoke"]:
                ctl.revoke_user(email)
                return ok
            case "POST", ["users", email, "restore"]:
                ctl.restore_user(email)
                return ok
            case "POST", ["clock"]:
                return api.json_response(200, {"now": to_rfc3339_ms(_move_clock(ctl, spec))})
            case "POST", ["faults"]:
                ctl.set_faults(spec)
                return ok
            case "DELETE", ["faults"]:
                ctl.clear_faults()
                return ok
            case "POST", ["latency"]:
                ctl.set_latency(spec)
                return ok
            case "POST", ["quotas"]:
                ctl.set_quotas(spec)
                return ok
            case "POST", ["push"]:
                ctl.set_push(
                    drop_probability=spec.get("drop_probability"),
                    delay_ms=spec.get("delay_ms"),
                    seed=spec.get("seed"),
                )
                return ok
            case "POST", ["config"]:
                return api.json_response(200, ctl.configure(**spec))
            case "POST", ["purge"]:
                return api.json_response(200, {"purged": ctl.purge()})
            case "GET", ["requests"]:
                return api.json_response(200, {"requests": ctl.requests()})
            case "DELETE", ["requests"]:
                ctl.clear_requests()
                return ok
            case "GET", ["state"]:
                return api.json_response(200, ctl.state())
    except (FaultSpecError, KeyError, TypeError, ValueError) as exc:
        raise errors.bad_request(str(exc)) from None
    raise errors.not_found()


def _move_clock(ctl: EmulatorControl, spec: dict[str, Any]) -> datetime:
    if "set" in spec:
        return ctl.set_clock(parse_rfc3339(str(spec["set"])))
    return ctl.advance_clock(float(spec.get("advance_seconds", 0)))
