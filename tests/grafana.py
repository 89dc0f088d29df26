"""What the Grafana tests share: the dashboards and provisioning of deploy/grafana read as
files, the names docs/influxdb.md gives each measurement, and the macros of a raw InfluxQL
target substituted the way Grafana's InfluxDB data source does before it sends the query."""

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import yaml

from opchain.market.expiry import BUCKETS

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "influxdb.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "opchain.yaml"
SCHEMA_DOC = ROOT / "docs" / "influxdb.md"

Json = dict[str, Any]


def dashboards() -> dict[str, Json]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: Json) -> Iterator[Json]:
    """Every panel, those inside collapsed rows too."""
    for item in dashboard.get("panels", []):
        yield item
        yield from item.get("panels", [])


def datasource() -> Json:
    sources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(sources) == 1
    source: Json = sources[0]
    return source


class Target(NamedTuple):
    file: str
    panel: str
    ref: str
    query: str
    kind: str  # the panel's type: timeseries, stat, barchart, ...


def targets() -> list[Target]:
    """Every query of every panel of every dashboard file, found by parsing them."""
    return [
        Target(name, item["title"], target["refId"], target["query"], item["type"])
        for name, dashboard in dashboards().items()
        for item in panels(dashboard)
        for target in item.get("targets", [])
    ]


# docs/influxdb.md --------------------------------------------------------------------------

_MEASUREMENT = re.compile(r"^(?:### |- )`([a-z_]+)`")  # a heading, or a health bullet
_TICKS = re.compile(r"`([^`]+)`")


def _expand(token: str) -> list[str]:
    """``<BUCKET>_TP`` and ``pcr_<bucket>`` name one field per bucket."""
    if "<BUCKET>" in token:
        return [token.replace("<BUCKET>", bucket.upper()) for bucket in BUCKETS]
    if "<bucket>" in token:
        return [token.replace("<bucket>", bucket) for bucket in BUCKETS]
    return [token]


def schema() -> dict[str, set[str]]:
    """Measurement → the tag and field names its part of docs/influxdb.md puts in backticks
    (the prose between them is ignored; ``call_`` and ``put_`` prefix the names after them)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in SCHEMA_DOC.read_text().splitlines():
        heading = _MEASUREMENT.match(line)
        if heading:
            current = blocks.setdefault(heading.group(1), [])
        elif line.startswith("#"):
            current = None
        if current is not None:
            current.append(line)
    names: dict[str, set[str]] = {}
    for measurement, lines in blocks.items():
        text = "\n".join(lines)
        sides = "`call_` and `put_`"
        plain, _, prefixed = text.partition(sides) if sides in text else (text, "", "")
        names[measurement] = _ticked(plain) | {
            side + name for side in ("call_", "put_") for name in _ticked(prefixed)
        }
    return names


def _ticked(text: str) -> set[str]:
    return {
        name
        for span in _TICKS.findall(text)
        for token in re.split(r"[,\s]+", span)
        if re.fullmatch(r"[A-Za-z_<>][A-Za-z0-9_<>]*", token.strip(". "))
        for name in _expand(token.strip(". "))
    }


def not_written() -> set[str]:
    """The names docs/influxdb.md lists and then says the encoder leaves out
    ("`a`, `b` and `c` are not written")."""
    text = " ".join(SCHEMA_DOC.read_text().split())
    return {
        name
        for found in re.findall(r"((?:`\w+`(?:, | and )?)+) (?:is|are) not written", text)
        for name in _TICKS.findall(found)
    }


def doc_words() -> set[str]:
    """Every word of docs/influxdb.md's backticked spans: the tag values it names."""
    return {
        word
        for span in _TICKS.findall(SCHEMA_DOC.read_text())
        for word in re.split(r"[,\s]+|\.\.\.", span)
        if word
    } | {span for span in _TICKS.findall(SCHEMA_DOC.read_text())}


# The query text -----------------------------------------------------------------------------

_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")
_IDENTIFIER = re.compile(r'"((?:[^"\\]|\\.)*)"')
_REGEX = re.compile(r"/(?:[^/\\]|\\.)*/")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_FROM = re.compile(r'\bFROM\s+"([^"]+)"', re.IGNORECASE)
_ALIAS = re.compile(r"\bAS\s+(\w+)", re.IGNORECASE)

# What a query may say outside quotes: InfluxQL's keywords and the functions the dashboards use.
INFLUXQL_WORDS = {
    "select",
    "from",
    "where",
    "and",
    "or",
    "as",
    "group",
    "by",
    "time",
    "fill",
    "none",
    "null",
    "show",
    "tag",
    "values",
    "with",
    "key",
    "order",
    "asc",
    "desc",
    "limit",
    "last",
    "first",
    "mean",
    "max",
    "min",
    "sum",
    "count",
    "median",
    "spread",
    "difference",
    "non_negative_difference",
}
BUILTINS = {
    "timeFilter",
    "__interval",
    "__interval_ms",
    "interval",
    "__from",
    "__to",
    "__range",
    "__range_s",
    "__range_ms",
    "__dashboard",
}


