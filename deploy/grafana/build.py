"""opchain's Grafana dashboards, as code: ``python deploy/grafana/build.py`` writes
``deploy/grafana/dashboards/*.json`` from this file, and tests/test_grafana.py checks the JSON
is exactly its output, so edit this file, never the JSON.

Every query is raw InfluxQL over the measurements of docs/influxdb.md (which InfluxDB 1.x, 2.x
through its v1 API and 3.x all answer). Names of measurements, fields and tags are always in
double quotes (the test checks each against the doc); aliases after AS are bare. The by-strike
panels read the last point of every ``offset`` series of ``chain_strike`` over the range (the
latest cycle) as a table, sorted by strike.
"""

import json
import sys
from pathlib import Path
from typing import Any

Panel = dict[str, Any]

DATASOURCE = {"type": "influxdb", "uid": "opchain-influxdb"}  # provisioning/datasources
HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"

# The chain of one index and bucket, as the variables choose them.
CHAIN = '"index" =~ /^$index$/ AND "bucket" =~ /^$bucket$/'
SERIES = "GROUP BY time($__interval) fill(none)"
OVERVIEW_INDICES = "\"index\" != 'INDIA VIX'"
VIX = "\"index\" = 'INDIA VIX'"


# Targets and field options ------------------------------------------------------------------


def target(query: str, ref: str = "A", fmt: str = "time_series", alias: str = "") -> Panel:
    result: Panel = {
        "datasource": DATASOURCE,
        "refId": ref,
        "rawQuery": True,
        "resultFormat": fmt,
        "query": query,
    }
    if alias:
        result["alias"] = alias
    return result


def steps(base: str, *levels: tuple[float, str]) -> Panel:
    """Absolute thresholds: ``base`` below the first level, then each level's colour."""
    return {
        "mode": "absolute",
        "steps": [{"color": base, "value": None}]
        + [{"color": color, "value": value} for value, color in levels],
    }


NEUTRAL = steps("text")


def defaults(unit: str, thresholds: Panel, decimals: int | None = None) -> Panel:
    result: Panel = {"unit": unit, "thresholds": thresholds, "color": {"mode": "palette-classic"}}
    if decimals is not None:
        result["decimals"] = decimals
    return result


# Panels: gridPos is set by ``layout`` ------------------------------------------------------


def panel(kind: str, title: str, description: str, targets: list[Panel], **extra: Any) -> Panel:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets,
        **extra,
    }


def timeseries(
    title: str,
    description: str,
    targets: list[Panel],
    unit: str,
    thresholds: Panel = NEUTRAL,
    line_thresholds: bool = False,
    decimals: int | None = None,
) -> Panel:
    custom = {"lineWidth": 1, "fillOpacity": 0, "showPoints": "never", "spanNulls": True}
    if line_thresholds:
        custom["thresholdsStyle"] = {"mode": "line+area"}
    field = defaults(unit, thresholds, decimals) | {"custom": custom}
    return panel(
        "timeseries",
        title,
        description,
        targets,
        fieldConfig={"defaults": field, "overrides": []},
        options={
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    )


def stat(
    title: str,
    description: str,
    targets: list[Panel],
    unit: str,
    thresholds: Panel = NEUTRAL,
    decimals: int | None = None,
) -> Panel:
    return panel(
        "stat",
        title,
        description,
        targets,
        fieldConfig={"defaults": defaults(unit, thresholds, decimals), "overrides": []},
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    )


def by_strike(
    title: str, description: str, targets: list[Panel], unit: str, kind: str = "barchart"
) -> Panel:
    """A bar chart (or table) of the latest cycle's strikes: the targets are tables with a
    ``strike`` column; Time and the ``offset`` tag are hidden, rows sorted by strike. A bar
    chart's strike becomes text once sorted: its x axis is a category, one bar per strike."""
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True, "offset": True}}},
        {"id": "sortBy", "options": {"sort": [{"field": "strike"}]}},
    ]
    if kind == "barchart":
        conversion = {"targetField": "strike", "destinationType": "string"}
        transformations.append(
            {"id": "convertFieldType", "options": {"conversions": [conversion], "fields": {}}}
        )
    overrides = [
        {
            "matcher": {"id": "byName", "options": "strike"},
            "properties": [{"id": "unit", "value": "none"}, {"id": "decimals", "value": 0}],
        }
    ]
    options: Panel = {
        "xField": "strike",
        "orientation": "vertical",
        "groupWidth": 0.8,
        "barWidth": 0.9,
        "showValue": "never",
        "stacking": "none",
        "xTickLabelSpacing": 100,
        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    }
    if kind == "table":
        options = {"showHeader": True, "cellHeight": "sm"}
    return panel(
        kind,
        title,
        description,
        targets,
        fieldConfig={"defaults": defaults(unit, NEUTRAL), "overrides": overrides},
        options=options,
        transformations=transformations,
    )


