"""The Kubernetes manifests of deploy/k8s, checked offline: every resource against Kubernetes'
own schemas (kubernetes-validate, strict: an unknown field fails), the kustomization listing
every manifest and the Grafana and Prometheus files compose uses too, and what the
schemas cannot see: references between resources (Services to pods, Secrets, ConfigMaps,
volumes, autoscaler targets, ingress backends), resources, probes and pod security on every
container. No cluster and no kubectl are needed."""

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from opchain.api.app import create_app
from opchain.settings import Settings
from tests.apiserver import running

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES = "1.30"  # the oldest release the manifests are for; kubernetes-validate bundles it
OPCHAIN_IMAGE = "ghcr.io/opchain/opchain"
WORKLOADS = {"Deployment", "StatefulSet", "Pod", "Job"}
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti)?$")
USER_MADE_SECRETS = K8S / "secret.example.yaml"  # secrets the user creates (not applied)
# kustomization.yaml sits in deploy/ (kustomize reads no file outside its own directory), so
# the ConfigMaps are generated from the very files compose mounts.
KUSTOMIZATION = ROOT / "deploy" / "kustomization.yaml"
GRAFANA = ROOT / "deploy" / "grafana"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "opchain.yml"  # the file Prometheus loads
METRICS_PORT_NAME = "metrics"  # the port of a collector's or worker's own /metrics


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def kustomization() -> dict[str, Any]:
    found: dict[str, Any] = yaml.safe_load(KUSTOMIZATION.read_text())
    return found


def resources(examples: bool = False) -> list[dict[str, Any]]:
    """Every resource applied (and the examples' with ``examples``)."""
    chosen = [p for p in manifests() if examples or not p.name.endswith(".example.yaml")]
    return [doc for path in chosen for doc in load(path)]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]
    if workload["kind"] == "Pod":
        return spec
    found: dict[str, Any] = spec["template"]["spec"]
    return found


def workloads(examples: bool = True) -> list[dict[str, Any]]:
    return [doc for doc in resources(examples) if doc["kind"] in WORKLOADS]


def containers(examples: bool = True) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload in workloads(examples):
        spec = pod_spec(workload)
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield workload, container


def where(workload: dict[str, Any], container: dict[str, Any] | None = None) -> str:
    named = f"{workload['kind']} {workload['metadata']['name']}"
    return named if container is None else f"{named}, container {container['name']}"


def generated(kind: str) -> set[str]:
    key = {"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"}[kind]
    return {entry["name"] for entry in kustomization().get(key, [])}


def named(kind: str, examples: bool = False) -> set[str]:
    return {doc["metadata"]["name"] for doc in resources(examples) if doc["kind"] == kind}


