"""The configuration the deployment mounts loads through the connector's own loader, and the
image's entrypoint runs ``gcal-kafka`` with the image's arguments (``validate`` for ``run``).

Each container's files are laid out under a temporary root (mounted files copied, Secrets the
operator creates stubbed) and container paths in the configuration are rewritten to it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.config import ENV_PREFIX
from connector.config_load import load_settings
from connector.errors import ConfigError
from tests.unit.test_deploy_files import (
    ROOT,
    ContainerView,
    compose_view,
    entrypoint_script,
    image_command,
    k8s_view,
)

COMPOSE_CONNECTORS = ("connector", "connector-emulator", "materializer")


def _config_path(view: ContainerView, command: list[str]) -> Path:
    path = Path(command[command.index("--config") + 1])
    assert path.is_file(), f"{path} is not mounted"
    assert str(path).startswith(str(view.root))
    return path


def _file_env(env: dict[str, str]) -> dict[str, str]:
    """What the entrypoint does with FILE__ variables, for the in-process loader."""
    out = {k: v for k, v in env.items() if not k.startswith("FILE__")}
    for key, path in env.items():
        if key.startswith("FILE__"):
            out[key.removeprefix("FILE__")] = Path(path).read_text().rstrip("\n")
    return out


def _load(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], config: Path) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in _file_env(env).items():
        monkeypatch.setenv(name, value)
    load_settings(config)


@pytest.mark.parametrize("service", COMPOSE_CONNECTORS)
def test_compose_configuration_loads(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, env, command = compose_view(tmp_path, service)
    _load(monkeypatch, env, _config_path(view, command))


def test_kubernetes_configuration_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    view, env, args = k8s_view(tmp_path)
    _load(monkeypatch, env, _config_path(view, args))


def test_the_check_fails_on_a_setting_the_connector_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view, env, command = compose_view(tmp_path, "connector-emulator")
    config = _config_path(view, command)
    config.write_text(config.read_text() + "metrics_port: 9464\n")
    with pytest.raises(ConfigError, match="metrics_port: unknown setting"):
        _load(monkeypatch, env, config)


def _entrypoint(env: dict[str, str], args: list[str]) -> subprocess.CompletedProcess[str]:
    """The image's ENTRYPOINT script with this venv's gcal-kafka first on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    clean = {k: v for k, v in os.environ.items() if not k.startswith((ENV_PREFIX, "FILE__"))}
    run_env = {**clean, **env, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["sh", str(entrypoint_script()), *args],
        env=run_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def _as_validate(command: list[str]) -> list[str]:
    """``run --config X`` (or ``materialize --config X --to ...``) as ``validate --config X``."""
    config = command[command.index("--config") + 1]
    return ["validate", "--config", config]


def test_image_command_is_run_with_the_mounted_config() -> None:
    entrypoint, command = image_command()
    assert entrypoint == ["/usr/local/bin/docker-entrypoint.sh"]
    assert command == ["run", "--config", "/etc/gcal-kafka/config.yaml"]


@pytest.mark.parametrize("service", ["connector-emulator", "connector"])
def test_entrypoint_validates_the_compose_configuration(service: str, tmp_path: Path) -> None:
    _, env, command = compose_view(tmp_path, service)
    assert command[0] == "run"
    result = _entrypoint(env, _as_validate(command))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_entrypoint_reads_secrets_from_files_in_kubernetes(tmp_path: Path) -> None:
    _, env, args = k8s_view(tmp_path)
    assert args[0] == "run"
    assert any(k.startswith("FILE__") for k in env)
    result = _entrypoint(env, _as_validate(args))
    assert result.returncode == 0, result.stderr
    assert "'sasl.password': '***'" in result.stdout  # merged from the mounted Secret


def test_entrypoint_without_the_webhook_secret_file_fails(tmp_path: Path) -> None:
    _, env, args = k8s_view(tmp_path)
    Path(env["FILE__GCAL_KAFKA_WEBHOOK__SECRET"]).unlink()
    result = _entrypoint(env, _as_validate(args))
    assert result.returncode == 2
    assert "FILE__GCAL_KAFKA_WEBHOOK__SECRET: cannot read" in result.stderr