def strikes_query(columns: str) -> str:
    """The latest cycle's strikes of the chosen chain, ``columns`` beside ``strike``."""
    return (
        f'SELECT last("strike") AS strike, {columns} FROM "chain_strike" '
        f'WHERE {CHAIN} AND $timeFilter GROUP BY "offset"'
    )


def table(title: str, description: str, targets: list[Panel], unit: str = "short") -> Panel:
    return panel(
        "table",
        title,
        description,
        targets,
        fieldConfig={"defaults": defaults(unit, NEUTRAL), "overrides": []},
        options={"showHeader": True, "cellHeight": "sm"},
        transformations=[
            {"id": "merge", "options": {}},
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
    )


# Dashboards --------------------------------------------------------------------------------


def variable(name: str, label: str, query: str, current: str, include_all: bool = False) -> Panel:
    """A query variable, refreshed when the dashboard loads."""
    value = "$__all" if include_all else current
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 1,
        "sort": 1,
        "multi": include_all,
        "includeAll": include_all,
        "current": {"selected": True, "text": current, "value": value},
        "options": [],
        "hide": 0,
    }


INDEX = variable(
    "index", "Index", 'SHOW TAG VALUES FROM "chain_analytics" WITH KEY = "index"', "NIFTY"
)
BUCKET = variable(
    "bucket",
    "Expiry",
    'SHOW TAG VALUES FROM "chain_analytics" WITH KEY = "bucket" WHERE "index" =~ /^$index$/',
    "this_week",
)
HOST = variable(
    "host", "Host", 'SHOW TAG VALUES FROM "monitor_status" WITH KEY = "host"', "All", True
)


def layout(rows: list[tuple[int, list[tuple[int, Panel]]]]) -> list[Panel]:
    """Place rows of (width, panel) of one height each, top to bottom; number the panels."""
    panels, y = [], 0
    for height, row in rows:
        x = 0
        for width, item in row:
            panels.append(
                {"id": len(panels) + 1, "gridPos": {"x": x, "y": y, "w": width, "h": height}} | item
            )
            x += width
        y += height
    return panels


