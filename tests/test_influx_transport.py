"""What the InfluxDB transport sends and how it reads answers the real servers of
test_influx_writer.py do not give on demand: 413 (split), 429 with Retry-After, 401, 5xx, a 400
that is not a parse error; the v1 and v2 requests' exact form."""

from typing import Literal

import pytest
from starlette.responses import JSONResponse, Response

from opchain.outputs.influx.transport import Target, Transport, compress, target_from
from opchain.settings import Settings

from .servers_influx import fake_influx


def target(url: str, api: Literal["v1", "v2"] = "v1", token: str | None = None) -> Target:
    return Target(url=url, api=api, db="opchain", bucket="b", org="o", token=token, timeout=5)


LINES = [f"m,k=a v={i}i {i}" for i in range(8)]


def test_v1_and_v2_requests() -> None:
    with fake_influx() as fake:
        for api in ("v1", "v2"):
            transport = Transport(target(fake.url, api, token="secret"))  # type: ignore[arg-type]
            outcome = transport.send(compress(LINES), len(LINES))
            transport.close()
            assert (outcome.kind, outcome.written) == ("written", 8)
    v1, v2 = fake.seen
    assert (v1.path, v1.params) == ("/write", {"db": "opchain", "precision": "n"})
    assert (v2.path, v2.params) == ("/api/v2/write", {"bucket": "b", "org": "o", "precision": "ns"})
    assert v2.headers["authorization"] == "Token secret"
    assert v1.lines == LINES and v2.lines == LINES


def test_a_batch_too_large_is_split_until_it_fits() -> None:
    with fake_influx() as fake:
        fake.max_lines = 2
        transport = Transport(target(fake.url))
        outcome = transport.send(compress(LINES), len(LINES))
        transport.close()
    assert (outcome.kind, outcome.written, outcome.rejected) == ("written", 8, 0)
    taken = [line for s in fake.seen if len(s.lines) <= 2 for line in s.lines]
    assert taken == LINES  # in order, each once


def test_answers_that_keep_the_batch_for_later() -> None:
    with fake_influx() as fake:
        fake.answers = [
            Response(status_code=429, headers={"Retry-After": "7"}),
            JSONResponse({"error": "unauthorized"}, status_code=401),
            Response("overloaded", status_code=503),
        ]
        transport = Transport(target(fake.url))
        outcomes = [transport.send(compress(LINES), 8) for _ in range(3)]
        transport.close()
    assert [o.kind for o in outcomes] == ["down"] * 3
    assert outcomes[0].retry_after == 7.0
    assert outcomes[1].detail == "HTTP 401: unauthorized"
    assert outcomes[2].detail == "HTTP 503: overloaded" and outcomes[2].retry_after is None


def test_a_bad_request_that_names_no_line_rejects_the_batch() -> None:
    with fake_influx() as fake:
        fake.answers = [JSONResponse({"error": "field type conflict"}, status_code=400)]
        transport = Transport(target(fake.url))
        outcome = transport.send(compress(LINES), 8)
        transport.close()
    assert (outcome.kind, outcome.written, outcome.rejected) == ("rejected", 0, 8)
    assert outcome.detail == "field type conflict"


def test_a_missing_database_is_created_and_the_batch_sent_again() -> None:
    with fake_influx() as fake:
        fake.answers = [JSONResponse({"error": 'database not found: "opchain"'}, status_code=404)]
        transport = Transport(target(fake.url))
        outcome = transport.send(compress(LINES), 8)
        transport.close()
    assert (outcome.kind, outcome.written) == ("written", 8)
    assert fake.queries == ['CREATE DATABASE "opchain"']
    assert [s.lines for s in fake.seen] == [LINES, LINES]


def test_a_partial_write_counts_only_the_points_it_names() -> None:
    conflict = 'partial write: field type conflict: input field "v" on measurement "m" is type '
    pad = "x" * 80
    many = "\n".join(f"unable to parse 'm,k={i},p={pad} v=': no field value" for i in range(5))
    answers = [
        f"{conflict}integer, already exists as type float dropped=1",
        f"partial write: {many} dropped=0",  # longer than a log line keeps
        "partial write: unable to parse 'm v= 2': missing field value\n"
        "unable to parse 'bad': invalid field format dropped=0",
    ]
    with fake_influx() as fake:
        fake.answers = [JSONResponse({"error": a}, status_code=400) for a in answers]
        transport = Transport(target(fake.url))
        outcomes = [transport.send(compress(LINES), 8) for _ in answers]
        transport.close()
    assert [(o.kind, o.written, o.rejected) for o in outcomes] == [
        ("rejected", 7, 1),
        ("rejected", 3, 5),
        ("rejected", 6, 2),
    ]
    assert len(outcomes[1].detail) == 500


def test_a_v2_target_needs_a_bucket() -> None:
    settings = Settings(influxdb_url="http://127.0.0.1:1", influxdb_api="v2")
    with pytest.raises(ValueError, match="influxdb_bucket"):
        target_from(settings)
