"""docs/deployment.md agrees with the deployment files and the connector's real metrics."""

from __future__ import annotations

import re

from connector.adapters.metrics import PrometheusObserver
from connector.config import Settings
from tests.unit.test_deploy_files import K8S_SECRETS, ROOT, manifests

GUIDE = (ROOT / "docs" / "deployment.md").read_text()


def _exported_names() -> set[str]:
    names: set[str] = set()
    for family in PrometheusObserver().registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_every_metric_the_guide_names_is_exported() -> None:
    named = set(re.findall(r"\bgcal_kafka_[a-z_]+\b", GUIDE))
    assert len(named) >= 10
    assert named - _exported_names() == set()


def test_guide_creates_the_secrets_the_deployment_mounts() -> None:
    pod = manifests()["Deployment"]["spec"]["template"]["spec"]
    mounted = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert mounted == set(K8S_SECRETS)
    for name, files in K8S_SECRETS.items():
        for key in files:
            assert f"kubectl create secret generic {name} --from-file={key}=" in GUIDE


def test_guide_names_the_transactional_id_and_the_consumer_groups() -> None:
    name = Settings().name
    assert f"TransactionalId `{name}` (= `name`)" in GUIDE
    assert f"Group `{name}-signals` (= `<name>-signals`)" in GUIDE
    # Every random consumer group the code makes (``"group.id": f"<prefix>{uuid...}"``).
    prefixes = set()
    for source in (ROOT / "connector").rglob("*.py"):
        prefixes.update(re.findall(r'f"(gcal-kafka-[a-z-]+)\{uuid', source.read_text()))
    assert len(prefixes) >= 2
    for prefix in prefixes:
        assert f"group prefix `{prefix}`" in GUIDE.lower(), prefix
