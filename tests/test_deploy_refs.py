"""Everything the deployment kit names in opchain exists in opchain.

The compose file and the Kubernetes manifests start opchain's image with commands, options,
environment variables, ports and paths; a typo there (``opchain wroker``, ``--bsu``,
``OPCHAIN_REDIS_ULR``, a probe on ``/healthz``) would pass every schema check and fail only on
a user's machine. Here each one is parsed by opchain itself: the command line by the CLI's own
parser, each variable against the settings' environment names, each HTTP path against the
API's routes, each port against the API's.
"""

import asyncio
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import AliasChoices
from typer.testing import CliRunner

from opchain.api.app import create_app
from opchain.cli import app as cli_app
from opchain.settings import Settings

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
K8S = DEPLOY / "k8s"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
API_PORT = Settings.model_fields["api_port"].default
DATA_DIR = "/data"  # the image's volume (Dockerfile) and OPCHAIN_DATA_DIR everywhere


def setting_names() -> set[str]:
    """Every environment variable opchain's settings read (upper case, as documented)."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"OPCHAIN_{name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names |= {
                a for a in field.validation_alias.choices if isinstance(a, str) and a.isupper()
            }
    return names


SETTINGS = setting_names()
# Variables of opchain's containers that are not settings: Python's own and the image's.
NOT_SETTINGS = {"HOME", "PATH", "TZ", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${X}``, ``${X:-default}`` and ``${X-default}`` with the example's values."""

    def one(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-([^}]*))?\}", one, text)


# --- what the files say -------------------------------------------------------------------


class Container:
    """One opchain container, as the compose file or a manifest describes it."""

    def __init__(self, where: str, argv: list[str], env: dict[str, str], ports: list[int]):
        self.where, self.argv, self.env, self.ports = where, argv, env, ports
        self.paths: list[tuple[str, int]] = []  # (HTTP path, port) its probes ask for
        self.mounts: list[str] = []
        self.argv_probe: list[str] = []  # an exec probe's opchain command line
        self.labels: dict[str, str] = {}  # its pod's (Kubernetes)

    @property
    def metrics_port(self) -> int | None:
        """The port of its own /metrics (collect, worker), when OPCHAIN_METRICS_PORT sets one."""
        given = self.env.get("OPCHAIN_METRICS_PORT")
        return int(given) if given else None

    def __repr__(self) -> str:
        return self.where


def is_opchain_image(image: str | None) -> bool:
    return bool(image) and re.search(r"(^|/)opchain(:|$)", str(image)) is not None


def compose_containers() -> Iterator[Container]:
    env = env_example()
    compose = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), env))
    for name, service in compose["services"].items():
        if not (is_opchain_image(service.get("image")) or "build" in service):
            continue
        command = service.get("command", ["run"])
        argv = command.split() if isinstance(command, str) else [str(c) for c in command]
        environment = service.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(item.partition("=")[::2] for item in environment)
        env_files = service.get("env_file") or []
        if isinstance(env_files, str):
            env_files = [env_files]
        merged = {k: str(v) for k, v in environment.items()}
        if env_files:  # the committed example stands for the user's .env, which also holds
            # the other services' variables (passwords, the proxy's domain): opchain reads only
            # its settings from it (names like its settings are checked in every file below)
            merged = {**{k: v for k, v in env.items() if k in SETTINGS}, **merged}
        ports = [_container_port(p) for p in service.get("ports", [])]
        ports += [int(p) for p in service.get("expose", [])]
        container = Container(f"compose service {name}", argv, merged, ports)
        test = (service.get("healthcheck") or {}).get("test") or []
        if isinstance(test, list):  # ["CMD", argv...] or ["CMD-SHELL", "a shell line"]
            test = test[1:] if test[:1] == ["CMD"] else [" ".join(test[1:])]
            text = " ".join(shlex.quote(t) for t in test) if len(test) > 1 else "".join(test)
        else:
            text = str(test)
        for segment in re.split(r"[;|&]+", text):  # a shell's `opchain ...` too
            words = [w for w in shlex.split(segment) if not re.match(r"\d?>", w)]
            if words and words[0] == "opchain":
                container.argv_probe = words[1:]
        for url in re.findall(r"https?://[^\s'\"]+", text):
            match = re.match(r"https?://[^/:]+:(\d+)(/[^\s'\")]*)", url)
            assert match, f"{name}: healthcheck URL {url} names no port and path"
            container.paths.append((match.group(2), int(match.group(1))))
        container.mounts = [str(v).split(":")[1] for v in service.get("volumes", [])]
        yield container