def dashboard(
    uid: str, title: str, description: str, variables: list[Panel], rows: list[Any]
) -> Panel:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["opchain"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now/d", "to": "now"},  # today in IST: the session so far
        "timezone": "Asia/Kolkata",
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [
            {
                "type": "dashboards",
                "tags": ["opchain"],
                "asDropdown": True,
                "title": "opchain",
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "panels": layout(rows),
    }


def lasts(*names: str) -> str:
    """``last("a") AS a, last("b") AS b``: the columns keep the field names."""
    return ", ".join(f'last("{name}") AS {name}' for name in names)


def chain_series(title: str, description: str, fields: list[str], unit: str, **kw: Any) -> Panel:
    """A time series of ``chain_analytics`` fields of the chosen chain."""
    query = f'SELECT {lasts(*fields)} FROM "chain_analytics" WHERE {CHAIN} AND $timeFilter {SERIES}'
    return timeseries(title, description, [target(query)], unit, **kw)


def chain_stat(title: str, description: str, expression: str, unit: str, **kw: Any) -> Panel:
    query = f'SELECT {expression} FROM "chain_analytics" WHERE {CHAIN} AND $timeFilter {SERIES}'
    return stat(title, description, [target(query)], unit, **kw)


def strikes(title: str, description: str, columns: str, unit: str, kind: str = "barchart") -> Panel:
    return by_strike(title, description, [target(strikes_query(columns), fmt="table")], unit, kind)


PCR_LEVELS = steps("red", (0.7, "yellow"), (1.3, "green"))  # call-heavy, neutral, put-heavy
VIX_LEVELS = steps("green", (15, "yellow"), (20, "red"))
SIGNED = steps("red", (0, "green"))


def sentiment() -> Panel:
    levels = target(
        'SELECT last("last_price") FROM "index_overview" WHERE '
        f'{OVERVIEW_INDICES} AND $timeFilter GROUP BY time($__interval), "index" fill(none)',
        alias="$tag_index",
    )
    vix = target(
        f'SELECT last("last_price") AS vix FROM "index_overview" WHERE {VIX} AND $timeFilter '
        f"{SERIES}",
        alias="India VIX",
    )
    change = target(
        'SELECT last("net_change_percent") FROM "index_overview" WHERE $timeFilter '
        'GROUP BY time($__interval), "index" fill(none)',
        alias="$tag_index",
    )
    term_day = target(
        'SELECT last("atm_iv") FROM "chain_analytics" WHERE "index" =~ /^$index$/ AND '
        '$timeFilter GROUP BY time($__interval), "bucket" fill(none)',
        alias="$tag_bucket",
    )
    term_now = target(
        'SELECT last("atm_iv") FROM "chain_analytics" WHERE "index" =~ /^$index$/ AND '
        '$timeFilter GROUP BY "bucket"',
        alias="$tag_bucket",
    )
    term_gauge = panel(
        "bargauge",
        "Term structure now",
        "The latest ATM IV of each expiry bucket.",
        [term_now],
        fieldConfig={
            "defaults": defaults("percentunit", NEUTRAL, 1) | {"min": 0},
            "overrides": [],
        },
        options={
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
        },
    )
    pcr_now = chain_stat(
        "PCR (OI)",
        "Put OI over call OI of the chosen expiry: below 0.7 call-heavy, above 1.3 put-heavy.",
        'last("pcr_oi")',
        "none",
        thresholds=PCR_LEVELS,
        decimals=2,
    )
    iv_now = chain_stat(
        "ATM IV", "Implied vol at the forward (OTM smile).", 'last("atm_iv")', "percentunit"
    )
    move = chain_stat(
        "Expected move",
        "ATM straddle over spot: the move to expiry the options price.",
        'last("expected_move_pct")',
        "percent",
        decimals=2,
    )
    pcr = chain_series(
        "Put-call ratio",
        "By OI and by volume, over the strikes the chain holds (whole chain or the watched band).",
        ["pcr_oi", "pcr_volume"],
        "none",
        thresholds=PCR_LEVELS,
        line_thresholds=True,
        decimals=2,
    )
    iv = chain_series(
        "ATM IV and 30-day IV",
        "atm_iv of the chosen expiry; iv30, the index's constant-maturity 30-day ATM IV.",
        ["atm_iv", "iv30"],
        "percentunit",
        decimals=1,
    )
    return dashboard(
        "opchain-sentiment",
        "opchain: market sentiment",
        "Index levels, India VIX, put-call ratio, ATM IV and the term structure.",
        [INDEX, BUCKET],
        [
            (
                4,
                [
                    (10, stat("Index levels", "Last price.", [levels], "none", decimals=2)),
                    (
                        4,
                        stat("VIX now", "15+ elevated, 20+ stressed.", [vix], "none", VIX_LEVELS),
                    ),
                    (3, pcr_now),
                    (3, iv_now),
                    (4, move),
                ],
            ),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "Index change from previous close",
                            "net_change_percent of every index of the overview.",
                            [change],
                            "percent",
                            SIGNED,
                            decimals=2,
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "India VIX", "Through the day.", [vix], "none", VIX_LEVELS, True
                        ),
                    ),
                ],
            ),
            (8, [(12, pcr), (12, iv)]),
            (
                8,
                [
                    (
                        16,
                        timeseries(
                            "Term structure through the day",
                            "ATM IV of every expiry bucket of the chosen index.",
                            [term_day],
                            "percentunit",
                            decimals=1,
                        ),
                    ),
                    (8, term_gauge),
                ],
            ),
        ],
    )


