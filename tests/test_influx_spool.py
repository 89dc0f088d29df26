"""The InfluxDB spool on its own: order across segments and restarts, whole records handed
out by the batch, segments deleted once written, the bound, and damage found on opening (a torn
tail, a damaged record mid-file)."""

import logging
import math
import time
from pathlib import Path

import pytest

from opchain.outputs.influx.spool import HEADER, Spool


def drain(spool: Spool) -> list[bytes]:
    out = []
    while records := spool.peek():
        (record,) = records
        out.append(record.body)
        spool.pop()
    return out


def test_batches_come_back_in_order_across_segments_and_a_restart(tmp_path: Path) -> None:
    first = Spool(tmp_path, limit_bytes=4000)  # segments of 1000 bytes
    bodies = [bytes([i]) * 100 for i in range(30)]
    for body in bodies:
        assert first.append(body, 3)
    assert len(list(tmp_path.glob("*.seg"))) > 3
    assert first.peek() and first.peek() == first.peek()  # the same until pop
    first.pop()
    first.close()
    second = Spool(tmp_path, limit_bytes=4000)
    assert second.points == 90  # what was handed out before the restart comes again
    assert drain(second) == bodies
    assert second.empty() and second.points == 0 and second.disk_bytes == 0
    assert not list(tmp_path.glob("*.seg"))
    assert second.append(b"after", 1) and drain(second) == [b"after"]
    second.close()


def test_a_full_spool_refuses_and_takes_again_once_replayed(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit_bytes=1000)
    record = 100 + HEADER.size
    taken = [spool.append(bytes(100), 1) for _ in range(12)]
    assert taken == [True] * (1000 // record) + [False] * (12 - 1000 // record)
    assert spool.disk_bytes <= 1000
    drain(spool)
    assert spool.append(bytes(100), 1)
    spool.close()


def test_damage_found_on_opening_is_cut_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, limit_bytes=10_000)
    for i in range(3):
        assert spool.append(bytes([i]) * 50, 1)
    spool.close()
    (segment,) = tmp_path.glob("*.seg")
    data = bytearray(segment.read_bytes())
    second_record = HEADER.size + 50
    data[second_record + HEADER.size + 10] ^= 0xFF  # a flipped byte in the second batch
    segment.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        reopened = Spool(tmp_path, limit_bytes=10_000)
    assert drain(reopened) == [bytes(50)]  # the first; from the damage on, cut
    reopened.close()
    assert any("damaged" in r.getMessage() for r in caplog.records)
    (tmp_path / "000000000099.seg").write_bytes(b"OPSP\x01")  # a header torn after 5 bytes
    torn = Spool(tmp_path, limit_bytes=10_000)
    assert torn.empty()
    torn.close()
    assert not (tmp_path / "000000000099.seg").exists()


def test_a_peek_hands_out_whole_records_up_to_a_batch_across_segments(tmp_path: Path) -> None:
    spool = Spool(tmp_path, limit_bytes=4000)  # segments of 1000 bytes: 8 records each
    assert spool.oldest_at() is None and spool.peek(100) == []
    before = time.monotonic()
    for i in range(20):
        assert spool.append(bytes([i]) * 100, 3)
    assert before <= (spool.oldest_at() or 0) <= time.monotonic()
    taken = spool.peek(3 * 10 + 2)  # ten records fit, the eleventh does not
    assert [r.body[0] for r in taken] == list(range(10)) and spool.peek(32) == taken
    spool.pop()
    assert spool.points == 30 and spool.peek(1)[0].body == bytes([10]) * 100  # at least one
    spool.pop()
    assert [r.body[0] for r in spool.peek(1000)] == list(range(11, 20))
    spool.close()
    reopened = Spool(tmp_path, limit_bytes=4000)  # the pop of 11..19 never happened
    assert reopened.oldest_at() == -math.inf  # found on disk: due at once
    assert [r.body[0] for r in reopened.peek(1000)][-9:] == list(range(11, 20))
    reopened.pop()
    assert reopened.empty() and reopened.oldest_at() is None
    assert not list(tmp_path.glob("*.seg"))
    reopened.close()


def test_damage_met_by_a_peek_ends_the_batch_before_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path, limit_bytes=10_000)
    for i in range(3):
        assert spool.append(bytes([i]) * 50, 1)
    (segment,) = tmp_path.glob("*.seg")
    with segment.open("r+b") as f:  # the second record's batch damaged after it was appended
        f.seek(2 * HEADER.size + 50 + 10)
        f.write(b"\xff")
    assert [r.body for r in spool.peek(100)] == [bytes(50)]
    spool.pop()
    with caplog.at_level(logging.WARNING):
        assert spool.peek(100) == []  # the rest of the segment skipped
    assert spool.empty() and any("damaged" in r.getMessage() for r in caplog.records)
    spool.close()
