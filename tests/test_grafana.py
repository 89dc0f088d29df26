"""The Grafana dashboards of deploy/grafana: their files hold together (ids, grid, datasource,
variables, units), every name a query uses is one docs/influxdb.md gives, the JSON is exactly
what deploy/grafana/build.py makes, and every query of every panel, substituted as Grafana
substitutes it, returns rows from a real influxd filled with a recorded simulated session.

No Grafana runs here (none can be installed on this machine): the queries are what Grafana
would send, and the panels' options are checked for shape, not rendered."""

import importlib.util
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta

import httpx
import pytest
import yaml

from opchain.market import calendar
from opchain.merge.cycle import Cycle, LoopStats
from opchain.outputs.influx.backfill import recorded_cycles
from opchain.outputs.influx.points import Tags, cycle_lines, health_lines
from opchain.settings import Settings
from tests.grafana import (
    DASHBOARDS,
    GRAFANA,
    PROVIDERS,
    ROOT,
    Range,
    Target,
    bare_words,
    choose,
    dashboards,
    datasource,
    doc_words,
    format_value,
    measurements_named,
    not_written,
    panels,
    problems,
    quoted_names,
    run,
    schema,
    substitute,
    tag_values,
    targets,
    variables_used,
)
from tests.servers_health import influxd_server
from tests.sessions import DAY, record

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
        assert len(dashboard["uid"]) <= 40  # Grafana's limit
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


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_the_columns_a_panel_arranges_are_columns_its_queries_return(name: str) -> None:
    """A bar chart's x axis and a sort name a column (AS ...) of every query of the panel."""
    for item in panels(dashboards()[name]):
        named = {item.get("options", {}).get("xField")}
        for step in item.get("transformations", []):
            named |= {sort["field"] for sort in step["options"].get("sort", [])}
        for column in named - {None}:
            for target in item["targets"]:
                assert f"AS {column}" in target["query"], (item["title"], column)


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
    assert not set(quoted_names(query)) & not_written(), "the encoder leaves these out"
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
    assert {"retry_count", "backoff_applied", "tokens_refresh_count"} <= not_written()


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


# The real run: a recorded simulated session in a throwaway influxd -------------------------

DB = "opchain"
TAGS = Tags(env="test", host="grafana-test")
MINUTES = 20  # of the session: 40 cycles of the whole chain, about 8 s to record
PREVIOUS_DAY = date(2026, 11, 19)  # the trading day before DAY


@dataclass
class Written:
    """The writer's stats the health points read (``WriterStatsLike``): the fill's own."""

    points_attempted: int = 0
    points_written: int = 0
    points_rejected: int = 0
    points_dropped: int = 0
    flush_latency_ms: float = 0.0
    queue_points: int = 0
    spool_bytes: int = 0
    spool_points: int = 0
    state: str = "ok"


def live_loop(cycle: Cycle, number: int, calls: int) -> LoopStats:
    """How the live loop went for a recorded cycle, as far as its files tell (they keep no
    loop timings): the quote calls from the cycle's time to the broker's answer, its legs."""
    collect = (cycle.snapshot.received_at - cycle.snapshot.ts).total_seconds()
    legs = sum(len(chain.legs) for chain in cycle.snapshot.chains)
    return LoopStats(
        collect_ms=collect * 1000,
        quote_calls=calls,
        legs=legs,
        lag_s=collect,
        cycles=number,
        requests=calls * number,
    )