ATM_LEG = "\"strike_offset\" = 'atm'"


def liquidity() -> Panel:
    straddle = target(
        f'SELECT last("straddle") AS straddle FROM "chain_analytics" WHERE {CHAIN} AND '
        f"$timeFilter {SERIES}"
    )
    legs = target(
        f'SELECT last("last_price") FROM "atm_option_quote" WHERE {CHAIN} AND {ATM_LEG} AND '
        '$timeFilter GROUP BY time($__interval), "option_type" fill(none)',
        ref="B",
        alias="$tag_option_type",
    )
    vwap = target(
        'SELECT last("last_price") - last("average_price") FROM "atm_option_quote" WHERE '
        f'{CHAIN} AND {ATM_LEG} AND $timeFilter GROUP BY time($__interval), "option_type" '
        "fill(none)",
        alias="$tag_option_type",
    )
    watched = target(
        'SELECT last("strike_val") AS strike, '
        + lasts("last_price", "average_price", "iv", "volume", "oi", "oi_change")
        + f' FROM "atm_option_quote" WHERE {CHAIN} AND $timeFilter '
        'GROUP BY "strike_offset", "option_type"',
        fmt="table",
    )
    oi = strikes(
        "Open interest by strike",
        "Latest cycle, every strike the chain holds.",
        lasts("call_oi", "put_oi"),
        "short",
    )
    volume = strikes(
        "Volume by strike",
        "Contracts traded today, latest cycle.",
        lasts("call_volume", "put_volume"),
        "short",
    )
    oi_change = strikes(
        "OI change since the previous close, by strike",
        "Positive: positions added today.",
        lasts("call_oi_change", "put_oi_change"),
        "short",
    )
    smile = strikes(
        "Implied vol by strike: smile and put-call spread",
        "Black-76 IV of each side, and put IV minus call IV.",
        lasts("call_iv", "put_iv") + ', last("put_iv") - last("call_iv") AS put_minus_call',
        "percentunit",
    )
    return dashboard(
        "opchain-liquidity",
        "opchain: option liquidity and pricing",
        "Volume and OI by strike, IV spread, the ATM straddle and its legs through the day.",
        [INDEX, BUCKET],
        [
            (9, [(12, oi), (12, volume)]),
            (9, [(12, oi_change), (12, smile)]),
            (
                8,
                [
                    (
                        12,
                        timeseries(
                            "ATM straddle through the day",
                            "Call plus put at the ATM strike, and each leg.",
                            [straddle, legs],
                            "currencyINR",
                            decimals=2,
                        ),
                    ),
                    (
                        12,
                        timeseries(
                            "ATM legs: last price minus the day's average price",
                            "Positive: trading above today's volume-weighted average.",
                            [vwap],
                            "currencyINR",
                            SIGNED,
                            decimals=2,
                        ),
                    ),
                ],
            ),
            (
                8,
                [
                    (
                        24,
                        table(
                            "Watched legs now", "Latest quote of each offset and side.", [watched]
                        ),
                    )
                ],
            ),
        ],
    )


