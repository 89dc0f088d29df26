"""The Grafana dashboards of deploy/grafana: their files hold together (ids, grid, datasource,
variables, units), every name a query uses is one docs/influxdb.md gives, the JSON is exactly
what deploy/grafana/build.py makes, and every query of every panel, substituted as Grafana
substitutes it, returns rows from a real influxd filled with a recorded simulated session.

No Grafana runs here (none can be installed on this machine): the queries are what Grafana
would send, and the panels' options are checked for shape, not rendered."""

import importlib.util
from collections.abc import Iterator

import pytest
import yaml

from tests.grafana import (
    DASHBOARDS,
    GRAFANA,
    PROVIDERS,
    ROOT,
    Range,
    bare_words,
    dashboards,
    datasource,
    doc_words,
    measurements_named,
    panels,
    quoted_names,
    schema,
    substitute,
    tag_values,
    targets,
    variables_used,
)

TARGETS = targets()
UNITS = {"none", "short", "percent", "percentunit", "currencyINR", "ms", "s", "decbytes"}


def test_the_five_dashboards_are_there_with_unique_uids_and_titles() -> None:
    found = dashboards()
    assert sorted(found) == [
        "greeks.json",
        "levels.json",
        "liquidity.json",
        "sentiment.json",
        "system.json",
    ]
    assert len({d["uid"] for d in found.values()}) == len(found)
    assert len({d["title"] for d in found.values()}) == len(found)
    for dashboard in found.values():
        assert 36 <= dashboard["schemaVersion"] <= 41
        assert dashboard["panels"]


