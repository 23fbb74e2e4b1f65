"""The configuration: every problem at once, env overrides, no secrets in errors, docs in sync."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from connector.config_docs import render
from connector.config_load import load_settings, redact_kafka_conf
from connector.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "alice.json"
    path.write_text('{"refresh_token": "rt-SECRET-VALUE", "client_id": "c", "client_secret": "s"}')
    return path


def test_minimal_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    settings = load_settings(ROOT / "examples" / "minimal.yaml")
    assert settings.accounts[0].name == "alice"
    assert settings.accounts[0].calendars == ("primary",)
    assert settings.topics.events == "gcal.events"
    assert settings.delivery.mode == "exactly_once"


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
workers: 0
bogus_key: 1
metrics: {port: 70000, colour: red}
delivery: {mode: sometimes}
sync: {event_types: [meetings]}
accounts:
  - name: "has space"
    credentials: {kind: authorized_user, path: /nonexistent.json}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = "\n".join(info.value.problems)
    for expected in (
        "workers",
        "bogus_key: unknown setting",
        "metrics.port",
        "metrics.colour: unknown setting",
        "delivery.mode",
        "sync.event_types",
        "accounts.0.name",
    ):
        assert expected in problems, problems
    assert len(info.value.problems) >= 7
    assert info.value.exit_code == 2


def test_cross_field_checks(tmp_path: Path, creds: Path) -> None:
    path = write(
        tmp_path,
        f"""
kafka: {{bootstrap.servers: "x:1", transactional.id: mine}}
topics: {{events: same, checkpoints: same}}
webhook: {{enabled: true, public_url: "http://example.com/hook", secret: short}}
accounts:
  - {{name: a, credentials: {{kind: service_account, path: {creds}}}}}
  - {{name: a, credentials: {{kind: authorized_user, path: {tmp_path}/missing.json}}}}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = "\n".join(info.value.problems)
    assert "kafka.transactional.id" in text
    assert "must be different topics" in text
    assert "webhook.public_url: must be https" in text
    assert "webhook.secret" in text
    assert "'a' is used more than once" in text
    assert "subjects: a service account needs users" in text
    assert "missing.json" in text


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
webhook: {enabled: true, public_url: "https://h/x", secret: 12345}
schema_registry: {basic_auth_user_info: ["user:hunter2-SECRET"]}
""",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "hunter2" not in str(info.value)
    assert redact_kafka_conf({"sasl.password": "p", "bootstrap.servers": "b"}) == {
        "sasl.password": "***",
        "bootstrap.servers": "b",
    }


def test_environment_overrides_the_file(
    tmp_path: Path, creds: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "metrics: {port: 9000, host: 0.0.0.0}\nworkers: 3\n")
    monkeypatch.setenv("GCAL_KAFKA_METRICS__PORT", "9100")
    monkeypatch.setenv("GCAL_KAFKA_KAFKA", '{"bootstrap.servers": "broker:9093"}')
    settings = load_settings(path)
    assert settings.metrics.port == 9100
    assert settings.metrics.host == "0.0.0.0"  # deep merge keeps the file's other keys
    assert settings.workers == 3
    assert settings.kafka == {"bootstrap.servers": "broker:9093"}


def test_unknown_environment_variables_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCAL_KAFKA_WORKRES", "3")
    monkeypatch.setenv("GCAL_KAFKA_TEST_BOOTSTRAP", "ignored:1")  # the test suite's own
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, "workers: 2\n"))
    assert info.value.problems == ["environment variable GCAL_KAFKA_WORKRES: unknown setting"]


def test_account_sync_overrides_only_what_it_sets(tmp_path: Path, creds: Path) -> None:
    path = write(
        tmp_path,
        f"""
sync: {{single_events: true, poll_interval_seconds: 60}}
accounts:
  - name: a
    credentials: {{kind: authorized_user, path: {creds}}}
    sync: {{poll_interval_seconds: 5}}
""",
    )
    settings = load_settings(path)
    options = settings.sync_options_for(settings.accounts[0])
    assert options.single_events is True
    assert options.poll_interval_seconds == 5


def test_yaml_syntax_error_is_reported_with_position(tmp_path: Path) -> None:
    path = write(tmp_path, "kafka: {bootstrap.servers: [\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "YAML syntax error at line" in info.value.problems[0]


def test_configuration_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), (
        "docs/configuration.md is stale: run `python -m connector.config_docs > "
        "docs/configuration.md`"
    )


def test_validate_command_exits_2_and_lists_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "workers: -1\nnope: 1\n")
    result = subprocess.run(
        [sys.executable, "-m", "connector.cli", "validate", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2
    assert "2 configuration problem(s)" in result.stderr
    assert "workers" in result.stderr and "nope: unknown setting" in result.stderr