def fill(client: httpx.Client, settings: Settings, calls: int) -> Range:
    """Every recorded cycle of the session to ``client``'s influxd, encoded as the live run
    encodes it (market points and health points), one cycle a request; the range they span."""
    written = Written()
    times = []
    for number, recorded in enumerate(recorded_cycles(settings, DAY), start=1):
        cycle = replace(recorded, loop=live_loop(recorded, number, calls))
        lines = cycle_lines(cycle, TAGS, settings.strike_offsets)
        lines += health_lines(cycle, written, "sim", TAGS)
        started = time.perf_counter()
        response = client.post(
            "/write", params={"db": DB, "precision": "n"}, content="\n".join(lines)
        )
        assert response.status_code == 204, response.text
        written.points_attempted += len(lines)
        written.points_written += len(lines)
        written.flush_latency_ms = (time.perf_counter() - started) * 1000
        times.append(cycle.snapshot.ts)
    assert len(times) == MINUTES * 2
    # Over 20 minutes Grafana's $__interval is the data source's minimum (its timeInterval).
    start, end = (int(ts.timestamp() * 1000) for ts in (times[0], times[-1]))
    minimum = datasource()["jsonData"]["timeInterval"]
    assert minimum.endswith("s")
    return Range(start, end, minimum, int(minimum[:-1]) * 1000)


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Range]]:
    folder = tmp_path_factory.mktemp("grafana")
    # A few minutes of the session before, whose last window is the close OI changes from.
    before = calendar.session("NSE", PREVIOUS_DAY)
    session = calendar.session("NSE", DAY)
    assert before is not None and session is not None
    record(folder / "data", before.open + timedelta(minutes=2), PREVIOUS_DAY, full_chain=True)
    report = record(
        folder / "data", until=session.open + timedelta(minutes=MINUTES), full_chain=True
    )
    settings = Settings(data_dir=folder / "data", full_chain=True)
    (folder / "influxd").mkdir()
    with (
        influxd_server(folder / "influxd") as (url, _),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        assert client.post("/query", data={"q": f"CREATE DATABASE {DB}"}).status_code == 200
        span = fill(client, settings, report.quote_calls // report.cycles)
        yield client, span


def chosen_values(client: httpx.Client, span: Range, file: str) -> dict[str, str]:
    return choose(client, DB, dashboards()[file]["templating"]["list"], span)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: f"{t.file}:{t.panel}:{t.ref}")
def test_every_query_of_every_panel_returns_rows(
    influx: tuple[httpx.Client, Range], target: Target
) -> None:
    client, span = influx
    query = substitute(target.query, chosen_values(client, span, target.file), span)
    answer = run(client, DB, query)
    assert not problems(answer), (query, problems(answer))
    rows = [row for item in answer["results"][0]["series"] for row in item["values"]]
    if target.kind == "timeseries":  # a line through the session, not a point
        assert len({row[0] for row in rows}) > 1, query
    if target.kind in ("barchart", "table") and "chain_strike" in query:
        assert len(rows) > 20, query  # the whole chain's strikes


VARIABLES = [
    (name, variable["name"])
    for name, dashboard in dashboards().items()
    for variable in dashboard["templating"]["list"]
]


@pytest.mark.parametrize(("file", "name"), VARIABLES, ids=lambda v: str(v))
def test_every_variable_offers_its_current_value(
    influx: tuple[httpx.Client, Range], file: str, name: str
) -> None:
    client, span = influx
    chosen = chosen_values(client, span, file)  # asserts the current value is offered
    assert chosen[name]


def test_a_broken_query_is_caught_by_the_same_runner(
    influx: tuple[httpx.Client, Range],
) -> None:
    client, span = influx
    chosen = chosen_values(client, span, "sentiment.json")
    broken = [
        'SELECT last("pcr_oi") FROM "chain_analitics" WHERE $timeFilter',  # no measurement
        'SELECT last("pcr") FROM "chain_analytics" WHERE $timeFilter',  # no field
        'SELECT last("pcr_oi"), last("pcr") FROM "chain_analytics" WHERE $timeFilter',
        'SELECT last("pcr_oi") FROM "chain_analytics" WHERE "index" = \'NIFTY 50\' AND '
        "$timeFilter",  # the overview's name of the index, not the key
        'SELECT last("pcr_oi") FROM "chain_analytics" WHERE $timeFilter GROUP BY time(1x)',
    ]
    for query in broken:
        assert problems(run(client, DB, substitute(query, chosen, span))), query
    good = 'SELECT last("pcr_oi") FROM "chain_analytics" WHERE $timeFilter'
    assert not problems(run(client, DB, substitute(good, chosen, span)))


def test_the_queries_also_run_for_every_index_at_once(
    influx: tuple[httpx.Client, Range],
) -> None:
    """A multi-value $index, as Grafana formats it for a regex: (NIFTY|BANKNIFTY|SENSEX)."""
    client, span = influx
    chosen = chosen_values(client, span, "levels.json")
    chosen["index"] = format_value(["NIFTY", "BANKNIFTY", "SENSEX"], multi=True)
    chosen["bucket"] = format_value(["this_month"], multi=True)
    for target in [t for t in TARGETS if t.file == "levels.json"]:
        answer = run(client, DB, substitute(target.query, chosen, span))
        assert not problems(answer), target
