"""Load the settings and report every problem at once, without leaking secrets."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connector.config import ENV_PREFIX, AccountSettings, Settings
from connector.errors import ConfigError

_SECRET_WORDS = ("secret", "password", "token", "key", "credential", "sasl", "auth")


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def redact_kafka_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a librdkafka dict that is safe to log."""
    return {k: ("***" if is_secret_name(k) else v) for k, v in conf.items()}


def load_settings(path: str | Path | None) -> Settings:
    """Read ``path`` (YAML) and the ``GCAL_KAFKA_*`` environment into a validated Settings.

    Raises ConfigError listing every problem: YAML syntax, unknown keys, bad values, and the
    checks across fields (duplicate accounts, webhook without secret, missing files).
    """
    source = str(path) if path is not None else None
    data = _read_yaml(Path(path)) if path is not None else {}
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(list(_format_validation(exc)), source) from None
    problems = list(_unknown_environment(os.environ))
    problems.extend(check_settings(settings))
    if problems:
        raise ConfigError(problems, source)
    return settings


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [f"cannot read the configuration file: {exc.strerror}"], str(path)
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"YAML syntax error{where}: {problem}"], str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(["the top level must be a mapping of settings"], str(path))
    return data


def _format_validation(exc: ValidationError) -> Iterable[str]:
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            yield f"{loc}: unknown setting"
            continue
        shown = error.get("input")
        secret = any(is_secret_name(str(part)) for part in error["loc"])
        if secret or isinstance(shown, dict | list | tuple) or shown is None:
            yield f"{loc}: {message}"
        else:
            yield f"{loc}: {message} (got {shown!r})"


def _unknown_environment(environ: Mapping[str, str]) -> Iterable[str]:
    """``GCAL_KAFKA_*`` variables that name no setting (a typo would otherwise be ignored).

    ``GCAL_KAFKA_TEST_*`` belongs to the test suite and is left alone.
    """
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name.startswith(f"{ENV_PREFIX}TEST_"):
            continue
        top = name[len(ENV_PREFIX) :].split("__", 1)[0].lower()
        if top not in Settings.model_fields:
            yield f"environment variable {name}: unknown setting"


def check_settings(settings: Settings) -> Iterable[str]:
    """Checks across fields, and that referenced files can be read. Pure but for file reads."""
    names = [a.name for a in settings.accounts]
    for name in sorted({n for n in names if names.count(n) > 1}):
        yield f"accounts: the name {name!r} is used more than once"
    for index, account in enumerate(settings.accounts):
        yield from _check_account(index, account)
    topics = settings.topics
    all_topics = [topics.events, topics.checkpoints, topics.dead_letter, topics.signals]
    if len(set(all_topics)) != len(all_topics):
        yield "topics: events, checkpoints, dead_letter and signals must be different topics"
    if topics.checkpoints_config.get("cleanup.policy", "compact") != "compact":
        yield "topics.checkpoints_config: cleanup.policy must be compact"
    if "bootstrap.servers" not in settings.kafka:
        yield "kafka: bootstrap.servers is required"
    for key in ("transactional.id", "enable.idempotence", "isolation.level"):
        if key in settings.kafka:
            yield f"kafka.{key}: set by the connector itself; remove it"
    webhook = settings.webhook
    if webhook.enabled:
        if not webhook.public_url:
            yield "webhook.public_url: required when webhook.enabled is true"
        elif not _is_acceptable_webhook_url(webhook.public_url):
            yield "webhook.public_url: must be https (http only on a loopback address)"
        if webhook.secret is None or len(webhook.secret.get_secret_value()) < 16:
            yield "webhook.secret: required when webhook.enabled is true (16 characters or more)"
        if webhook.renew_before_seconds >= webhook.channel_ttl_seconds:
            yield "webhook.renew_before_seconds: must be shorter than channel_ttl_seconds"


def _check_account(index: int, account: AccountSettings) -> Iterable[str]:
    where = f"accounts.{index} ({account.name})"
    creds = account.credentials
    if creds.kind == "service_account" and not creds.subjects:
        yield f"{where}.credentials.subjects: a service account needs users to impersonate"
    if creds.kind == "authorized_user" and creds.subjects:
        yield f"{where}.credentials.subjects: only for service accounts"
    if not creds.path.is_file():
        yield f"{where}.credentials.path: no readable file at {creds.path}"
    if account.calendars != "all" and account.include is not None:
        yield f"{where}.include: only applies with calendars: all"
    if account.calendars != "all" and not account.calendars:
        yield f"{where}.calendars: list at least one calendar id, or use all"


def _is_acceptable_webhook_url(url: str) -> bool:
    if url.startswith("https://"):
        return True
    loopback = ("http://127.", "http://localhost", "http://[::1]")
    return url.startswith(loopback)
