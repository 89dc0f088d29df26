"""deploy/prometheus: the compose scrape configuration and opchain's alert rules pass the real
``promtool`` (check config, check rules, and the rules' unit tests in opchain.test.yml); every
metric a rule reads is one opchain exports, every component it names is one opchain reports,
every alert has a unit test that fires it, and each carries ``for``, a severity and a runbook
in docs/operations.md."""

import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from opchain.bus import collector as bus_collector
from opchain.health import state
from opchain.health import storage as storage_health
from opchain.health.checks import Check, disk_check, token_check
from opchain.health.metrics import CHECK_VALUES, Metrics
from opchain.market.ist import IST
from opchain.outputs import redislive
from opchain.outputs.influx import writer
from opchain.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = PROMETHEUS / "rules" / "opchain.yml"
RULE_TESTS = PROMETHEUS / "rules" / "opchain.test.yml"
MOUNTED_RULES = "/etc/prometheus/rules/"  # where compose mounts deploy/prometheus/rules
NOW = datetime(2026, 11, 20, 11, 0, tzinfo=IST)

# The runbooks docs/operations.md has (its helper checks the anchors exist).
RUNBOOKS = {
    "data-stale",
    "kite-login-expiring",
    "kite-login-expired",
    "collector-down",
    "collector-restarting",
    "influxdb-spool-growing",
    "disk-low",
    "api-down",
}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
NAME = re.compile(r"(?<![\w.:])[a-zA-Z_:][\w:]*")


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is not installed: run scripts/system-packages (Debian's prometheus)")
    return subprocess.run([found, *args], capture_output=True, text=True, cwd=cwd)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alerts() -> list[dict[str, Any]]:
    return [rule for group in load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads: what is left once strings, label sets,
    ranges, grouping clauses, functions and keywords are taken out."""
    bare = re.sub(r'"[^"]*"', "", expr)
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", bare)
    bare = GROUPING.sub(" ", bare)
    names = set()
    for found in NAME.finditer(bare):
        if bare[found.end() :].lstrip().startswith("("):  # a function or an aggregation
            continue
        if found.group().lower() not in PROMQL_WORDS:
            names.add(found.group())
    return names


def label_values(expr: str, label: str) -> set[str]:
    """The values ``label`` is matched with; a regex matcher must be a plain alternation."""
    values = set()
    for name, op, value in MATCHER.findall(expr):
        if name != label:
            continue
        if op == "=~":
            assert re.fullmatch(r"[\w-]+(\|[\w-]+)*", value), f"{label}=~{value!r} is no list"
            values.update(value.split("|"))
        else:
            values.add(value)
    return values


def exported_names() -> set[str]:
    """Every sample name opchain's /metrics has once each kind of news has come in."""
    metrics = Metrics()
    checks = [Check(name, "ok", "fine", NOW, 1.0) for name in CHECK_VALUES]
    states = {state.COLLECTOR: state.State(component=state.COLLECTOR, status="ok", detail="",
                                           since="")}  # fmt: skip
    metrics.set_health(checks, states)
    metrics.observe_request("ok", 0.1)
    metrics.observe_influx(written=1, rejected=1, dropped=1, spool_bytes=10, queue_points=1)
    metrics.restarts.labels(state.COLLECTOR).inc()
    metrics.alerts_sent.labels("webhook").inc()
    metrics.alert_failures.labels("webhook").inc()
    text = metrics.exposition().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


def reported_components(tmp_path: Path) -> set[str]:
    """Component and check names opchain reports: its components' constants, and the names
    the checks the rules read give themselves."""
    kite = Settings(data_dir=tmp_path, broker="kite", kite_api_key="k", kite_access_token="t")
    token = token_check(kite, NOW)
    assert token is not None
    named = {token.name, disk_check(kite, NOW).name}
    constants = {state.COLLECTOR, storage_health.COMPONENT, bus_collector.COMPONENT,
                 redislive.COMPONENT, writer.SINK, state.BROKER}  # fmt: skip
    return named | constants


def test_config_passes_promtool_with_its_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES.parent, rules)
    text = CONFIG.read_text()
    assert MOUNTED_RULES in text
    config = tmp_path / "prometheus.yml"
    config.write_text(text.replace(MOUNTED_RULES, f"{rules}/"))
    checked = promtool("check", "config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{rules}/opchain.yml" in checked.stdout  # the rules were found and checked
    assert "SUCCESS: 1 rule files found" in checked.stdout, checked.stdout


def test_config_scrapes_both_ways_of_running_opchain() -> None:
    config = load(CONFIG)
    assert config["rule_files"] == [MOUNTED_RULES + RULES.name]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    opchain = jobs["opchain"]
    assert opchain["metrics_path"] == "/metrics"
    targets = {t for group in opchain["static_configs"] for t in group["targets"]}
    assert targets == {"opchain:8000", "api:8000"}  # the compose services (CONTRACT.md)
    assert config["global"]["scrape_interval"] == "15s"


def test_rules_pass_promtool() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alerts())} rules found" in checked.stdout, checked.stdout


def test_rule_unit_tests_pass() -> None:
    tested = promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout, tested.stdout


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    names = [rule["alert"] for rule in alerts()]
    assert len(names) == len(set(names)), names
    cases = [case for test in load(RULE_TESTS)["tests"] for case in test["alert_rule_test"]]
    fired = {case["alertname"] for case in cases if case.get("exp_alerts")}
    tested = {case["alertname"] for case in cases}
    assert fired == set(names) == tested


def test_rules_read_only_metrics_opchain_exports() -> None:
    exported = exported_names() | {"up"}  # up: Prometheus's own, per target
    used = set().union(*(metric_names(rule["expr"]) for rule in alerts()))
    assert used, "no metric found in the rules"
    assert used <= exported, used - exported


def test_rules_name_only_components_opchain_reports(tmp_path: Path) -> None:
    known = reported_components(tmp_path)
    used = set().union(*(label_values(rule["expr"], "component") for rule in alerts()))
    assert used, "no component found in the rules"
    assert used <= known, used - known
    jobs = {job["job_name"] for job in load(CONFIG)["scrape_configs"]}
    named_jobs = set().union(*(label_values(rule["expr"], "job") for rule in alerts()))
    assert named_jobs <= jobs, named_jobs - jobs


def test_alerts_wait_and_say_what_to_do() -> None:
    for rule in alerts():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), name
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], name
        page, _, anchor = notes["runbook"].partition("#")
        assert page == "docs/operations.md" and anchor in RUNBOOKS, (name, notes["runbook"])


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'max by (job) (up{job="opchain"}) == 0 and on (job, instance)'
        ' increase(opchain_x_total{component=~"a|b-c"}[15m]) >= 3e9 or opchain_y < 5e9 >= 1e9'
    )
    assert metric_names(expr) == {"up", "opchain_x_total", "opchain_y"}
    assert label_values(expr, "component") == {"a", "b-c"}
    assert label_values(expr, "job") == {"opchain"}


def test_promql_functions_are_no_metric_names() -> None:
    expr = (
        'opchain_a{component="b"} == 0 and on () day_of_week() >= 1 <= 5'
        " and on () hour() * 60 + minute() >= 195 <= 600"
        " and hour(opchain_t) * 60 + minute(opchain_t) > 0 and day_of_week (opchain_t) < 6"
        ' or absent(up{job="opchain"}) or vector(0) and opchain_t - time() <= 1800'
    )
    assert metric_names(expr) == {"opchain_a", "opchain_t", "up"}
