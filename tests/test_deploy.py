"""deploy/kubernetes: every manifest valid against the Kubernetes schemas (offline), and in agreement with the
Dockerfile, docker-compose.yml, the app's routes, the CLI's flags, the shipped providers.yaml and the drain."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.cli import _parser
from gateway.settings import Config
from gateway.web.app import _SERVED, Gateway
from tests import kustomize
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
SECRET = DEPLOY / "secret.example.yaml"
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
# The oldest Kubernetes the schemas ship that we support (1.25: the kubelet no longer runs liveness probes on
# a terminating pod), and the newest.
VERSIONS = ("1.25", kubernetes_validate.latest_version())


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """The schemas ship with kubernetes-validate: nothing here may open a connection."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a network connection was attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def base() -> list[dict[str, Any]]:
    return kustomize.build(BASE)


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (gateway,) = pod_spec(docs)["containers"]
    return gateway


def serve_args(docs: list[dict[str, Any]]) -> Any:
    """The container's command line, parsed by the gateway's own CLI: a flag it does not know fails here."""
    gateway = container(docs)
    assert gateway["command"] == ["gateway", "serve"]
    return _parser().parse_args(["serve", *gateway["args"]])


def every_manifest() -> list[tuple[str, dict[str, Any]]]:
    files = [p for p in sorted(DEPLOY.rglob("*.yaml")) if p.name != "kustomization.yaml"]
    docs = [(str(p.relative_to(DEPLOY)), d) for p in files for d in kustomize.load_all(p)]
    return docs + [(f"{o.name} (rendered)", d) for o in OVERLAYS for d in kustomize.build(o)]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(version: str) -> None:
    manifests = every_manifest()
    assert {d["kind"] for _, d in manifests} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    }
    for where, doc in manifests:
        try:
            kubernetes_validate.validate(doc, version, strict=True)  # strict: an unknown field is an error
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert {d["apiVersion"] for _, d in manifests if d["kind"] == "HorizontalPodAutoscaler"} == {"autoscaling/v2"}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("directory", [BASE, *OVERLAYS], ids=lambda p: p.name)
def test_the_python_rendering_is_what_kubectl_kustomize_renders(directory: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=True
    ).stdout

    def by_name(docs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    assert by_name(kustomize.build(directory)) == by_name([d for d in yaml.safe_load_all(out) if d])


def test_the_overlay_sets_namespace_image_and_redis() -> None:
    (production,) = [o for o in OVERLAYS if o.name == "production"]
    docs = kustomize.build(production)
    assert all(d["metadata"].get("namespace") == "llm-gateway" for d in docs if d["kind"] != "Namespace")
    assert container(docs)["image"] == "registry.example.com/llm-fallback-gateway:0.1.0"
    redis_url = one(docs, "ConfigMap", "gateway-env")["data"]["REDIS_URL"]
    assert redis_url.startswith("redis+sentinel://") and redis_url != one(base(), "ConfigMap", "gateway-env")["data"]
    assert one(docs, "ConfigMap", "gateway-env")["data"]["OLLAMA_BASE_URL"]  # the rest of the base's ConfigMap kept


def test_the_probes_ask_routes_the_app_serves(tmp_path: Path) -> None:
    shipped = yaml.safe_load((ROOT / "providers.yaml").read_text(encoding="utf-8"))
    app = Gateway(Config.model_validate({**shipped, "usage": {"path": str(tmp_path / "usage.sqlite3")}}))
    routes = {route.path for route in app.api.routes} | {served.split()[1] for served in _SERVED}
    assert "/health" in routes  # the listing works
    gateway = container(base())
    probes = {kind: gateway[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/health/live"
    assert probes["readinessProbe"]["path"] == "/health/ready"
    for kind, probe in probes.items():
        assert probe["path"] in routes, kind
    assert "/health/live" in DOCKERFILE.split("HEALTHCHECK", 1)[1]
    assert "/health/live" in " ".join(COMPOSE["services"]["gateway"]["healthcheck"]["test"])


def test_every_port_agrees() -> None:
    docs = base()
    gateway = container(docs)
    (port,) = gateway["ports"]
    number = port["containerPort"]
    assert serve_args(docs).port == number and serve_args(docs).host == "0.0.0.0"
    assert re.search(r"^EXPOSE (\d+)$", DOCKERFILE, re.M).group(1) == str(number)
    assert f'--port", "{number}"' in DOCKERFILE  # the image's own CMD
    assert f"127.0.0.1:{number}/health/live" in DOCKERFILE
    assert any(str(p).endswith(f":{number}") for p in COMPOSE["services"]["gateway"]["ports"])

    def resolve(target: int | str) -> int:
        return number if target == port["name"] else target

    (service_port,) = one(docs, "Service")["spec"]["ports"]
    assert resolve(service_port["targetPort"]) == number
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert resolve(gateway[kind]["httpGet"]["port"]) == number, kind


def test_the_secret_covers_every_key_the_providers_read() -> None:
    docs = base()
    mounted = one(docs, "ConfigMap", "gateway-config")["data"]["providers.yaml"]
    assert mounted == (ROOT / "providers.yaml").read_text(encoding="utf-8")  # a copy, kept equal
    mount = next(m for m in container(docs)["volumeMounts"] if m["name"] == "config")
    assert serve_args(docs).config == f"{mount['mountPath']}/providers.yaml"
    secret = one(kustomize.load_all(SECRET), "Secret", "gateway-secrets")
    needed = {p["api_key_env"] for p in yaml.safe_load(mounted)["providers"] if p.get("api_key_env")}
    assert needed | {"GATEWAY_ADMIN_KEY", "ANTHROPIC_API_KEY"} <= set(secret["stringData"])
    assert set(secret["stringData"].values()) == {""}, "a template: never a real key"
    assert all(d["kind"] != "Secret" for d in docs)  # kubectl apply -k must not overwrite the real Secret
    sources = container(docs)["envFrom"]
    assert sources[-1] == {"secretRef": {"name": "gateway-secrets"}}  # last: its REDIS_URL wins
    (config_ref,) = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
    # REDIS_URL is explicit: several replicas must share one Redis to agree on cooldowns and budgets.
    assert one(docs, "ConfigMap", config_ref)["data"]["REDIS_URL"].startswith("redis://")


def test_it_runs_as_the_dockerfiles_user_with_nothing_to_spare() -> None:
    docs = base()
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)[-1]
    uid, gid = (int(part) for part in user.split(":"))
    assert uid != 0 and gid != 0
    pod, gateway = pod_spec(docs), container(docs)
    for context in (pod["securityContext"], gateway["securityContext"]):
        assert (context["runAsUser"], context["runAsGroup"], context["runAsNonRoot"]) == (uid, gid, True)
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    context = gateway["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    workdir = re.findall(r"^WORKDIR (\S+)$", DOCKERFILE, re.M)[-1]
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = {m["mountPath"] for m in gateway["volumeMounts"] if "emptyDir" in volumes[m["name"]]}
    assert writable == {workdir, "/tmp"}  # the SQLite usage file's directory, and temporary files


def test_the_grace_period_outlasts_the_drain() -> None:
    docs = base()
    args = serve_args(docs)
    settle, drain = args.drain_settle_s, args.drain_s
    spec = pod_spec(docs)
    assert spec["terminationGracePeriodSeconds"] > settle + drain
    gateway = container(docs)
    ready, live = gateway["readinessProbe"], gateway["livenessProbe"]
    # A draining replica is seen unready by its own probe within the settle window,
    assert ready["periodSeconds"] * ready["failureThreshold"] <= settle
    # and never restarted by its liveness probe before its drain is over.
    assert live["periodSeconds"] * live["failureThreshold"] > settle + drain
    stop = re.fullmatch(r"(\d+)s", COMPOSE["services"]["gateway"]["stop_grace_period"]).group(1)
    assert int(stop) > settle + drain


def test_the_replicas_are_scaled_spread_and_protected_as_one_set() -> None:
    docs = base()
    deployment = one(docs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"]  # the HPA owns it: an apply must not scale back
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert one(docs, "Service")["spec"]["selector"] == selector
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llm-gateway"}
    assert hpa["minReplicas"] == 3 < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu"  # relative to the request: it must be set
    resources = container(docs)["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