# Dealer gamma exposure per strike and side, rupees per 1 % move (analytics.gex):
# Γ · OI · F² · 0.01, calls +, puts −.
CALL_GEX = 'last("call_gamma") * last("call_oi") * last("forward") * last("forward") * 0.01'
PUT_GEX = '-1 * last("put_gamma") * last("put_oi") * last("forward") * last("forward") * 0.01'
DELTA_OI = (
    'last("call_delta") * last("call_oi") AS call_delta_oi, '
    'last("put_delta") * last("put_oi") AS put_delta_oi'
)
GREEKS = [
    f"{side}_{greek}"
    for side in ("call", "put")
    for greek in ("iv", "delta", "gamma", "theta", "vega")
]


def greeks() -> Panel:
    net = chain_stat(
        "Net GEX",
        "Dealer gamma exposure, rupees per 1% move: positive damps moves, negative feeds them.",
        'last("gex")',
        "currencyINR",
        thresholds=SIGNED,
    )
    flip = chain_stat(
        "Zero gamma",
        "Index level where total GEX changes sign (whole chain only).",
        'last("zero_gamma")',
        "none",
        decimals=0,
    )
    forward = chain_stat("Forward", "Put-call parity.", 'last("forward")', "none", decimals=2)
    above = chain_stat(
        "Spot above zero gamma",
        "Spot minus the zero-gamma level: above it dealers are long gamma.",
        'last("spot") - last("zero_gamma")',
        "none",
        thresholds=SIGNED,
        decimals=0,
    )
    gex = strikes(
        "Gamma exposure by strike (gamma walls)",
        "Dealer GEX per strike, rupees per 1% move, calls +, puts -: the tallest bars are the "
        "gamma walls.",
        f"{CALL_GEX} AS call_gex, {PUT_GEX} AS put_gex",
        "currencyINR",
    )
    delta = strikes(
        "Delta exposure by strike (delta walls)",
        "Delta times OI per strike, in units of the index.",
        DELTA_OI,
        "short",
    )
    net_day = chain_series(
        "Net GEX through the day",
        "Rupees per 1% move of the underlying.",
        ["gex"],
        "currencyINR",
        thresholds=SIGNED,
        line_thresholds=True,
    )
    flip_day = chain_series(
        "Zero gamma against spot",
        "Below zero gamma, dealers' hedging feeds moves.",
        ["spot", "forward", "zero_gamma"],
        "none",
        decimals=0,
    )
    by_greek = strikes(
        "Greeks by strike",
        "Black-76 on the parity forward: theta per calendar day, vega per vol point.",
        lasts(*GREEKS),
        "none",
        kind="table",
    )
    return dashboard(
        "opchain-greeks",
        "opchain: Greeks and positioning",
        "Dealer gamma exposure by strike and in total, zero gamma, delta and gamma walls.",
        [INDEX, BUCKET],
        [
            (4, [(6, net), (6, flip), (6, forward), (6, above)]),
            (9, [(12, gex), (12, delta)]),
            (8, [(12, net_day), (12, flip_day)]),
            (9, [(24, by_greek)]),
        ],
    )