def _container_port(spec: Any) -> int:
    if isinstance(spec, dict):
        return int(spec["target"])
    return int(str(spec).split(":")[-1].split("/")[0])


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                doc["__file__"] = path.relative_to(ROOT).as_posix()
                docs.append(doc)
    return docs


def k8s_containers() -> Iterator[Container]:
    docs = k8s_documents()
    configmaps = {  # the secrets: as secret.example.yaml shows the ones users create
        d["metadata"]["name"]: d.get("data") or d.get("stringData") or {}
        for d in docs
        if d.get("kind") in ("ConfigMap", "Secret")
    }
    for doc in docs:
        spec = doc.get("spec", {})
        pod = spec if doc.get("kind") == "Pod" else spec.get("template", {}).get("spec")
        if not pod:
            continue
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            if not is_opchain_image(c.get("image")):
                continue
            argv = [str(a) for a in (c.get("command") or [])[1:] + (c.get("args") or [])]
            if c.get("command") and Path(str(c["command"][0])).name != "opchain":
                argv = []  # a shell or another program: nothing of opchain's to parse
            env = {e["name"]: str(e.get("value", "")) for e in c.get("env", [])}
            for source in c.get("envFrom", []):
                ref = (source.get("configMapRef") or source.get("secretRef") or {}).get("name")
                if ref is not None:
                    env = {**configmaps.get(ref, {}), **env}
            ports = [int(p["containerPort"]) for p in c.get("ports", [])]
            where = f"{doc['__file__']} {doc['kind']}/{doc['metadata']['name']} {c['name']}"
            container = Container(where, argv, env, ports)
            named = {p.get("name"): int(p["containerPort"]) for p in c.get("ports", [])}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                get = (c.get(probe) or {}).get("httpGet")
                if get:
                    port = get["port"]
                    container.paths.append((get["path"], named.get(port, port)))
                exec_ = (c.get(probe) or {}).get("exec")
                if exec_ and Path(exec_["command"][0]).name == "opchain":
                    container.argv_probe = [str(a) for a in exec_["command"][1:]]
            container.mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
            meta = doc["metadata"] if doc.get("kind") == "Pod" else spec["template"]["metadata"]
            container.labels = dict(meta.get("labels", {}))
            yield container


def containers() -> list[Container]:
    return [*compose_containers(), *k8s_containers()]


# --- opchain's side -------------------------------------------------------------------------


def parse_command_line(argv: list[str]) -> str | None:
    """``opchain ARGV`` parsed by the CLI itself: what it says is wrong (None: nothing).

    ``--help`` goes last, so nothing runs, but every command and option before it is looked up
    by the CLI's own parser first: a wrong one is refused exactly as a user would see it."""
    result = CliRunner().invoke(cli_app, [*argv, "--help"])
    if result.exit_code == 0:
        return None
    lines = [line.strip("│╭╮╰╯─ ") for line in result.output.splitlines()]  # rich's error box
    said = [line for line in lines if line and not line.startswith(("Usage", "Try", "Error"))]
    return " ".join(said)


def api_answers(path: str, data_dir: Path) -> int:
    """The status opchain's API gives ``GET path`` over an empty data directory."""
    app = create_app(Settings(data_dir=data_dir))

    async def get() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return (await client.get(path)).status_code

    return asyncio.run(get())


# --- the tests ------------------------------------------------------------------------------


def test_the_kit_starts_opchain_somewhere() -> None:
    found = containers()
    assert any(c.where.startswith("compose") for c in found), "compose runs no opchain"
    assert any(not c.where.startswith("compose") for c in found), "k8s runs no opchain"
    roles = {c.argv[0] for c in found if c.argv}
    assert {"run", "collect", "worker", "serve"} <= roles, roles


@pytest.mark.parametrize("container", containers(), ids=repr)
def test_every_command_line_is_one_opchain_takes(container: Container) -> None:
    for argv in (container.argv, container.argv_probe):
        if argv:
            wrong = parse_command_line(argv)
            assert wrong is None, f"{container}: opchain {' '.join(argv)}: {wrong}"


@pytest.mark.parametrize("container", containers(), ids=repr)
def test_every_variable_is_a_setting(container: Container) -> None:
    unknown = sorted(
        name for name in container.env if name not in SETTINGS and name not in NOT_SETTINGS
    )
    assert not unknown, f"{container}: not opchain settings: {unknown}"
    Settings.model_validate(  # and every value is one the settings take
        {k: v for k, v in container.env.items() if k in SETTINGS and v}
    )


def test_every_opchain_variable_anywhere_is_a_setting() -> None:
    texts = [COMPOSE, ENV_EXAMPLE, ROOT / "Dockerfile", *sorted(K8S.rglob("*.yaml"))]
    for path in texts:
        for name in set(re.findall(r"\bOPCHAIN_[A-Z0-9_]+", path.read_text(encoding="utf-8"))):
            assert name in SETTINGS, f"{path.relative_to(ROOT)}: {name} is no setting"


