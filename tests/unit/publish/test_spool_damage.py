"""A damaged spool file never stops delivery: bytes overwritten at several places of a real
SQLite file, then the spool drained as the publisher does. Every report that comes out is one
that went in, byte for byte; the rest are counted in the audit log; new reports still go in."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from edge.legal.audit import AuditLog, verify_audit
from edge.publish.spool import Spool
from edge.publish.state import WindowStore

REPORTS = 1500


def payload(k: int) -> bytes:
    return json.dumps({"report_id": f"r{k}", "pad": "x" * 200}).encode()


def filled(path: Path) -> None:
    """A spool of REPORTS rows, written in one transaction (fast), checkpointed into the file."""
    Spool(path).close()
    db = sqlite3.connect(path)
    db.executemany(
        "INSERT INTO spool (topic, payload, report_id, window_start, spooled_at, payload_sha256)"
        " VALUES ('t', ?, ?, ?, ?, ?)",
        [
            (payload(k), f"r{k}", 60.0 * k, time.time(), hashlib.sha256(payload(k)).hexdigest())
            for k in range(REPORTS)
        ],
    )
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def damage(path: Path, fraction: float, size: int = 200) -> None:
    data = bytearray(path.read_bytes())
    at = int(len(data) * fraction)
    data[at : at + size] = bytes((7 * i + 13) % 256 for i in range(size))
    path.write_bytes(bytes(data))


def drain(spool: Spool) -> list[bytes]:
    out: list[bytes] = []
    while batch := spool.pending(limit=50):
        for item in batch:
            out.append(item.payload)
            spool.ack(item.row)
    return out


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3, 0.55, 0.8, 0.999])
def test_a_damaged_page_is_set_aside_and_the_rest_delivered(
    tmp_path: Path, fraction: float
) -> None:
    path = tmp_path / "spool.sqlite"
    filled(path)
    damage(path, fraction)
    audit = AuditLog(tmp_path / "audit.jsonl")
    spool = Spool(path, audit=audit)
    delivered = drain(spool)
    sent = {payload(k) for k in range(REPORTS)}
    assert set(delivered) <= sent  # nothing garbled goes out
    assert len(delivered) == len(set(delivered))
    assert spool.put("t", payload(REPORTS), f"r{REPORTS}", 1e9)  # new reports still go in
    assert drain(spool) == [payload(REPORTS)]
    spool.close()
    audit.close()
    entries = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    damaged = [e for e in entries if e["event"] == "spool_damaged"]
    lost = REPORTS - len(delivered)
    if lost:  # a loss is always said, with how many rows could not be kept
        assert len(damaged) == 1, entries
        assert damaged[0]["lost"] is None or damaged[0]["lost"] >= lost
        assert (tmp_path / damaged[0]["set_aside"]).exists()
    if entries:
        assert verify_audit(tmp_path / "audit.jsonl").ok


def test_window_state_moves_with_the_rebuilt_file(tmp_path: Path) -> None:
    """The window store shares the spool's file: after a rebuild it writes to the new one."""
    path = tmp_path / "spool.sqlite"
    filled(path)
    spool = Spool(path)
    store = WindowStore(path, "p" * 64)
    store.forget("cam")
    damage(path, 0.5)
    spool._db.execute("PRAGMA cache_size=0")  # read the damaged pages, not a cached copy
    drain(spool)
    store.forget("cam")  # follows the new file
    assert store._inode == path.stat().st_ino
    store.close()
    spool.close()


def test_a_payload_changed_on_disk_is_never_sent(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    audit = AuditLog(tmp_path / "audit.jsonl")
    spool = Spool(path, audit=audit)
    for k in range(3):
        spool.put("t", payload(k), f"r{k}", 60.0 * k)
    spool._db.execute("UPDATE spool SET payload = ? WHERE report_id = 'r1'", (b'{"bad":1}',))
    assert drain(spool) == [payload(0), payload(2)]
    audit.close()
    entries = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    (entry,) = [e for e in entries if e["event"] == "spool_damaged"]
    assert (entry["saved"], entry["changed"]) == (2, 1)
