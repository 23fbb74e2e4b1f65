"""The real connector's /metrics, /healthz and /readyz, checked with promtool.

``gcal-kafka run`` runs as a subprocess against the emulator and the real broker with metrics on
a free loopback port. Once it has synced, its /metrics output must pass ``promtool check
metrics``; the alert rules must pass ``promtool check rules`` and their unit tests; and every
metric the dashboard and the rules query must be in that real output. promtool comes from
Debian's ``prometheus`` package (installed by ``.ci/setup``): missing in CI is a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connector.emulator.server import EmulatorServer
from tests.integration.engine import (
    close_clients,
    credentials_file,
    dataset,
    event,
    settings_for,
    wait_for,
)
from tests.unit.test_dashboard import (
    FROM_PROMETHEUS,
    ROOT,
    RULES,
    dashboard_queries,
    exported_names,
    metric_names,
    rule_queries,
)

pytestmark = pytest.mark.integration
ALICE = "alice@example.com"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool missing in CI (apt-get install prometheus)", pytrace=False)
        pytest.skip("promtool missing (apt-get install prometheus)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        exc.close()
        return int(exc.code), body
    except OSError:
        return 0, ""


@pytest.fixture
def metrics_url(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    emulator = EmulatorServer(port=0).start()
    emulator.control.seed(dataset({ALICE: [event(f"m{i}", f"M{i}") for i in range(5)]}))
    port = free_port()
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, metrics={"port": port}
    )
    config = tmp_path / "config.yaml"
    raw = settings.model_dump(mode="json", exclude_none=True)
    raw["accounts"][0]["credentials"]["path"] = str(credentials_file(tmp_path))
    config.write_text(yaml.safe_dump(raw))
    log = tmp_path / "connector.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "connector.cli", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        close_clients()
        emulator.stop()


def test_real_metrics_pass_promtool_and_cover_the_dashboard_and_rules(
    metrics_url: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    tool = promtool()
    base, proc, log = metrics_url

    def synced() -> bool:
        assert proc.poll() is None, log.read_text()[-3000:]
        status, text = get(base + "/metrics")
        return status == 200 and 'gcal_kafka_passes_total{mode="full"' in text

    wait_for(synced, what="a finished full pass in /metrics")
    assert get(base + "/healthz")[0] == 200
    assert get(base + "/readyz") == (200, "ready\n")
    status, text = get(base + "/metrics")
    assert status == 200

    checked = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr

    exported = exported_names(text)
    assert 'gcal_kafka_change_events_total{op="CREATED"} 5.0' in text
    assert "gcal_kafka_google_requests_total" in exported
    used = metric_names(dashboard_queries()) | metric_names(rule_queries())
    assert used - exported - FROM_PROMETHEUS == set(), "queried but not exported"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert get(base + "/healthz")[0] == 0  # the port is closed after a clean stop


def test_alert_rules_pass_promtool() -> None:
    tool = promtool()
    for args in (
        ["check", "rules", str(RULES)],
        ["test", "rules", str(RULES.with_name("alerts_test.yml"))],
        ["check", "config", str(RULES.with_name("prometheus.yml"))],
    ):
        done = subprocess.run([tool, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
    assert (ROOT / "deploy" / "grafana" / "dashboards" / "gcal-kafka.json").exists()