def levels() -> Panel:
    spot = chain_stat("Spot", "Last index level.", 'last("spot")', "none", decimals=2)
    pain = chain_stat(
        "Max pain",
        "Strike at which option holders would be paid the least.",
        'last("max_pain")',
        "none",
        decimals=0,
    )
    resistance = chain_stat(
        "Resistance (call wall)",
        "Strike at or above spot with the largest call OI.",
        'last("call_wall")',
        "none",
        thresholds=steps("red"),
        decimals=0,
    )
    support = chain_stat(
        "Support (put wall)",
        "Strike at or below spot with the largest put OI.",
        'last("put_wall")',
        "none",
        thresholds=steps("green"),
        decimals=0,
    )
    day = chain_series(
        "Levels through the day",
        "Spot between support (put wall) and resistance (call wall), with max pain and zero gamma.",
        ["spot", "call_wall", "put_wall", "max_pain", "zero_gamma"],
        "none",
        decimals=0,
    )
    walls = strikes(
        "OI walls: open interest by strike",
        "Latest cycle: the tallest call bar above spot is resistance, the tallest put bar below "
        "it support.",
        lasts("call_oi", "put_oi"),
        "short",
    )
    distance = target(
        'SELECT (last("spot") - last("max_pain")) / last("spot") * 100 AS above_max_pain '
        f'FROM "chain_analytics" WHERE {CHAIN} AND $timeFilter {SERIES}'
    )
    pain_day = timeseries(
        "Spot against max pain",
        "(spot - max pain) / spot: positive, spot above max pain.",
        [distance],
        "percent",
        SIGNED,
        decimals=2,
    )
    added = chain_series(
        "OI added since the previous close",
        "Calls added build resistance, puts added build support.",
        ["call_oi_change", "put_oi_change"],
        "short",
    )
    atm = target(
        'SELECT last("atm_strike") AS atm_strike FROM "chain_strike" WHERE '
        f"{CHAIN} AND \"offset\" = '0' AND $timeFilter {SERIES}"
    )
    atm_day = timeseries("ATM strike", "The strike nearest the money.", [atm], "none", decimals=0)
    return dashboard(
        "opchain-levels",
        "opchain: technical levels",
        "Max pain, OI walls (support and resistance) and where spot stands between them.",
        [INDEX, BUCKET],
        [
            (4, [(6, spot), (6, pain), (6, resistance), (6, support)]),
            (10, [(24, day)]),
            (9, [(12, walls), (12, pain_day)]),
            (8, [(12, added), (12, atm_day)]),
        ],
    )


HOSTS = '"host" =~ /^$host$/'
LOOP_LEVELS = steps("green", (10000, "yellow"), (25000, "red"))  # against a 30 s cadence
LATENCY_LEVELS = steps("green", (1000, "yellow"), (3000, "red"))
LAG_LEVELS = steps("green", (5, "yellow"), (15, "red"))
SPOOL_LEVELS = steps("green", (1, "yellow"), (10000, "red"))


def health_series(
    title: str, description: str, measurement: str, fields: list[str], unit: str, **kw: Any
) -> Panel:
    """The largest value per interval of each field (the worst cycle shows)."""
    columns = ", ".join(f'max("{name}") AS {name}' for name in fields)
    query = f'SELECT {columns} FROM "{measurement}" WHERE {HOSTS} AND $timeFilter {SERIES}'
    return timeseries(title, description, [target(query)], unit, **kw)


def health_stat(
    title: str, description: str, measurement: str, field: str, unit: str, **kw: Any
) -> Panel:
    query = f'SELECT last("{field}") FROM "{measurement}" WHERE {HOSTS} AND $timeFilter {SERIES}'
    return stat(title, description, [target(query)], unit, **kw)