def test_the_json_is_what_build_py_makes() -> None:
    spec = importlib.util.spec_from_file_location("grafana_build", GRAFANA / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    made: dict[str, str] = build.rendered()
    assert made == {path.name: path.read_text() for path in sorted(DASHBOARDS.glob("*.json"))}, (
        "run python deploy/grafana/build.py"
    )


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_panels_have_unique_ids_fit_the_grid_and_do_not_overlap(name: str) -> None:
    dashboard = dashboards()[name]
    items = list(panels(dashboard))
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for item in items:
        grid = item["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["h"] > 0
        assert grid["x"] + grid["w"] <= 24, item["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, (item["title"], cells.get((x, y)))
                cells[(x, y)] = item["title"]
        assert item["title"] and item.get("description")


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_and_target_uses_the_provisioned_datasource(name: str) -> None:
    source = datasource()
    assert source["type"] == "influxdb" and source["access"] == "proxy"
    expected = {"type": "influxdb", "uid": source["uid"]}
    dashboard = dashboards()[name]
    for item in panels(dashboard):
        assert item["datasource"] == expected, item["title"]
        assert item["targets"], item["title"]
        refs = [target["refId"] for target in item["targets"]]
        assert len(refs) == len(set(refs)), item["title"]
        for target in item["targets"]:
            assert target["datasource"] == expected
            assert target["rawQuery"] is True and target["query"].strip()
            assert target["resultFormat"] in ("time_series", "table")
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == expected


def test_the_datasource_is_influxql_over_post_with_its_url_from_the_environment() -> None:
    source = datasource()
    assert source["url"] == "${INFLUXDB_URL}"
    assert source["jsonData"]["httpMode"] == "POST"
    assert source["jsonData"]["dbName"]
    assert source["jsonData"].get("version", "InfluxQL") == "InfluxQL"


def test_the_provider_reads_the_folder_the_docs_mount_the_dashboards_at() -> None:
    config = yaml.safe_load(PROVIDERS.read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    guide = (ROOT / "docs" / "grafana.md").read_text()
    assert f"deploy/grafana/dashboards:{path}" in guide
    assert "deploy/grafana/provisioning:/etc/grafana/provisioning" in guide


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_variable_a_query_uses_is_defined(name: str) -> None:
    dashboard = dashboards()[name]
    defined = [variable["name"] for variable in dashboard["templating"]["list"]]
    queries = [target["query"] for item in panels(dashboard) for target in item["targets"]]
    queries += [variable["query"] for variable in dashboard["templating"]["list"]]
    used = set().union(*(variables_used(query) for query in queries))
    assert used <= set(defined), used - set(defined)
    assert set(defined) <= used, "a variable no query uses"
    for variable in dashboard["templating"]["list"]:
        assert variable["type"] == "query" and variable["current"]["value"]


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_has_a_unit_and_thresholds(name: str) -> None:
    for item in panels(dashboards()[name]):
        defaults = item["fieldConfig"]["defaults"]
        assert defaults["unit"] in UNITS, item["title"]
        steps = defaults["thresholds"]["steps"]
        assert steps[0]["value"] is None
        values = [step["value"] for step in steps[1:]]
        assert values == sorted(values), item["title"]


def all_queries() -> Iterator[tuple[str, str]]:
    for name, dashboard in dashboards().items():
        for item in panels(dashboard):
            for target in item["targets"]:
                yield f"{name}:{item['title']}:{target['refId']}", target["query"]
        for variable in dashboard["templating"]["list"]:
            yield f"{name}:${variable['name']}", variable["query"]


@pytest.mark.parametrize(("where", "query"), list(all_queries()), ids=lambda v: str(v)[:60])
def test_every_name_a_query_uses_is_in_docs_influxdb_md(where: str, query: str) -> None:
    names = schema()
    (measurement,) = measurements_named(query)
    assert measurement in names, f"{measurement} is not a measurement of docs/influxdb.md"
    unknown = [
        name
        for name in quoted_names(query)
        if name != measurement and name not in names[measurement]
    ]
    assert not unknown, f"{unknown} are not tags or fields of {measurement} in docs/influxdb.md"
    words = doc_words()
    assert not [value for value in tag_values(query) if value not in words]
    assert not bare_words(query), "name measurements, fields and tags in double quotes"


def test_the_doc_parser_finds_what_the_doc_says() -> None:
    names = schema()
    assert {"chain_analytics", "chain_strike", "index_overview", "monitor_status"} <= set(names)
    assert {"pcr_oi", "gex", "index", "bucket"} <= names["chain_analytics"]
    assert {"call_gamma", "put_oi", "offset", "strike"} <= names["chain_strike"]
    assert {"THIS_WEEK_TP", "pcr_next_week", "this_month_atm_iv"} <= names["index_overview"]
    assert {"spool_points", "measurement"} <= names["influx_write_stats"]
    assert "gex" not in names["monitor_status"]


def test_a_wrong_name_is_caught_by_the_name_check() -> None:
    names = schema()
    query = 'SELECT last("pcr") FROM "chain_analytics" WHERE $timeFilter'
    unknown = [name for name in quoted_names(query) if name not in names["chain_analytics"]]
    assert unknown == ["pcr"]
    assert bare_words("SELECT last(pcr_oi) FROM chain_analytics") == {"pcr_oi", "chain_analytics"}


def test_substitution_is_grafanas() -> None:
    span = Range(1_000, 2_000)
    query = (
        'SELECT mean("v") FROM "m" WHERE "index" =~ /^$index$/ AND "b" = \'${bucket}\' AND '
        "$timeFilter GROUP BY time($__interval) -- $__interval_ms"
    )
    chosen = {"index": "(NIFTY|BANKNIFTY)", "bucket": "this_week"}
    assert substitute(query, chosen, span) == (
        'SELECT mean("v") FROM "m" WHERE "index" =~ /^(NIFTY|BANKNIFTY)$/ AND '
        "\"b\" = 'this_week' AND time >= 1000ms and time <= 2000ms GROUP BY time(1m) -- 60000"
    )
    with pytest.raises(KeyError):
        substitute("SELECT $nope", {}, span)


def test_the_ids_of_the_real_run_name_every_target() -> None:
    assert len({(t.file, t.panel, t.ref) for t in TARGETS}) == len(TARGETS)
    assert len(TARGETS) >= 40