def measurements_named(query: str) -> list[str]:
    return _FROM.findall(query)


def quoted_names(query: str) -> list[str]:
    """The double-quoted identifiers: measurements, fields and tags."""
    return _IDENTIFIER.findall(_STRING.sub("''", query))


def tag_values(query: str) -> list[str]:
    """The single-quoted literals a query compares tags with."""
    return _STRING.findall(query)


def variables_used(query: str) -> set[str]:
    return {next(name for name in match if name) for match in _VARIABLE.findall(query)} - BUILTINS


def bare_words(query: str) -> set[str]:
    """Words outside quotes, regexes and variables that are neither InfluxQL nor an alias:
    a measurement, field or tag named without double quotes (unchecked against the doc)."""
    text = _VARIABLE.sub(" ", _REGEX.sub(" ", _IDENTIFIER.sub(" ", _STRING.sub(" ", query))))
    aliases = {alias.lower() for alias in _ALIAS.findall(text)}
    words = {word.lower() for word in re.findall(r"[A-Za-z_]\w*", text)}
    # durations such as 1m and numbers are not words: the regex needs a leading letter
    return words - INFLUXQL_WORDS - aliases


# Grafana's substitution (public/app/plugins/datasource/influxdb: interpolateQueryExpr) --------

_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|{}\[\]/-]")


def _regex_escape(value: str) -> str:
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def format_value(values: Sequence[str], multi: bool) -> str:
    """A variable's value as Grafana puts it into an InfluxQL query: a single-value variable
    as it is (backslashes and quotes escaped); a multi-value or All one regex-escaped, more
    than one value as ``(a|b)``."""
    if not multi:
        (value,) = values
        return value.replace("\\", "\\\\").replace("'", "\\'")
    escaped = [_regex_escape(value) for value in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


class Range(NamedTuple):
    start_ms: int
    end_ms: int
    interval: str = "1m"
    interval_ms: int = 60_000


def substitute(query: str, chosen: Mapping[str, str], span: Range) -> str:
    """The query as Grafana sends it: macros over ``span``, variables as ``chosen`` holds them
    already formatted (``format_value``). (A range ending "now" ends ``time <= now()`` in
    Grafana's filter; the recorded day is in the past, so both ends are fixed here.)"""
    macros = {
        "timeFilter": f"time >= {span.start_ms}ms and time <= {span.end_ms}ms",
        "__interval_ms": str(span.interval_ms),
        "__interval": span.interval,
        "interval": span.interval,
        "__from": str(span.start_ms),
        "__to": str(span.end_ms),
        "__range_ms": str(span.end_ms - span.start_ms),
        "__range_s": str((span.end_ms - span.start_ms) // 1000),
        "__range": f"{(span.end_ms - span.start_ms) // 1000}s",
    }
    values = {**macros, **chosen}

    def replace(match: re.Match[str]) -> str:
        name = next(part for part in match.groups() if part)
        if name not in values:
            raise KeyError(f"${name} is neither a Grafana macro nor a variable of the dashboard")
        return values[name]

    return _VARIABLE.sub(replace, query)


# Running a query ----------------------------------------------------------------------------


def run(client: httpx.Client, db: str, query: str) -> Json:
    response = client.post("/query", data={"db": db, "q": query, "epoch": "ms"})
    assert response.status_code in (200, 400), response.text
    answer: Json = response.json()
    return answer


def problems(answer: Json) -> list[str]:
    """Why an InfluxDB answer would leave a panel empty: an error, no series, or a column
    with no value in any row (a field the data does not have)."""
    found = [answer["error"]] if "error" in answer else []
    for result in answer.get("results", []):
        if "error" in result:
            found.append(result["error"])
            continue
        series = result.get("series", [])
        if not series or not any(item.get("values") for item in series):
            found.append("no rows")
            continue
        for position, column in enumerate(series[0]["columns"]):
            if column == "time":
                continue
            if all(row[position] is None for item in series for row in item.get("values", [])):
                found.append(f"column {column} has no value")
    return found


def options(
    client: httpx.Client, db: str, query: str, chosen: Mapping[str, str], span: Range
) -> list[str]:
    """A query variable's values: its SHOW TAG VALUES query run as Grafana runs it."""
    answer = run(client, db, substitute(query, chosen, span))
    assert not problems(answer), (query, problems(answer))
    return sorted(row[1] for item in answer["results"][0]["series"] for row in item["values"])


def choose(client: httpx.Client, db: str, variables: list[Json], span: Range) -> dict[str, str]:
    """Each variable's current value as Grafana formats it, in dashboard order (a variable's
    query may use those before it); the current value must be one the data offers."""
    chosen: dict[str, str] = {}
    for variable in variables:
        offered = options(client, db, variable["query"], chosen, span)
        current = variable["current"]["value"]
        picked = offered if current in ("$__all", ["$__all"]) else current
        picked = [picked] if isinstance(picked, str) else picked
        assert set(picked) <= set(offered), (variable["name"], picked, offered)
        multi = variable.get("multi", False) or variable.get("includeAll", False)
        chosen[variable["name"]] = format_value(picked, multi)
    return chosen
