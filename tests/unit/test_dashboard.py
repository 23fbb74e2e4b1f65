"""The Grafana dashboard and the Prometheus rules refer only to metrics the connector exports.

Here against a ``PrometheusObserver`` whose callbacks were all exercised (no sockets); the
integration test ``tests/integration/test_monitoring.py`` checks the same names against the
real connector's /metrics and runs promtool.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest

from connector.adapters.metrics import PrometheusObserver
from connector.core.records import Op, ResetReason

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "gcal-kafka.json"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
# Series Prometheus makes itself for every scrape target.
FROM_PROMETHEUS = {"up"}
_NAME = re.compile(r"\bgcal_kafka_\w+|\bup\b(?=\s*[{)\[]|\s*$)")


def dashboard_queries() -> list[str]:
    dash: dict[str, Any] = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in dash["templating"]["list"] if "definition" in v]
    return queries


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def metric_names(queries: list[str]) -> set[str]:
    return {m for q in queries for m in _NAME.findall(q)}


def exported_names(text: str) -> set[str]:
    """Sample names of an exposition (``_total``, ``_bucket``... included)."""
    return {
        re.split(r"[{\s]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def exercised() -> PrometheusObserver:
    obs = PrometheusObserver(stream_labels=True)
    obs.streams_known(["alice/cal"], {"alice/cal": "alice"})
    obs.pass_finished("alice/cal", "FULL", "STARTUP", "ok", 0.2)
    obs.published("alice/cal", {Op.CREATED: 3}, dead_letters=1)
    obs.reset("alice/cal", ResetReason.TOKEN_INVALIDATED)
    obs.checkpoint_committed("alice/cal", 1_700_000_000_000)
    obs.google_request("calendar.events.list", 200, 0.05)
    obs.transaction(3, 0.01, ok=False)
    obs.backoff("alice", "rateLimitExceeded", 2.0)
    obs.channel_state("alice/cal", "open", 1_800_000_000_000)
    obs.push_notification("exists")
    obs.librdkafka_stats('{"msg_cnt": 4}')
    return obs


def test_every_dashboard_and_rule_metric_is_exported() -> None:
    exported = exported_names(generate_latest(exercised().registry).decode())
    used = metric_names(dashboard_queries()) | metric_names(rule_queries())
    assert len(used) >= 20
    assert used - exported - FROM_PROMETHEUS == set()


def test_the_name_check_catches_a_misspelt_metric() -> None:
    assert metric_names(['rate(gcal_kafka_passes{job="x"}[5m])']) == {"gcal_kafka_passes"}
    assert metric_names(["sum(up) + gcal_kafka_up>0", 'up{job="g"}']) == {"up", "gcal_kafka_up"}
    exported = exported_names(generate_latest(exercised().registry).decode())
    assert "gcal_kafka_passes" not in exported and "gcal_kafka_passes_total" in exported


def test_dashboard_panels_are_well_formed() -> None:
    dash = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_alert_of_the_issue_is_there() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    for alert in (
        "GcalKafkaStreamStale",
        "GcalKafkaRepeatedResets",
        "GcalKafkaWatchChannelsFailed",
        "GcalKafkaAccountInError",
        "GcalKafkaConnectorDown",
        "GcalKafkaConnectorAbsent",
        "GcalKafkaDeadLetters",
    ):
        assert alert in rules
        assert rules[alert]["labels"]["severity"] in {"warning", "critical"}
    assert "last_successful_sync_timestamp_seconds" in rules["GcalKafkaStreamStale"]["expr"]


def test_channel_states_and_next_expiry() -> None:
    obs = PrometheusObserver()
    obs.channel_state("a", "open", 2_000_000)
    obs.channel_state("b", "open", 1_000_000)
    obs.channel_state("c", "failed", None)
    assert obs.channels.labels("open")._value.get() == 2
    assert obs.channels.labels("failed")._value.get() == 1
    assert obs.next_expiry._value.get() == 1000.0
    obs.channel_state("b", "closed", None)
    assert obs.next_expiry._value.get() == 2000.0
    obs.push_notification("sync")
    obs.push_notification("something-new")
    assert obs.notifications.labels("other")._value.get() == 1
