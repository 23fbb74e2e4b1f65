"""deploy/: the Compose file and the Kubernetes manifests against their published schemas, and
every setting, variable and command they use against the connector itself.

Validators: check-jsonschema's vendored Compose Specification schema, kubernetes-validate's
bundled Kubernetes schemas (offline), hadolint for the Dockerfile, promtool (Debian
``prometheus``) for the Prometheus configuration. The Prometheus Operator's CRDs
(ServiceMonitor, PrometheusRule) have no offline schema package: their Kubernetes parts
(ObjectMeta, LabelSelector) are validated against the Kubernetes definitions and the rest is
checked against what it points at (the Service's labels and ports, the rule file).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dockerfile
import jsonschema
import kubernetes_validate
import pytest
import yaml

from connector import cli
from connector.config import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
KUBERNETES_VERSION = "1.33"
# Container paths the deployment mounts files under; tests lay them out in a temporary root.
CONTAINER_ROOTS = ("/etc/gcal-kafka", "/run/secrets")
# The Secrets docs/deployment.md tells the operator to create: name -> file keys.
K8S_SECRETS = {
    "gcal-kafka-google": {"service-account.json": '{"type": "service_account"}'},
    "gcal-kafka-webhook": {"secret": "0123456789abcdef0123456789abcdef"},
    "gcal-kafka-kafka": {"client.json": '{"sasl.password": "not-a-real-one"}'},
}
CHECK_COMPOSE = (
    sys.executable,
    "-m",
    "check_jsonschema",
    "--builtin-schema",
    "vendor.compose-spec",
)
CONNECTOR_SERVICES = ("connector", "connector-emulator", "materializer", "emulator")


# --- reading the deployment files -------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def manifests() -> dict[str, dict[str, Any]]:
    """Kind -> document, from every file the kustomization lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            docs[doc["kind"]] = doc
    return docs


def docker_instructions() -> list[Any]:
    return list(dockerfile.parse_file(str(DEPLOY / "Dockerfile")))


def runtime_stage() -> list[Any]:
    commands = docker_instructions()
    last_from = max(i for i, c in enumerate(commands) if c.cmd == "FROM")
    return commands[last_from:]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for command in runtime_stage():
        if command.cmd == "ENV":
            values = command.value
            env.update(zip(values[::2], values[1::2], strict=True))
    return {k: v for k, v in env.items() if k != "PATH"}


def image_command() -> tuple[list[str], list[str]]:
    """(ENTRYPOINT, CMD) of the final stage, both in exec form."""
    found: dict[str, list[str]] = {}
    for command in runtime_stage():
        if command.cmd in ("ENTRYPOINT", "CMD"):
            assert command.json, f"{command.cmd} must be in exec (JSON) form"
            found[command.cmd] = list(command.value)
    return found["ENTRYPOINT"], found["CMD"]


def entrypoint_script() -> Path:
    """The repository file the image's ENTRYPOINT is a copy of."""
    entrypoint, _ = image_command()
    for command in runtime_stage():
        if command.cmd == "COPY" and command.value[-1] == entrypoint[0]:
            return ROOT / command.value[0]
    raise AssertionError(f"no COPY puts {entrypoint[0]} into the image")


