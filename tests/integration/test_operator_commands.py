"""Operator commands against a running connector: resync, checkpoints list/show, validate."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from connector.cli import main
from connector.config import Settings
from connector.core.records import Op, ResetReason
from connector.emulator.server import EmulatorServer
from tests.integration.engine import (
    RunningConnector,
    credentials_file,
    dataset,
    event,
    observed,
    resets_done,
    settings_for,
    wait_for,
)

pytestmark = pytest.mark.integration
ALICE = "alice@example.com"


def config_file(settings: Settings, tmp_path: Path) -> Path:
    raw = settings.model_dump(mode="json", exclude_none=True)
    raw["accounts"][0]["credentials"]["path"] = str(credentials_file(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_resync_and_checkpoints_commands(
    kafka_bootstrap: str,
    topic_prefix: str,
    emulator: EmulatorServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulator.control.seed(dataset({ALICE: [event("op111", "One"), event("op222", "Two")]}))
    settings = settings_for(
        kafka_bootstrap, topic_prefix, emulator, tmp_path, sync={"poll_interval_seconds": 3600}
    )
    config = str(config_file(settings, tmp_path))
    stream = f"alice/{ALICE}"
    with RunningConnector(settings):
        wait_for(resets_done(settings, 1), what="the first full sync")
        assert main(["resync", "--config", config, "--stream", stream]) == 0
        wait_for(resets_done(settings, 2), what="the operator resync")
    begins = [r.change for r in observed(settings) if r.change and r.change.op is Op.RESET_BEGIN]
    assert [(b.generation, b.reason) for b in begins] == [
        (1, ResetReason.INITIAL),
        (2, ResetReason.OPERATOR),
    ]
    assert begins[1].trigger.value == "OPERATOR"
    capsys.readouterr()

    assert main(["checkpoints", "list", "--config", config]) == 0
    listing = capsys.readouterr().out
    assert stream in listing and " 2 " in listing and "INCREMENTAL" in listing
    assert main(["checkpoints", "show", "--config", config, "--stream", stream]) == 0
    shown = capsys.readouterr().out
    assert '"generation": 2' in shown and '"phase": "INCREMENTAL"' in shown
    assert main(["checkpoints", "show", "--config", config, "--stream", "alice/nope"]) == 1

    # The request was consumed: a restart does not resync again.
    with RunningConnector(settings) as running:
        runtime = running.service.runtimes[stream]
        wait_for(lambda: runtime.state == "ok", what="a pass after the restart")
        time.sleep(2)  # several loop turns, each polling the signals topic
    again = [r.change for r in observed(settings) if r.change and r.change.op is Op.RESET_BEGIN]
    assert len(again) == 2


def test_checkpoint_topic_that_is_not_compacted_is_refused(
    kafka_bootstrap: str,
    topic_prefix: str,
    emulator: EmulatorServer,
    tmp_path: Path,
) -> None:
    from tests.kafka_helpers import create_topics

    create_topics(
        kafka_bootstrap, [f"{topic_prefix}gcal.checkpoints"], config={"cleanup.policy": "delete"}
    )
    settings = settings_for(kafka_bootstrap, topic_prefix, emulator, tmp_path)
    config = str(config_file(settings, tmp_path))
    assert main(["run", "--config", config]) == 2
