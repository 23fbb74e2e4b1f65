"""`gcal-kafka emulator --seed sample` as a user runs it: a process, a URL, sample data, SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request

import pytest
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

pytestmark = pytest.mark.integration


def test_the_emulator_command_serves_sample_data_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "connector.cli", "emulator", "--port", "0", "--seed", "sample"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        url = match.group(1)
        with urllib.request.urlopen(f"{url}/emulator/state", timeout=10) as resp:
            state = json.loads(resp.read())
        assert "alice@example.com" in state["users"]
        creds = Credentials(
            None,
            refresh_token="refresh-alice@example.com",
            client_id="any",
            client_secret="any",
            token_uri=f"{url}/token",
        )
        with build(
            "calendar",
            "v3",
            credentials=creds,
            static_discovery=True,
            client_options={"api_endpoint": f"{url}/calendar/v3/"},
        ) as api:
            items = api.events().list(calendarId="primary").execute()["items"]
            calendars = api.calendarList().list().execute()["items"]
        assert len(items) >= 5
        assert {c["id"] for c in calendars} >= {"alice@example.com"}
        assert any("recurrence" in e for e in items)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
