"""Line protocol read back, for the tests (the subset opchain writes), and a real InfluxDB's
view of what was written."""

import re
from typing import Any, NamedTuple

import httpx


class Point(NamedTuple):
    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]  # float, int (``i``) or str
    ns: int


def _split(text: str, sep: str) -> list[str]:
    """Split at ``sep`` not escaped by a backslash and not inside a double-quoted string."""
    parts, current, quoted, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        if c == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _value(text: str) -> Any:
    if text.startswith('"'):
        return _unescape(text[1:-1])
    if text.endswith("i"):
        return int(text[:-1])
    return float(text)


def parse(line: str) -> Point:
    head, fields, ns = _split(line, " ")
    measurement, *tags = _split(head, ",")
    tag_pairs = dict(_split(t, "=") for t in tags)
    field_pairs = [_split(f, "=") for f in _split(fields, ",")]
    return Point(
        _unescape(measurement),
        {_unescape(k): _unescape(v) for k, v in tag_pairs.items()},
        {_unescape(k): _value(v) for k, v in field_pairs},
        int(ns),
    )


def create_database(url: str, db: str) -> None:
    httpx.post(f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}).raise_for_status()


def write(url: str, db: str, lines: list[str]) -> None:
    """POST the lines as opchain's writer does (v1, nanoseconds); fails on any rejected line."""
    answer = httpx.post(
        f"{url}/write", params={"db": db, "precision": "n"}, content="\n".join(lines).encode()
    )
    assert answer.status_code == 204, answer.text


def query(url: str, db: str, q: str) -> list[dict[str, Any]]:
    """The series of an InfluxQL query's first result (empty when none)."""
    answer = httpx.get(f"{url}/query", params={"db": db, "q": q})
    answer.raise_for_status()
    result = answer.json()["results"][0]
    assert "error" not in result, result
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def count(url: str, db: str, measurement: str, field: str) -> int:
    """Points of a measurement holding ``field``, over all its series."""
    found = query(url, db, f'SELECT COUNT("{field}") FROM "{measurement}"')
    return int(found[0]["values"][0][1]) if found else 0