@pytest.mark.parametrize("container", containers(), ids=repr)
def test_ports_and_paths_are_the_apis(container: Container, tmp_path: Path) -> None:
    """Each port is the API's, or its own /metrics' where OPCHAIN_METRICS_PORT sets it; each
    probe asks the API."""
    port = int(container.env.get("OPCHAIN_API_PORT") or API_PORT)
    served = {port} | ({container.metrics_port} if container.metrics_port is not None else set())
    assert set(container.ports) <= served, f"{container}: ports {container.ports}, {served}"
    for path, probe_port in container.paths:
        assert probe_port == port, f"{container}: probes port {probe_port}, API {port}"
        assert api_answers(path, tmp_path) in (200, 503), f"{container}: no API path {path}"
    assert container.env.get("OPCHAIN_DATA_DIR", DATA_DIR) == DATA_DIR, container
    assert DATA_DIR in container.mounts, f"{container}: the data directory is not a volume"
    token = container.env.get("OPCHAIN_KITE_TOKEN_FILE")
    if token:
        assert any(token.startswith(m.rstrip("/") + "/") for m in container.mounts), token


def compose_metrics_ports(name: str) -> set[int | None]:
    """The /metrics ports of the compose service ``name`` (None: it serves none)."""
    return {c.metrics_port for c in compose_containers() if c.where == f"compose service {name}"}


def k8s_metrics_ports(name: str) -> set[int | None]:
    """The /metrics ports of the opchain pods the Service ``name`` chooses, each as its
    container both serves it and declares it (None: one serves none)."""
    [service] = [d for d in k8s_documents() if d["kind"] == "Service"
                 and d["metadata"]["name"] == name]  # fmt: skip
    selector = service["spec"]["selector"].items()
    chosen = [c for c in k8s_containers() if selector <= c.labels.items()]
    assert chosen, f"Service {name} chooses no opchain pod"
    return {c.metrics_port if c.metrics_port in c.ports else None for c in chosen}


@pytest.mark.parametrize(
    "where", [PROMETHEUS, K8S / "prometheus.yml"], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_prometheus_scrapes_the_apis_or_the_roles_metrics(where: Path, tmp_path: Path) -> None:
    """Each target is an API (its port, /metrics) or the /metrics of a role whose every
    container is set to serve it there (OPCHAIN_METRICS_PORT)."""
    config = yaml.safe_load(where.read_text(encoding="utf-8"))
    jobs = [job for job in config["scrape_configs"] if job.get("job_name") != "prometheus"]
    ports_of = compose_metrics_ports if where == PROMETHEUS else k8s_metrics_ports
    scraped = set()
    for job in jobs:
        targets = [t.rsplit(":", 1) for s in job.get("static_configs", []) for t in s["targets"]]
        targets += [(n, str(d["port"])) for d in job.get("dns_sd_configs", []) for n in d["names"]]
        assert targets, job
        for name, port in targets:
            if port == str(API_PORT):
                assert api_answers(job.get("metrics_path", "/metrics"), tmp_path) == 200, job
            else:
                assert ports_of(name) == {int(port)}, (
                    f"{where.name}: {name}:{port} serves no /metrics"
                )
                scraped.add(name)
    assert len(scraped) == 2, f"{where.name}: the collectors' and workers' /metrics: {scraped}"


def test_the_checks_catch_a_typo() -> None:
    """The parser above is opchain's own: a misspelt command or option is refused."""
    for argv in (["wroker"], ["worker", "--bsu", "redis://x"], ["influx", "backfil"]):
        assert parse_command_line(argv) is not None, argv
    assert parse_command_line(["collect", "--broker", "kite", "--bus", "redis://r:6379/0"]) is None
    assert "OPCHAIN_REDIS_ULR" not in SETTINGS and "KITE_API_KEY" in SETTINGS


def test_the_cluster_runs_the_versions_compose_runs() -> None:
    """Redis, InfluxDB, Grafana and Prometheus: one version each, wherever they run."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    tagged = dict(
        str(s["image"]).rsplit(":", 1) for s in compose.values() if not is_opchain_image(s["image"])
    )
    cluster = [
        str(c["image"]).rsplit(":", 1)
        for doc in k8s_documents()
        for c in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        if not is_opchain_image(c["image"])
    ]
    assert cluster
    for image, tag in cluster:
        assert tagged.get(image) == tag, f"k8s runs {image}:{tag}, compose {tagged.get(image)}"