def system() -> Panel:
    latency = target(
        'SELECT mean("quote_latency_ms") AS mean, max("quote_latency_ms") AS max FROM '
        f'"broker_health" WHERE {HOSTS} AND $timeFilter '
        'GROUP BY time($__interval), "api" fill(none)',
        alias="$tag_api $col",
    )
    limits = target(
        'SELECT max("http_429_count") AS http_429 FROM "broker_health" WHERE '
        f'{HOSTS} AND $timeFilter GROUP BY time($__interval), "api" fill(none)',
        alias="$tag_api $col",
    )
    errors = target(
        'SELECT max("kite_error_count") AS broker_errors, max("errors_in_tick") AS errors '
        f'FROM "monitor_status" WHERE {HOSTS} AND $timeFilter {SERIES}',
        ref="B",
    )
    statuses = target(
        'SELECT count("loop_duration_ms") FROM "monitor_status" WHERE '
        f'{HOSTS} AND $timeFilter GROUP BY "status"',
        alias="$tag_status",
    )
    stats = [
        health_stat(
            "Last loop",
            "The last cycle's loop.",
            "pipeline_tick",
            "loop_duration_ms",
            "ms",
            thresholds=LOOP_LEVELS,
        ),
        health_stat(
            "Legs now",
            "Option legs quoted in the last cycle.",
            "monitor_status",
            "legs_count",
            "short",
        ),
        health_stat(
            "Broker latency",
            "The last quote call.",
            "broker_health",
            "quote_latency_ms",
            "ms",
            thresholds=LATENCY_LEVELS,
        ),
        health_stat(
            "Quote lag",
            "From the cycle's time to the broker's answer.",
            "monitor_status",
            "lag_sec_atm_option_quote",
            "s",
            thresholds=LAG_LEVELS,
        ),
        health_stat(
            "Spooled now",
            "Points waiting for InfluxDB.",
            "influx_write_stats",
            "spool_points",
            "short",
            thresholds=SPOOL_LEVELS,
        ),
        stat("Cycles by status", "Cycles in the range, ok and degraded.", [statuses], "short"),
    ]
    loop = health_series(
        "Loop time",
        "Whole loop and the quote calls of legs and overview, the slowest per interval.",
        "pipeline_tick",
        ["loop_duration_ms", "atm_collect_ms", "overview_collect_ms"],
        "ms",
        thresholds=LOOP_LEVELS,
        line_thresholds=True,
    )
    legs = health_series(
        "Legs per cycle",
        "Option legs and overview instruments quoted each cycle.",
        "monitor_status",
        ["legs_count", "overview_count"],
        "short",
    )
    broker = timeseries(
        "Broker quote latency",
        "Mean and slowest quote call per interval.",
        [latency],
        "ms",
        LATENCY_LEVELS,
        True,
    )
    failures = timeseries(
        "Rate limits (429) and errors",
        "Answers 429 and failed requests, as counted this session.",
        [limits, errors],
        "short",
        steps("green", (1, "red")),
    )
    points = health_series(
        "InfluxDB points",
        "Points attempted, written and rejected.",
        "influx_write_stats",
        ["points_attempted", "points_written", "points_rejected"],
        "short",
    )
    flush = health_series(
        "InfluxDB write latency",
        "Flush latency of the write batches.",
        "influx_write_stats",
        ["flush_latency_ms"],
        "ms",
    )
    spool = health_series(
        "Spool depth",
        "Points spooled while InfluxDB is unreachable, and the batch queue.",
        "influx_write_stats",
        ["spool_points", "batch_queue_depth"],
        "short",
        thresholds=SPOOL_LEVELS,
    )
    lag = health_series(
        "Data lag",
        "From the cycle's time to the broker's answer.",
        "monitor_status",
        ["lag_sec_index_overview", "lag_sec_atm_option_quote"],
        "s",
        thresholds=LAG_LEVELS,
        line_thresholds=True,
    )
    calls = health_series(
        "Quote calls per cycle",
        "Broker quote calls a cycle and legs per call.",
        "pipeline_tick",
        ["kite_quote_calls", "kite_batch_size_avg"],
        "short",
    )
    return dashboard(
        "opchain-system",
        "opchain: system health",
        "The collector's loop, the broker, the InfluxDB writes and the spool.",
        [HOST],
        [
            (4, [(4, item) for item in stats]),
            (8, [(12, loop), (12, legs)]),
            (8, [(12, broker), (12, failures)]),
            (8, [(8, points), (8, flush), (8, spool)]),
            (8, [(12, lag), (12, calls)]),
        ],
    )


DASHBOARDS = {
    "sentiment": sentiment,
    "liquidity": liquidity,
    "greeks": greeks,
    "levels": levels,
    "system": system,
}


def rendered() -> dict[str, str]:
    """Each dashboard's file name and its JSON text, as written."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (OUT / name).write_text(text)
    print(f"wrote {len(DASHBOARDS)} dashboards to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