def test_the_manifests_exist() -> None:
    kinds = {doc["kind"] for doc in resources()}
    assert {"Namespace", "ConfigMap", "PersistentVolumeClaim", "StatefulSet", "Deployment",
            "Service", "HorizontalPodAutoscaler", "Ingress", "NetworkPolicy"} <= kinds  # fmt: skip


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.name)
def test_every_resource_passes_kubernetes_strict_schema(path: Path) -> None:
    """kubernetes-validate --strict, in process: an unknown kind (no schema) fails too."""
    for doc in load(path):
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_kubernetes_validate_command_passes_every_manifest() -> None:
    """The same check as a user runs it, warnings included (an unknown kind is only one)."""
    command = Path(sys.executable).with_name("kubernetes-validate")
    assert command.is_file(), f"{command} is missing: pip install -e '.[test]'"
    files = [str(p) for p in manifests()]
    done = subprocess.run([str(command), "--strict", "-k", KUBERNETES, "--quiet", *files],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_strict_schema_catches_a_typo() -> None:
    """The check above can fail: a misspelt field of a container is refused."""
    api = next(doc for doc in resources() if doc["kind"] == "Deployment")
    pod_spec(api)["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError, match="imagePullPolicyy"):
        kubernetes_validate.validate(api, KUBERNETES, strict=True)


def test_every_quantity_is_one_kubernetes_reads() -> None:
    """The schemas take any string as a quantity (``1Gx`` passes): checked here."""
    bad = []
    for workload, container in containers():
        for part in ("requests", "limits"):
            for name, value in container.get("resources", {}).get(part, {}).items():
                if not QUANTITY.match(str(value)):
                    bad.append(f"{where(workload, container)}: {part}.{name} = {value!r}")
    for doc in resources(examples=True):
        templates = doc.get("spec", {}).get("volumeClaimTemplates", [])
        claims = [t["spec"] for t in templates]
        if doc["kind"] == "PersistentVolumeClaim":
            claims.append(doc["spec"])
        for claim in claims:
            size = claim["resources"]["requests"]["storage"]
            if not QUANTITY.match(str(size)):
                bad.append(f"{doc['kind']} {doc['metadata']['name']}: storage = {size!r}")
    assert bad == []


def test_the_kustomization_lists_every_manifest_and_only_them() -> None:
    listed = kustomization()["resources"]
    assert len(listed) == len(set(listed)), "a resource listed twice"
    applied = {p for p in manifests() if not p.name.endswith(".example.yaml")}
    assert {KUSTOMIZATION.parent / name for name in listed} == applied
    assert {p.name for p in manifests()} - {p.name for p in applied} == {
        "secret.example.yaml",
        "login.example.yaml",
    }


def test_the_configmaps_are_made_of_deploys_own_files() -> None:
    """Grafana's provisioning and dashboards and the alert rules: every one of them, from the
    files compose mounts (no copy to drift); and every file of deploy/k8s is a manifest or the
    cluster's scrape config."""
    sources = [f for entry in kustomization()["configMapGenerator"] for f in entry["files"]]
    assert len(sources) == len(set(sources))
    paths = {KUSTOMIZATION.parent / source.split("=")[-1] for source in sources}
    assert all(path.is_file() for path in paths), sorted(p for p in paths if not p.is_file())
    grafana = {p for p in GRAFANA.rglob("*") if p.is_file() and p.suffix in (".json", ".yaml")}
    assert paths == grafana | {RULES, K8S / "prometheus.yml"}
    assert {p for p in K8S.rglob("*") if p.is_file()} == {*manifests(), K8S / "prometheus.yml"}


def test_every_resource_is_labelled_and_in_the_namespace() -> None:
    bad = []
    for doc in resources(examples=True):
        meta = doc["metadata"]
        labels = meta.get("labels", {})
        if labels.get("app.kubernetes.io/part-of") != "opchain" or not {
            "app.kubernetes.io/name", "app.kubernetes.io/component"} <= labels.keys():  # fmt: skip
            bad.append(f"{doc['kind']} {meta['name']}: labels {labels}")
        if doc["kind"] != "Namespace" and meta.get("namespace") != "opchain":
            bad.append(f"{doc['kind']} {meta['name']}: namespace {meta.get('namespace')}")
    assert bad == []
    assert kustomization()["namespace"] == "opchain"


def test_every_pod_is_locked_down() -> None:
    """The restricted Pod Security Standard and more: non-root, no token, read-only root."""
    bad = []
    for workload in workloads():
        spec = pod_spec(workload)
        security = spec.get("securityContext", {})
        if spec.get("automountServiceAccountToken") is not False:
            bad.append(f"{where(workload)}: automountServiceAccountToken")
        if security.get("runAsNonRoot") is not True or not security.get("runAsUser"):
            bad.append(f"{where(workload)}: runAsNonRoot and a runAsUser other than 0")
        if security.get("seccompProfile") != {"type": "RuntimeDefault"}:
            bad.append(f"{where(workload)}: seccompProfile RuntimeDefault")
        if not security.get("fsGroup"):
            bad.append(f"{where(workload)}: fsGroup (the volumes' group)")
    for workload, container in containers():
        security = container.get("securityContext", {})
        wanted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}  # fmt: skip
        for key, value in wanted.items():
            if security.get(key) != value:
                bad.append(f"{where(workload, container)}: securityContext.{key} {value}")
    namespace = next(doc for doc in resources() if doc["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert bad == []


def test_every_opchain_container_runs_as_the_image_user_with_a_tmp() -> None:
    bad = []
    for workload, container in containers():
        if not container["image"].startswith(OPCHAIN_IMAGE + ":"):
            continue
        spec = pod_spec(workload)
        if spec["securityContext"].get("runAsUser") != 10001:
            bad.append(f"{where(workload)}: runAsUser 10001 (the image's opchain user)")
        emptydirs = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        if mounts.get("/tmp") not in emptydirs:
            bad.append(f"{where(workload, container)}: an emptyDir at /tmp")
        if mounts.get("/data") is None:
            bad.append(f"{where(workload, container)}: the data volume at /data")
        if "command" in container:
            bad.append(f"{where(workload, container)}: args only (ENTRYPOINT is opchain)")
    assert bad == []


def test_every_container_has_requests_and_limits() -> None:
    bad = []
    for workload, container in containers():
        for part in ("requests", "limits"):
            given = container.get("resources", {}).get(part, {})
            if set(given) != {"cpu", "memory"}:
                bad.append(f"{where(workload, container)}: resources.{part} cpu and memory")
    assert bad == []


def test_every_container_serving_a_port_has_probes() -> None:
    """A container with a port is probed (readiness and liveness); opchain's collector and
    worker have no probe, their manifests say why (`opchain health` judges the whole system,
    not the process), and their one port, `metrics`, is for Prometheus alone (answered from a
    thread of its own: no verdict on the process either)."""
    bad = []
    for workload, container in containers(examples=False):
        has = {"readinessProbe", "livenessProbe"} & container.keys()
        served = {p.get("name") for p in container.get("ports", [])} - {METRICS_PORT_NAME}
        if served and len(has) != 2:
            bad.append(f"{where(workload, container)}: readiness and liveness probes")
        ports = {p["name"] for p in container.get("ports", [])} | {
            p["containerPort"] for p in container.get("ports", [])}  # fmt: skip
        for probe in has:
            check = container[probe].get("httpGet") or container[probe].get("tcpSocket")
            if check is not None and check["port"] not in ports:
                bad.append(f"{where(workload, container)}: {probe} port {check['port']}")
    assert bad == []
    api = next(c for w, c in containers() if w["metadata"]["name"] == "api")
    # Not /health: a 503 for stale data or an InfluxDB down would take every API pod out.
    assert api["readinessProbe"]["httpGet"]["path"] == "/docs"
    assert api["livenessProbe"]["httpGet"]["path"] == "/docs"
    for unprobed in ("worker.yaml", "collector-main.yaml"):
        assert "No probes, on purpose" in (K8S / unprobed).read_text()


def test_the_api_probes_and_scrapes_answer_without_a_key(tmp_path: Path) -> None:
    """The kubelet and Prometheus send no X-API-Key: each path they ask for answers 200 from
    an API that wants keys (a key-guarded path such as /market-status would answer 401)."""
    paths = {"/metrics"}  # prometheus/prometheus.yml
    for _, container in containers():
        if container["image"].startswith(OPCHAIN_IMAGE + ":"):
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                if "httpGet" in container.get(probe, {}):
                    paths.add(container[probe]["httpGet"]["path"])
    assert len(paths) > 1
    settings = Settings(data_dir=tmp_path, api_keys=(SecretStr("a-key"),))
    with running(create_app(settings)) as api:
        assert httpx.get(f"{api.url}/market-status", timeout=30).status_code == 401
        answers = {path: httpx.get(api.url + path, timeout=30).status_code for path in paths}
    assert answers == dict.fromkeys(paths, 200)


def labels_of(workload: dict[str, Any]) -> dict[str, str]:
    if workload["kind"] == "Pod":
        return dict(workload["metadata"]["labels"])
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def matches(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    return selector.items() <= labels_of(workload).items()


def test_every_selector_matches_its_pods() -> None:
    bad = []
    for workload in workloads(examples=False):
        if workload["kind"] == "Pod":
            continue
        if not matches(workload["spec"]["selector"]["matchLabels"], workload):
            bad.append(f"{where(workload)}: its selector does not match its template")
    for doc in resources():
        kind, name = doc["kind"], doc["metadata"]["name"]
        if kind == "Service":
            selector = doc["spec"]["selector"]
        elif kind in ("PodDisruptionBudget",):
            selector = doc["spec"]["selector"]["matchLabels"]
        elif kind == "NetworkPolicy":
            selector = doc["spec"]["podSelector"].get("matchLabels", {})
        else:
            continue
        chosen = [w for w in workloads(examples=False) if matches(selector, w)]
        if not chosen:
            bad.append(f"{kind} {name}: no pod has {selector}")
        for rule in doc["spec"].get("ingress", []) if kind == "NetworkPolicy" else []:
            for peer in rule["from"]:
                wanted = peer.get("podSelector", {}).get("matchLabels")
                if wanted and not any(matches(wanted, w) for w in workloads(examples=False)):
                    bad.append(f"NetworkPolicy {name}: no pod it admits has {wanted}")
            served = {p["containerPort"] for w in chosen for c in pod_spec(w)["containers"]
                      for p in c.get("ports", [])}  # fmt: skip
            bad += [f"NetworkPolicy {name}: port {port['port']} is no port of its pods"
                    for port in rule["ports"] if port["port"] not in served]  # fmt: skip
        if kind == "Service":
            ports = {p["name"] for w in chosen for c in pod_spec(w)["containers"]
                     for p in c.get("ports", [])}  # fmt: skip
            for port in doc["spec"]["ports"]:
                if port["targetPort"] not in ports:
                    bad.append(f"Service {name}: no pod of it has a port {port['targetPort']}")
    assert bad == []


def test_every_statefulset_names_a_governing_service_or_says_why() -> None:
    services = named("Service")
    for workload in workloads(examples=False):
        if workload["kind"] == "StatefulSet":
            serves = "ports" in pod_spec(workload)["containers"][0]
            assert not serves or workload["spec"]["serviceName"] in services, where(workload)


def referenced(spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of every ConfigMap, Secret and claim a pod spec refers to."""
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]
    for container in spec.get("initContainers", []) + spec["containers"]:
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]
        for env in container.get("env", []):
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                yield "ConfigMap", ref["configMapKeyRef"]["name"]
            if "secretKeyRef" in ref:
                yield "Secret", ref["secretKeyRef"]["name"]


def test_every_configmap_secret_and_claim_referenced_exists() -> None:
    """ConfigMaps and claims in the manifests (or generated); Secrets the user makes, as
    secret.example.yaml shows each (the ingress's certificate too)."""
    user_made = {doc["metadata"]["name"] for doc in load(USER_MADE_SECRETS)}
    known = {
        "ConfigMap": named("ConfigMap") | generated("ConfigMap"),
        "Secret": named("Secret") | generated("Secret") | user_made,
        "PersistentVolumeClaim": named("PersistentVolumeClaim"),
    }
    bad = []
    for workload in workloads():
        spec = pod_spec(workload)
        for kind, name in referenced(spec):
            if name not in known[kind]:
                bad.append(f"{where(workload)}: {kind} {name}")
        claims = {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        volumes = {v["name"] for v in spec.get("volumes", [])} | claims
        for container in spec["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volumes:
                    bad.append(f"{where(workload, container)}: volume {mount['name']}")
    for doc in resources():
        if doc["kind"] == "Ingress":
            for tls in doc["spec"]["tls"]:
                if tls["secretName"] not in known["Secret"]:
                    bad.append(f"Ingress {doc['metadata']['name']}: Secret {tls['secretName']}")
    assert bad == []
    assert named("Secret") == set(), "no Secret is applied: users make their own"


def test_the_shared_data_claim_is_read_write_many() -> None:
    claim = next(d for d in resources() if d["metadata"]["name"] == "opchain-data")
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


def test_every_autoscaler_targets_a_deployment_with_cpu_requests() -> None:
    deployments = {d["metadata"]["name"]: d for d in resources() if d["kind"] == "Deployment"}
    scaled = {}
    for doc in resources():
        if doc["kind"] != "HorizontalPodAutoscaler":
            continue
        target = doc["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        deployment = deployments[target["name"]]
        # The autoscaler owns the count: a `replicas` here would reset it at every apply.
        assert "replicas" not in deployment["spec"], target["name"]
        assert all(c["resources"]["requests"]["cpu"] for c in pod_spec(deployment)["containers"])
        scaled[target["name"]] = (doc["spec"]["minReplicas"], doc["spec"]["maxReplicas"])
    # Workers: one partition per index, six indices at most; more workers would idle.
    assert scaled == {"worker": (2, 6), "api": (2, 10)}


def test_the_ingress_routes_to_services_that_exist() -> None:
    services = {d["metadata"]["name"]: d for d in resources() if d["kind"] == "Service"}
    ingress = next(d for d in resources() if d["kind"] == "Ingress")
    routes = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            ports = {p["port"] for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"]["number"] in ports, backend
            routes[path["path"]] = (backend["name"], backend["port"]["number"])
    assert routes == {"/": ("api", 8000), "/grafana": ("grafana", 3000)}
    grafana = next(c for w, c in containers() if w["metadata"]["name"] == "grafana")
    env = {e["name"]: e.get("value") for e in grafana["env"]}
    assert env["GF_SERVER_SERVE_FROM_SUB_PATH"] == "true"
    assert env["GF_SERVER_ROOT_URL"].endswith("/grafana/")


def test_the_roles_run_what_the_contract_says() -> None:
    """The commands of each role, one collector per key and never two pods of it at once."""
    args = {w["metadata"]["name"]: c.get("args") for w, c in containers()}
    assert args["worker"] == ["worker"]
    assert args["api"] == ["serve", "--bus", "redis://redis:6379/0"]
    assert args["redis"][:5] == ["redis-server", "--appendonly", "yes", "--appendfsync", "always"]
    collectors = [w for w in workloads() if w["metadata"]["name"].startswith("collector-")]
    assert collectors
    for collector in collectors:
        name = collector["metadata"]["name"].removeprefix("collector-")
        assert collector["kind"] == "StatefulSet"
        assert collector["spec"]["replicas"] == 1
        assert collector["spec"]["podManagementPolicy"] == "OrderedReady"
        (container,) = pod_spec(collector)["containers"]
        assert container["args"] == ["collect", "--broker", "kite"]
        assert ("Secret", f"opchain-kite-{name}") in set(referenced(pod_spec(collector)))


def test_every_value_is_a_string() -> None:
    """YAML's `yes`, `8000` or `true` unquoted would reach Kubernetes as a bool or a number,
    which it refuses for an environment value or a ConfigMap's data; plain name/value pairs."""
    bad = []
    for doc in resources(examples=True):
        if doc["kind"] == "ConfigMap":
            bad += [f"ConfigMap {k}" for k, v in doc["data"].items() if not isinstance(v, str)]
    for workload, container in containers():
        for env in container.get("env", []):
            if "valueFrom" not in env and not isinstance(env.get("value"), str):
                bad.append(f"{where(workload, container)}: env {env['name']}")
        bad += [f"{where(workload, container)}: arg {a!r}" for a in container.get("args", [])
                if not isinstance(a, str)]  # fmt: skip
    assert bad == []


def test_the_prometheus_configuration_passes_promtool() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/system-packages installs it (prometheus)"
    config = K8S / "prometheus.yml"
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    scraped = yaml.safe_load(config.read_text())["scrape_configs"][0]
    assert scraped["metrics_path"] == "/metrics"
    assert scraped["dns_sd_configs"][0]["names"] == ["api-headless"]
    assert scraped["dns_sd_configs"][0]["port"] == 8000
