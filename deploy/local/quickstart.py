"""Run the whole pipeline on this machine: Kafka, the emulator, the connector, a live view.

Started by ``bash deploy/local/quickstart.sh`` (which installs everything first). It:

1. starts Apache Kafka (KRaft, one node) from the Maven Central jars in ``.work/kafka``;
2. starts the bundled Google Calendar emulator with sample data;
3. writes ``.work/quickstart.yaml`` and starts ``gcal-kafka run`` on it;
4. prints change events as they arrive (``gcal-kafka tail``), waits for the first full sync,
   then makes a few changes in the emulator: an insert, an update, a deletion, and an injected
   410 (the sync token invalidated), so you see CREATED, UPDATED, CANCELLED and a
   RESET_BEGIN / RESET_END pair;
5. keeps running until Ctrl-C, then stops everything cleanly.

``--once`` stops after the demo changes instead of waiting for Ctrl-C (used by the tests).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".work"
BIN = Path(sys.executable).parent


def say(text: str) -> None:
    print(f"\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"==> {text}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"quickstart: {url} did not answer within {timeout:.0f}s")


def post(url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body or {}).encode()
    req = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def start_kafka() -> tuple[Any, str]:
    sys.path.insert(0, str(ROOT / "deploy" / "local" / "kafka"))
    import broker  # type: ignore[import-not-found]

    kafka = broker.LocalKafka(WORK / "kafka")
    say("starting Apache Kafka (KRaft, single node) from the Maven Central jars")
    bootstrap = kafka.start(timeout=120)
    say(f"Kafka is up at {bootstrap}")
    return kafka, bootstrap


def write_config(bootstrap: str, emulator_url: str, users: list[str], metrics_port: int) -> Path:
    WORK.mkdir(exist_ok=True)
    accounts = []
    for email in users:
        creds = WORK / f"credentials-{email}.json"
        creds.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": "quickstart",
                    "client_secret": "quickstart-not-a-secret",
                    "refresh_token": f"refresh-{email}",
                }
            )
        )
        accounts.append(
            {
                "name": email.split("@")[0],
                "credentials": {"kind": "authorized_user", "path": str(creds)},
                "calendars": "all",
            }
        )
    config = {
        "kafka": {"bootstrap.servers": bootstrap},
        "topics": {"partitions": 3},
        "google": {
            "api_endpoint": f"{emulator_url}/calendar/v3/",
            "token_uri": f"{emulator_url}/token",
        },
        "sync": {"poll_interval_seconds": 2},
        "accounts": accounts,
        "metrics": {"port": metrics_port},
        "logging": {"format": "text", "level": "WARNING"},
    }
    path = WORK / "quickstart.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def demo_changes(emulator_url: str, calendar_id: str) -> None:
    """A few changes through the Calendar API itself, plus an injected 410."""
    from google.oauth2.credentials import Credentials
    from googleapiclient.discovery import build

    creds = Credentials(
        token=None,
        refresh_token="refresh-alice@example.com",
        client_id="quickstart",
        client_secret="quickstart-not-a-secret",
        token_uri=f"{emulator_url}/token",
    )
    api = build(
        "calendar",
        "v3",
        credentials=creds,
        static_discovery=True,
        client_options={"api_endpoint": f"{emulator_url}/calendar/v3/"},
    )
    events = api.events()
    say("demo: inserting an event")
    created = events.insert(
        calendarId=calendar_id,
        body={
            "summary": "Quickstart demo",
            "start": {"dateTime": "2026-12-01T10:00:00Z"},
            "end": {"dateTime": "2026-12-01T11:00:00Z"},
        },
    ).execute()
    time.sleep(4)
    say("demo: updating it")
    events.patch(
        calendarId=calendar_id, eventId=created["id"], body={"summary": "Quickstart demo (moved)"}
    ).execute()
    time.sleep(4)
    say("demo: deleting it")
    events.delete(calendarId=calendar_id, eventId=created["id"]).execute()
    time.sleep(4)
    say("demo: invalidating the calendar's sync tokens (Google would answer 410)")
    post(
        f"{emulator_url}/emulator/calendars/{urllib.parse.quote(calendar_id, safe='')}"
        "/invalidate-tokens"
    )
    time.sleep(6)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="stop after the demo changes")
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    kafka = None
    try:
        kafka, bootstrap = start_kafka()
        port = free_port()
        emulator_url = f"http://127.0.0.1:{port}"
        say(f"starting the Google Calendar emulator with sample data on {emulator_url}")
        procs.append(
            subprocess.Popen(
                [str(BIN / "gcal-kafka"), "emulator", "--port", str(port), "--seed", "sample"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_http(f"{emulator_url}/emulator/state")
        metrics_port = free_port()
        config = write_config(
            bootstrap, emulator_url, ["alice@example.com", "bob@example.com"], metrics_port
        )
        say(f"starting the connector: gcal-kafka run --config {config.relative_to(ROOT)}")
        procs.append(
            subprocess.Popen([str(BIN / "gcal-kafka"), "run", "--config", str(config)], cwd=ROOT)
        )
        wait_http(f"http://127.0.0.1:{metrics_port}/healthz", timeout=60)
        say(f"metrics: http://127.0.0.1:{metrics_port}/metrics — change events follow")
        tail = subprocess.Popen(
            [
                str(BIN / "gcal-kafka"),
                "tail",
                "--config",
                str(config),
                "--from-beginning",
                "--follow",
            ],
            cwd=ROOT,
        )
        procs.append(tail)
        time.sleep(8)
        demo_changes(emulator_url, "alice@example.com")
        if args.once:
            return 0
        say("running; press Ctrl-C to stop")
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        say("stopping")
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        if kafka is not None:
            kafka.stop()
        say("stopped")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
