"""deploy/compose.yaml, checked offline (no Docker engine here): the compose-spec schema
(check-jsonschema) and Debian's docker-compose 1.29 `config -q` accept it; Grafana and
Prometheus mount the files of deploy/ where their configurations look for them; the reverse
proxy's Caddyfile passes `caddy validate`; only the proxy publishes ports; the embedded and the
scale-out opchain never run together; and the variables of the compose file and of
deploy/env.example are the same, both ways."""

import json
import os
import re
import shutil
import subprocess
import sys
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from opchain.health.summary import EXIT_CODES
from opchain.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
EXAMPLE = DEPLOY / "env.example"
CADDYFILE = DEPLOY / "proxy" / "Caddyfile"
OPCHAIN_ROLES = {"opchain", "collector", "worker", "api", "monitor"}
SYSTEM_PACKAGES = "run scripts/system-packages (as root) to install it"


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def example() -> dict[str, str]:
    """deploy/env.example's variables and values."""
    pairs: dict[str, str] = {}
    for line in EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            pairs[name] = value
    return pairs


def interpolated() -> set[str]:
    """Every variable the compose file interpolates (${X}, ${X:-default}, ${X:?error});
    $$ is a literal dollar for the container."""
    text = COMPOSE.read_text().replace("$$", "")
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def setting_env_names() -> set[str]:
    names: set[str] = set()
    for field, info in Settings.model_fields.items():
        choices = getattr(info.validation_alias, "choices", None)
        if choices:
            names |= {c for c in choices if isinstance(c, str) and c.isupper()}
        else:
            names.add(f"OPCHAIN_{field.upper()}")
    return names


def mounts(service: str) -> dict[str, str]:
    """A service's bind mounts: target in the container -> source, resolved from deploy/."""
    found: dict[str, str] = {}
    for volume in services()[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            found[target] = str((DEPLOY / source).resolve())
    return found


def aliases(service: dict[str, Any]) -> list[str]:
    networks = service.get("networks", [])
    if not isinstance(networks, dict):
        return []  # a list of networks: no aliases
    found: list[str] = (networks.get("opchain") or {}).get("aliases", [])
    return found


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """A copy of deploy/ with env.example as its .env (compose reads the env file), beside
    the build context `..` it names."""
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns(".env", "certs"))
    shutil.copy(EXAMPLE, copy / ".env")
    return copy


def test_compose_spec_schema() -> None:
    found = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert found.returncode == 0, found.stdout + found.stderr


