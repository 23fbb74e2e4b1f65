"""The Compose stack's emulator service, run for real: the image's entrypoint script with the
service's command (only ``--host``/``--port`` moved to loopback and a free port), then the
connector's emulator configuration and credentials files used against it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from tests.unit.test_deploy_files import DEPLOY, compose, entrypoint_script

pytestmark = pytest.mark.integration


def _on_loopback(command: list[str]) -> list[str]:
    out = list(command)
    out[out.index("--host") + 1] = "127.0.0.1"
    out[out.index("--port") + 1] = "0"
    return out


def test_compose_emulator_command_serves_what_the_connector_config_expects() -> None:
    services = compose()["services"]
    command = services["emulator"]["command"]
    port = command[command.index("--port") + 1]
    config = yaml.safe_load((DEPLOY / "compose" / "connector-emulator.yaml").read_text())
    assert config["google"]["api_endpoint"] == f"http://emulator:{port}/calendar/v3/"
    assert config["google"]["token_uri"] == f"http://emulator:{port}/token"

    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["sh", str(entrypoint_script()), *_on_loopback(command)],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, first
        url = match.group(1)
        with urllib.request.urlopen(f"{url}/emulator/state", timeout=10) as resp:
            users = json.loads(resp.read())["users"]
        mounted = DEPLOY / "compose" / "emulator-credentials"
        for account in config["accounts"]:
            path = mounted / Path(account["credentials"]["path"]).name
            info = json.loads(path.read_text())
            assert info["refresh_token"].removeprefix("refresh-") in users
            creds = Credentials.from_authorized_user_info(info)
            creds = Credentials(
                None,
                refresh_token=creds.refresh_token,
                client_id=creds.client_id,
                client_secret=creds.client_secret,
                token_uri=f"{url}/token",
            )
            with build(
                "calendar",
                "v3",
                credentials=creds,
                static_discovery=True,
                client_options={"api_endpoint": f"{url}/calendar/v3/"},
            ) as api:
                calendars = api.calendarList().list().execute()["items"]
            assert calendars, account["name"]
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
    assert code == 0