def service_env(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


# --- a container's files, laid out under a temporary root --------------------------------


class ContainerView:
    """Files as a container sees them, under ``root``; container paths are rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def put(self, container_path: str, source: Path | None = None, text: str = "") -> None:
        target = self.path(container_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source is not None and source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        elif source is not None:
            shutil.copyfile(source, target)
        else:
            target.write_text(text)

    def rewrite(self, value: str) -> str:
        pattern = "|".join(re.escape(r) for r in CONTAINER_ROOTS)
        return re.sub(rf"(?<![\w.])({pattern})", lambda m: str(self.root) + m.group(1), value)

    def rewrite_files(self) -> None:
        for file in self.root.rglob("*.yaml"):
            file.write_text(self.rewrite(file.read_text()))


def compose_view(tmp_path: Path, name: str) -> tuple[ContainerView, dict[str, str], list[str]]:
    """(files, environment, command) of a compose service; missing secret files get a stub."""
    spec = compose()
    service = spec["services"][name]
    view = ContainerView(tmp_path)
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            view.put(target, DEPLOY / source)
    for entry in service.get("secrets", []):
        secret = {"source": entry} if isinstance(entry, str) else entry
        source = DEPLOY / spec["secrets"][secret["source"]]["file"]
        target = secret.get("target", f"/run/secrets/{secret['source']}")
        view.put(target, source if source.exists() else None, text="{}")
    view.rewrite_files()
    env = {**image_env(), **service_env(service)}
    env = {k: view.rewrite(v) for k, v in env.items()}
    command = service.get("command") or image_command()[1]
    return view, env, [view.rewrite(a) for a in command]


def k8s_view(tmp_path: Path) -> tuple[ContainerView, dict[str, str], list[str]]:
    docs = manifests()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    view = ContainerView(tmp_path)
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            data = docs["ConfigMap"]["data"]
            assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
            view.put(mount["mountPath"], text=data[mount["subPath"]])
        elif "secret" in volume:
            for key, text in K8S_SECRETS[volume["secret"]["secretName"]].items():
                view.put(f"{mount['mountPath']}/{key}", text=text)
    view.rewrite_files()
    env = {**image_env(), **{e["name"]: e["value"] for e in container["env"]}}
    env = {k: view.rewrite(v) for k, v in env.items()}
    return view, env, [view.rewrite(a) for a in container["args"]]


def setting_exists(env_name: str) -> bool:
    """Whether ``GCAL_KAFKA_A__B`` names a field of Settings (any key below a dict field)."""
    parts = env_name[len(ENV_PREFIX) :].lower().split("__")
    model: Any = Settings
    for part in parts:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return True  # below a dict field (kafka, *_config): any key is passed through
        if part not in fields:
            return False
        annotation = fields[part].annotation
        model = next(
            (a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)),
            annotation,
        )
    return True


def connector_env_names() -> Iterator[tuple[str, str]]:
    """(where, name) of every GCAL_KAFKA_* variable the deployment sets, FILE__ ones included."""
    sources: list[tuple[str, Mapping[str, str]]] = [("Dockerfile", image_env())]
    for name, service in compose()["services"].items():
        sources.append((f"compose {name}", service_env(service)))
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    sources.append(("Deployment", {e["name"]: e.get("value", "") for e in container["env"]}))
    for where, env in sources:
        for key in env:
            name = key.removeprefix("FILE__")
            if name.startswith(ENV_PREFIX):
                yield where, name


# --- schemas ------------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification() -> None:
    result = subprocess.run(
        [*CHECK_COMPOSE, str(DEPLOY / "compose.yaml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["kafka"]["restrat"] = "always"
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    result = subprocess.run(
        [*CHECK_COMPOSE, str(tmp_path / "compose.yaml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "restrat" in result.stdout


@pytest.mark.parametrize("kind", ["ConfigMap", "Deployment", "Service"])
def test_kubernetes_manifest_validates_strictly(kind: str) -> None:
    kubernetes_validate.validate(manifests()[kind], KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_validator_rejects_a_broken_deployment() -> None:
    deployment = manifests()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@functools.cache
def _k8s_definitions() -> dict[str, Any]:
    package = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    schema_dir = f"v{KUBERNETES_VERSION}.0-local-strict"
    definitions: dict[str, Any] = json.loads(
        (package / schema_dir / "_definitions.json").read_text()
    )
    return definitions


def _k8s_definition(name: str, value: Any) -> None:
    """Validate ``value`` against one definition of the bundled Kubernetes schemas."""
    schema = {**_k8s_definitions(), "$ref": f"#/$defs/{name}"}
    jsonschema.Draft202012Validator(schema).validate(value)


def test_operator_resources_use_valid_kubernetes_parts_and_point_at_the_service() -> None:
    docs = manifests()
    service = docs["Service"]
    monitor = docs["ServiceMonitor"]
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert docs[kind]["apiVersion"] == "monitoring.coreos.com/v1"
        _k8s_definition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", docs[kind]["metadata"])
    selector = monitor["spec"]["selector"]
    _k8s_definition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", selector)
    assert selector["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
    assert set(monitor["spec"]) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}


def test_prometheus_rule_carries_the_alert_rules_file() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    assert manifests()["PrometheusRule"]["spec"] == {"groups": rules["groups"]}, (
        "deploy/kubernetes/prometheusrule.yaml must carry deploy/prometheus/alerts.yml"
    )


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_service_selects_the_pods_and_probes_use_the_health_endpoints() -> None:
    docs = manifests()
    deployment, service = docs["Deployment"], docs["Service"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = Settings()
    assert ports == {"metrics": settings.metrics.port, "webhook": settings.webhook.port}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])


# --- the Dockerfile -------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_is_multi_stage_non_root_with_a_health_check() -> None:
    commands = docker_instructions()
    assert sum(c.cmd == "FROM" for c in commands) >= 2
    stage = runtime_stage()
    users = [c.value[0] for c in stage if c.cmd == "USER"]
    assert users and not users[-1].startswith(("0", "root"))
    (check,) = [c for c in stage if c.cmd == "HEALTHCHECK"]
    assert f"{Settings().metrics.port}/healthz" in " ".join(check.value)
    copies = [" ".join(c.value) for c in stage if c.cmd == "COPY"]
    assert not any(re.search(r"credential|secret|\.json|\.pem|\.key", c) for c in copies)
    assert image_env()["GCAL_KAFKA_METRICS__HOST"] == "0.0.0.0"  # reachable from outside


# --- settings, variables and commands ----------------------------------------------------


def test_every_gcal_kafka_variable_names_a_setting() -> None:
    names = list(connector_env_names())
    assert len(names) >= 5
    unknown = [(where, name) for where, name in names if not setting_exists(name)]
    assert unknown == []


def test_setting_exists_rejects_what_the_settings_lack() -> None:
    assert setting_exists("GCAL_KAFKA_METRICS__PORT")
    assert setting_exists("GCAL_KAFKA_KAFKA__SASL.PASSWORD")
    assert not setting_exists("GCAL_KAFKA_METRICS__PROT")
    assert not setting_exists("GCAL_KAFKA_WEBHOOK__SECRET_FILE")


@pytest.mark.parametrize("service", CONNECTOR_SERVICES)
def test_compose_commands_parse_with_the_connector_cli(service: str) -> None:
    command = compose()["services"][service].get("command") or image_command()[1]
    cli.build_parser().parse_args(command)


def test_kubernetes_args_parse_with_the_connector_cli() -> None:
    (container,) = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"]
    cli.build_parser().parse_args(container["args"])


def test_prometheus_config_scrapes_the_connector_and_loads_the_rules(tmp_path: Path) -> None:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    prometheus = compose()["services"]["prometheus"]
    mounts = dict(v.split(":")[:2][::-1] for v in prometheus["volumes"] if v.startswith("."))
    for rule_file in config["rule_files"]:
        assert (DEPLOY / mounts[rule_file]).is_file()
    (job,) = config["scrape_configs"]
    aliases = compose()["services"]["connector"]["networks"]["default"]["aliases"]
    port = Settings().metrics.port
    assert job["static_configs"][0]["targets"] == [f"{aliases[0]}:{port}"]
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("promtool missing in CI (.ci/setup installs it)", pytrace=False)
        pytest.skip("promtool (Debian package prometheus) is not installed")
    for rule_file in config["rule_files"]:
        target = tmp_path / Path(rule_file).name
        shutil.copyfile(DEPLOY / mounts[rule_file], target)
    config["rule_files"] = [str(tmp_path / Path(r).name) for r in config["rule_files"]]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboards() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {
        target: DEPLOY / source
        for source, target in (v.split(":")[:2] for v in grafana["volumes"])
        if source.startswith(".")
    }
    providers = yaml.safe_load(
        (DEPLOY / "compose" / "grafana" / "dashboards" / "gcal-kafka.yaml").read_text()
    )["providers"]
    for provider in providers:
        source = mounts[provider["options"]["path"]]
        assert list(source.glob("*.json")), f"no dashboard in {source}"
        for dashboard in source.glob("*.json"):
            json.loads(dashboard.read_text())