@pytest.mark.parametrize("profile", ["", "embedded", "scale"])
def test_docker_compose_1_29_config(stack: Path, profile: str) -> None:
    binary = shutil.which("docker-compose")
    assert binary, f"no docker-compose (Debian's, for `config -q`): {SYSTEM_PACKAGES}"
    command = [binary, "-f", str(stack / "compose.yaml")]
    command += ["--profile", profile] if profile else []
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    found = subprocess.run(
        [*command, "config", "-q"], capture_output=True, text=True, timeout=120, env=env
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_embedded_and_scale_out_never_run_together() -> None:
    """A service without a profile runs under every profile, so each opchain role has one,
    disjoint: `opchain run` and the collector would otherwise record the same data twice."""
    profiles = {name: set(services()[name].get("profiles", [])) for name in OPCHAIN_ROLES}
    assert profiles["opchain"] == {"embedded"}
    scale = ("collector", "worker", "api", "monitor")
    assert all(profiles[name] == {"scale"} for name in scale)
    assert example()["COMPOSE_PROFILES"] == "embedded"
    others = set(services()) - OPCHAIN_ROLES
    assert all("profiles" not in services()[name] for name in others), "the stack runs always"


def test_opchain_roles_share_the_data_volume_and_wait_for_their_stores() -> None:
    for name in OPCHAIN_ROLES:
        service = services()[name]
        assert "opchain-data:/data" in service["volumes"], name
        assert service["env_file"] == ".env"
        assert service["image"] == "opchain:latest" and service["build"] == ".."
        # the monitor without an alert channel exits 2: tried a few times, not for ever
        assert service["restart"] == ("on-failure:3" if name == "monitor" else "unless-stopped")
        conditions = {s: d["condition"] for s, d in service["depends_on"].items()}
        assert conditions == {"redis": "service_healthy", "influxdb": "service_healthy"}
        env = service["environment"]
        assert env["OPCHAIN_REDIS_URL"] == "redis://redis:6379/0"
        assert env["OPCHAIN_INFLUXDB_URL"] == "http://influxdb:8086"


def test_healthchecks() -> None:
    """Every store and UI has a probe; collect and worker, which serve no HTTP, run `opchain
    health` and count only its `down` exit code as unhealthy (the others inherit the image's
    /health probe)."""
    for name in ("redis", "influxdb", "grafana", "prometheus"):
        assert services()[name]["healthcheck"]["test"], name
    assert EXIT_CODES == {"ok": 0, "degraded": 1, "down": 2}
    for name in ("collector", "worker"):
        test = services()[name]["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL" and test[1].startswith("opchain health --json")
        assert "$$? -lt 2" in test[1]
    for name in ("opchain", "api"):
        assert "healthcheck" not in services()[name]


def test_only_the_proxy_publishes_ports() -> None:
    for name, service in services().items():
        ports = [str(p) for p in service.get("ports", [])]
        if name == "proxy":
            assert {p.split("/")[0] for p in ports} == {"80:80", "443:443"}
        else:
            assert all(p.startswith("127.0.0.1:") for p in ports), f"{name} publishes {ports}"


def test_grafana_mounts_the_provisioning_and_dashboards_of_deploy_grafana() -> None:
    grafana = DEPLOY / "grafana"
    found = mounts("grafana")
    assert found["/etc/grafana/provisioning"] == str(grafana / "provisioning")
    providers = yaml.safe_load((grafana / "provisioning/dashboards/opchain.yaml").read_text())
    (provider,) = providers["providers"]
    target = provider["options"]["path"]
    assert found[target] == str(grafana / "dashboards")
    assert list((grafana / "dashboards").glob("*.json")), "no dashboards to mount"
    # The data source's ${VARS} are Grafana's environment.
    datasource = json.dumps(
        yaml.safe_load(grafana.joinpath("provisioning/datasources/influxdb.yaml").read_text())
    )
    env = services()["grafana"]["environment"]
    needed = set(re.findall(r"\$\{(\w+)\}", datasource))
    assert needed and needed <= set(env), needed - set(env)
    assert env["INFLUXDB_URL"] == "http://influxdb:8086"


def test_prometheus_mounts_deploy_prometheus() -> None:
    prometheus = DEPLOY / "prometheus"
    found = mounts("prometheus")
    config = prometheus / "prometheus.yml"
    assert found["/etc/prometheus/prometheus.yml"] == str(config)
    assert found["/etc/prometheus/rules"] == str(prometheus / "rules")
    command = services()["prometheus"]["command"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in command
    assert config.is_file(), f"{config} is missing"
    assert (prometheus / "rules" / "opchain.yml").is_file()
    # Its rule files are inside the mounted folder, as Prometheus sees it.
    rule_files = yaml.safe_load(config.read_text()).get("rule_files", [])
    assert rule_files
    for pattern in rule_files:
        inside = pattern if pattern.startswith("/") else f"/etc/prometheus/{pattern}"
        assert inside.startswith("/etc/prometheus/rules/"), pattern
    # Its targets are services of the stack (or itself).
    scrapes = yaml.safe_load(config.read_text())["scrape_configs"]
    targets = {t for job in scrapes for group in job.get("static_configs", [])
               for t in group["targets"]}  # fmt: skip
    assert targets, "nothing scraped"
    for target in targets - {"localhost:9090"}:
        host, _, port = target.partition(":")
        assert host in services(), f"{target}: no such service"
        if host in OPCHAIN_ROLES:
            assert port == "8000", target


def caddy_validate(tmp_path: Path, caddyfile: Path, **env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("caddy")
    assert binary, f"no caddy (the proxy's validator): {SYSTEM_PACKAGES}"
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"), "PATH": os.environ["PATH"]}  # fmt: skip
    return subprocess.run(
        [binary, "validate", "--adapter", "caddyfile", "--config", str(caddyfile)],
        capture_output=True, text=True, timeout=60, env=home | env,
    )  # fmt: skip


@pytest.mark.parametrize(
    "site",
    [
        {},  # env.example's: localhost with Caddy's internal CA
        {"PROXY_DOMAIN": "opchain.example.com", "PROXY_TLS": "ops@example.com"},
        {"PROXY_DOMAIN": "192.168.1.20", "PROXY_TLS": "internal"},
    ],
)
def test_caddy_validates_the_proxy(tmp_path: Path, site: dict[str, str]) -> None:
    env = {k: v for k, v in example().items() if k.startswith("PROXY_")} | site
    found = caddy_validate(tmp_path, CADDYFILE, **env)
    assert found.returncode == 0, found.stdout + found.stderr
    assert mounts("proxy")["/etc/caddy/Caddyfile"] == str(CADDYFILE)
    proxy_env = services()["proxy"]["environment"]
    assert set(proxy_env) == {"PROXY_DOMAIN", "PROXY_TLS"}


def test_caddy_validates_the_proxy_with_certificates_of_ones_own(tmp_path: Path) -> None:
    """PROXY_TLS naming a certificate and its key (deploy/certs/, mounted at /certs)."""
    openssl = shutil.which("openssl")
    assert openssl, f"no openssl: {SYSTEM_PACKAGES}"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=opchain.lan", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    env = {"PROXY_DOMAIN": "opchain.lan", "PROXY_TLS": f"{cert} {key}"}
    found = caddy_validate(tmp_path, CADDYFILE, **env)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "./certs:/certs:ro" in services()["proxy"]["volumes"]


def test_the_proxy_routes_to_the_api_and_grafana_and_is_trusted() -> None:
    """/ goes to `app:8000`, the alias of exactly the roles serving the API (one at a time),
    /grafana/ to Grafana serving from that sub-path; the API believes X-Forwarded-For from
    the proxy's fixed address only."""
    caddyfile = CADDYFILE.read_text()
    upstreams = set(re.findall(r"reverse_proxy\s+(\S+)", caddyfile))
    assert upstreams == {"app:8000", "grafana:3000"}
    assert re.search(r"handle /grafana/\*\s*\{\s*reverse_proxy grafana:3000", caddyfile)
    assert re.search(r"handle /metrics\s*\{\s*respond 404", caddyfile), "/metrics is internal"
    aliased = {name for name, service in services().items() if "app" in aliases(service)}
    assert aliased == {"opchain", "api"}
    grafana = services()["grafana"]["environment"]
    assert grafana["GF_SERVER_ROOT_URL"].endswith("/grafana/")
    assert grafana["GF_SERVER_SERVE_FROM_SUB_PATH"] == "true"
    address = services()["proxy"]["networks"]["opchain"]["ipv4_address"]
    (subnet,) = [c["subnet"] for c in compose()["networks"]["opchain"]["ipam"]["config"]]
    assert ip_address(address) in ip_network(subnet)
    for name in ("opchain", "api"):
        trusted = services()[name]["environment"]["OPCHAIN_API_TRUSTED_PROXIES"]
        assert trusted == address, name


def test_variables_of_compose_and_env_example_match_both_ways() -> None:
    """Every ${X} of the compose file is in env.example; every line of env.example is one the
    compose file interpolates, an opchain setting (the roles read the env file whole), or the
    profile selection."""
    given = example()
    missing = interpolated() - set(given)
    assert not missing, f"deploy/env.example lacks {sorted(missing)}"
    unused = set(given) - interpolated() - setting_env_names() - {"COMPOSE_PROFILES"}
    assert not unused, f"deploy/env.example sets what nothing reads: {sorted(unused)}"
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert number and lines[number - 1].startswith("# "), f"no comment above {line!r}"


def test_secrets_come_from_the_env_file() -> None:
    """No password, key or token is written into the compose file itself."""
    secret = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY", re.IGNORECASE)
    for name, service in services().items():
        env = service.get("environment", {})
        for key, value in env.items():
            if secret.search(key) and value:
                assert re.fullmatch(r"\$\{\w+(:[?-][^}]*)?\}", str(value)), f"{name}: {key}"
    command = " ".join(services()["redis"]["command"])
    assert "--requirepass ${REDIS_PASSWORD" in command
