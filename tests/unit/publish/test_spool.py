from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from edge.errors import PublishError
from edge.legal.audit import AuditLog
from edge.publish.spool import Spool


def fill(spool: Spool, starts: list[float]) -> None:
    for start in starts:
        spool.put("edge/site/cam/counts", f'{{"start": {start}}}'.encode(), f"id{start}", start)


def test_pending_is_in_window_order_and_ack_deletes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    fill(spool, [120, 0, 60])
    assert [r.window_start for r in spool.pending()] == [0, 60, 120]
    first = spool.pending()[0]
    spool.ack(first.row)
    assert [r.window_start for r in spool.pending()] == [60, 120]
    assert spool.depth == 2


def test_the_same_report_is_spooled_once(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    assert spool.put("t", b"{}", "abc", 0.0)
    assert not spool.put("t", b"{}", "abc", 0.0)
    assert spool.depth == 1


@pytest.mark.parametrize("copies", [2, 3])
def test_distinct_reports_with_one_id_are_all_kept(tmp_path: Path, copies: int) -> None:
    """Regression (issue 15, item 10): two runs in one window wrote two reports under one id;
    ``INSERT OR IGNORE`` on topic + id kept one and nothing said so."""
    spool = Spool(tmp_path / "s.sqlite")
    for n in range(copies):
        assert spool.put("t", f'{{"n": {n}}}'.encode(), "same-id", 60.0)
        assert not spool.put("t", f'{{"n": {n}}}'.encode(), "same-id", 60.0)  # idempotent
    assert sorted(r.payload for r in spool.pending()) == [
        f'{{"n": {n}}}'.encode() for n in range(copies)
    ]


def test_a_spool_from_before_the_digest_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE spool (row INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,"
        " payload BLOB NOT NULL, report_id TEXT NOT NULL, window_start REAL NOT NULL,"
        " spooled_at REAL NOT NULL, UNIQUE (topic, report_id));"
        "CREATE INDEX spool_order ON spool (window_start, row);"
    )
    old.execute("INSERT INTO spool VALUES (7, 't', X'7B7D', 'id', 60.0, ?)", (time.time(),))
    old.commit()
    old.close()
    spool = Spool(path)
    assert [(r.row, r.payload) for r in spool.pending()] == [(7, b"{}")]
    assert spool.put("t", b'{"other": 1}', "id", 60.0)  # the new key takes a second payload
    assert not spool.put("t", b"{}", "id", 60.0)
    assert spool.depth == 2


def test_a_failed_write_is_audited_then_raised(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    spool = Spool(tmp_path / "s.sqlite", audit=audit)
    spool._db.execute("PRAGMA query_only = ON")  # as a full or read-only disk would
    with pytest.raises(PublishError, match="report r1 not spooled"):
        spool.put("t", b"{}", "r1", 0.0)
    audit.close()
    (entry,) = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert (entry["event"], entry["report_ids"]) == ("spool_write_failed", ["r1"])


def test_in_flight_rows_are_skipped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    fill(spool, [0, 60, 120])
    rows = spool.pending()
    assert [r.window_start for r in spool.pending(exclude=frozenset({rows[0].row}))] == [60, 120]
    assert len(spool.pending(limit=1)) == 1


def test_reports_survive_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    fill(spool, [0, 60])
    spool.close()
    again = Spool(tmp_path / "s.sqlite")
    assert [r.payload for r in again.pending()] == [b'{"start": 0}', b'{"start": 60}']


def test_full_spool_drops_the_oldest_and_audits_it(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    spool = Spool(tmp_path / "s.sqlite", max_reports=3, audit=audit)
    fill(spool, [0, 60, 120, 180, 240])
    assert [r.window_start for r in spool.pending()] == [120, 180, 240]
    audit.close()
    entries = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["report_ids"]) for e in entries] == [
        ("spool_full", ["id0"]),
        ("spool_full", ["id60"]),
    ]


def test_old_reports_expire(tmp_path: Path) -> None:
    now = [1000.0]
    audit = AuditLog(tmp_path / "audit.jsonl")
    spool = Spool(tmp_path / "s.sqlite", max_age_s=100, audit=audit, clock=lambda: now[0])
    fill(spool, [0])
    now[0] = 1050.0
    fill(spool, [60])
    now[0] = 1120.0
    assert [r.window_start for r in spool.pending()] == [60]
    audit.close()
    assert "spool_expired" in (tmp_path / "audit.jsonl").read_text()


def test_acks_from_another_thread(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite")
    fill(spool, [float(i) for i in range(200)])
    rows = spool.pending(limit=200)
    threads = [
        threading.Thread(target=lambda part=part: [spool.ack(r.row) for r in part])
        for part in (rows[::2], rows[1::2])
    ]
    for t in threads:
        t.start()
    fill(spool, [1000.0])
    for t in threads:
        t.join()
    assert [r.window_start for r in spool.pending()] == [1000.0]
