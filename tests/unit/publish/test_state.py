"""The open-window store, the report ledger and the per-camera lock."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge.analytics.aggregate import WindowState
from edge.camera_lock import CameraBusy, CameraLocks, normalised_source
from edge.legal.audit import AuditLog
from edge.publish.state import ALREADY_REPORTED, ReportLedger, WindowStore
from tests.conftest import wait_until


def payload(start: float, seconds: float = 60.0, n: int = 7, **kw: Any) -> dict[str, Any]:
    return {
        "camera": "door", "start": start, "end": start + seconds, "policy_sha256": "a" * 64,
        "report_id": f"r{int(start)}", "lines": {"l": {"in": {"pedestrian": n}}}, **kw,
    }  # fmt: skip


@pytest.mark.parametrize(("start", "seconds"), [(0.0, 60.0), (1_700_000_100.0, 300.0)])
def test_the_ledger_refuses_a_second_different_report_of_a_window(
    tmp_path: Path, start: float, seconds: float
) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        ledger = ReportLedger(tmp_path / "s.sqlite", audit)
        assert ledger.claim(payload(start, seconds)) == ""
        assert ledger.claim(dict(reversed(payload(start, seconds).items()))) == ""  # same
        assert ledger.claim(payload(start, seconds, n=8)) == ALREADY_REPORTED
        assert ledger.claim(payload(start, seconds, observed_s=3.0)) == ALREADY_REPORTED
        assert ledger.claim(payload(start + seconds, seconds, n=8)) == ""  # the next window
        ledger.close()
    again = ReportLedger(tmp_path / "s.sqlite")  # a restart remembers
    assert again.claim(payload(start, seconds, n=9)) == ALREADY_REPORTED
    assert again.refused == 1
    entries = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["event"], e["reason"], e["window_start"]) for e in entries] == [
        ("egress_drop", ALREADY_REPORTED, start)
    ] * 2


def test_the_ledger_forgets_past_its_retention_only(tmp_path: Path) -> None:
    now = [1000.0]
    ledger = ReportLedger(tmp_path / "s.sqlite", keep_days=1, clock=lambda: now[0])
    ledger.claim(payload(0.0))
    now[0] += 86000
    assert ledger.claim(payload(0.0, n=1)) == ALREADY_REPORTED
    ledger.close()
    now[0] += 1000
    again = ReportLedger(tmp_path / "s.sqlite", keep_days=1, clock=lambda: now[0])
    assert again.claim(payload(0.0, n=1)) == ""


def state(index: int = 5, **kw: Any) -> WindowState:
    data: dict[str, Any] = {
        "index": index, "seconds": 120.0, "first": index * 120.0 + 1, "last": index * 120.0 + 9,
        "frames": 80, "observed": 7.9, "frame_period": 0.1,
        "lines": {"a": [[1, 0, 2], [0, 3, 0]]}, "occupancy_sum": {"z": [10, 0, 0]},
        "occupancy_max": {"z": [3, 0, 0]},
    }  # fmt: skip
    data.update(kw)
    return WindowState.from_json(data)


def test_the_store_keeps_aggregates_only_and_finds_a_camera_by_id_or_stream(
    tmp_path: Path,
) -> None:
    store = WindowStore(tmp_path / "s.sqlite", "p" * 64)
    store.save("door", "rtsp://h/x", state())
    store.save("door", "rtsp://h/x", state(6))  # one row per camera: the latest checkpoint
    assert [(o, s.index) for o, _, s in store.load("door", "")] == [("door", 6)]
    assert [o for o, _, _ in store.load("renamed", "rtsp://h/x")] == ["door"]
    assert store.load("other", "rtsp://h/y") == []
    row = (
        sqlite3.connect(tmp_path / "s.sqlite").execute("SELECT state FROM window_state").fetchone()
    )
    assert set(json.loads(row[0])) == {
        "index",
        "seconds",
        "first",
        "last",
        "frames",
        "observed",
        "frame_period",
        "lines",
        "occupancy_sum",
        "occupancy_max",
        "movements",
        "movement_lines",
    }  # fmt: skip  (no track id, box or per-object time)
    store.forget("door")
    assert store.load("door", "rtsp://h/x") == []


@pytest.mark.parametrize(
    "bad", [{"lines": {"a": [[1, 2]]}}, {"lines": {"a": [[-1, 0, 0], [0, 0, 0]]}}, {"seconds": 0}]
)
def test_a_damaged_state_is_discarded_and_audited(tmp_path: Path, bad: dict[str, Any]) -> None:
    good = state().to_json()
    with AuditLog(tmp_path / "audit.jsonl") as audit:
        store = WindowStore(tmp_path / "s.sqlite", "p" * 64, audit)
        store.save("door", "u", state())
        store._db.execute("UPDATE window_state SET state = ?", (json.dumps({**good, **bad}),))
        assert store.load("door", "u") == []
        assert store.load("door", "u") == []
    assert "window_state_discarded" in (tmp_path / "audit.jsonl").read_text()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("rtsp://user:pw@Cam.Local:554/live/", "rtsp://cam.local/live"),
        ("RTSP://cam.local/live?ch=1", "rtsp://other:secret@cam.local:554/live?ch=1"),
        ("http://10.0.0.7:80/mjpg", "http://10.0.0.7/mjpg/"),
    ],
)
def test_one_stream_has_one_name(a: str, b: str) -> None:
    assert normalised_source(a) == normalised_source(b)
    assert "pw" not in normalised_source(a) and "secret" not in normalised_source(b)


def test_different_streams_have_different_names() -> None:
    names = {normalised_source(u) for u in (
        "rtsp://cam/live", "rtsp://cam:8554/live", "rtsp://cam/live?ch=2", "rtsp://cam2/live",
    )}  # fmt: skip
    assert len(names) == 4


@pytest.mark.parametrize(
    ("held", "asked", "says"),
    [
        (("door", "rtsp://cam/a"), ("door", "rtsp://cam/b"), "camera id"),
        (("door", "rtsp://cam/a/"), ("hall", "rtsp://u:p@cam:554/a"), "stream rtsp://***@cam"),
        (("gate-2", "rtsp://10.1.1.1/s"), ("renamed", "rtsp://10.1.1.1/s"), "stream"),
    ],
)
def test_a_second_process_on_a_camera_is_refused(
    held: tuple[str, str], asked: tuple[str, str], says: str
) -> None:
    with CameraLocks([held]):
        with pytest.raises(CameraBusy) as err:
            CameraLocks([asked])
        message = str(err.value)
        assert f"camera '{asked[0]}'" in message and says in message
        assert f"process {os.getpid()}" in message and "\n" not in message
    CameraLocks([asked]).release()  # free again once released


def test_the_lock_is_freed_when_its_process_is_killed(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from edge.camera_lock import CameraLocks\n"
        "locks = CameraLocks([('door', 'rtsp://cam/x')])\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(CameraBusy, match=f"process {child.pid}"):
            CameraLocks([("door", "rtsp://cam/y")])
        child.kill()
        child.wait()

        def free() -> bool:
            try:
                CameraLocks([("door", "rtsp://cam/x")]).release()
            except CameraBusy:
                return False
            return True

        assert wait_until(free, 5.0)
    finally:
        child.kill()
        child.wait()


def test_a_full_disk_keeps_claims_in_memory_and_writes_them_later(tmp_path: Path) -> None:
    """A claim the file cannot take (disk full) is kept and still refuses a second different
    report of that window; it reaches the file with the next claim that can be written."""
    ledger = ReportLedger(tmp_path / "spool.sqlite")
    real = ledger._db
    ledger._db = FullDisk()  # type: ignore[assignment]
    for start in (0.0, 60.0, 120.0):
        assert ledger.claim(payload(start)) == ""
        assert ledger.claim(payload(start, n=9)) == ALREADY_REPORTED  # refused from memory
    ledger._db = real
    assert ledger.claim(payload(600.0)) == ""
    ledger.close()
    reopened = ReportLedger(tmp_path / "spool.sqlite")
    for start in (0.0, 60.0, 120.0):  # the remembered claims reached the file
        assert reopened.claim(payload(start, n=9)) == ALREADY_REPORTED
    reopened.close()


class FullDisk:
    """A connection on a full disk: every statement fails as SQLite says it then."""

    def execute(self, *args: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")
