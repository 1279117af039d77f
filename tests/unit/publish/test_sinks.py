"""Sinks are independent: one that fails (a full disk, a real tmpfs) keeps its reports in a
bounded queue, audited once per outage, and loses none once space returns; the others never
wait for it. One process per spool and audit log."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from edge.camera_lock import CameraBusy, FileLocks
from edge.legal.audit import AuditLog
from edge.publish.sinks import CollectSink, GuardedSink, JsonlSink
from edge.publish.spool import Spool
from edge.schema import PublishedReport


class Report:
    """Just what the sinks read of a ``PublishedReport``."""

    def __init__(self, k: int) -> None:
        self.report_id = f"r{k}"
        self.k = k

    def model_dump_json(self) -> str:
        return json.dumps({"report_id": self.report_id, "pad": "x" * 900})


def report(k: int) -> PublishedReport:
    return cast(PublishedReport, Report(k))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:
        try:
            while f.write(b"x" * 4096):
                pass
        except OSError:
            pass
    return filler


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.mark.parametrize("full_after", [0, 3, 7])
def test_a_full_disk_under_jsonl_holds_reports_and_loses_none(
    small_disk: Path, tmp_path: Path, full_after: int
) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    jsonl = GuardedSink("jsonl", JsonlSink(small_disk / "out.jsonl"), audit, retry_s=60)
    other = CollectSink()
    filler = None
    for k in range(12):
        if k == full_after:
            filler = fill(small_disk)
        jsonl.send(report(k))  # never raises (before: OSError, the run exited 1)
        other.send(report(k))
    assert len(other.reports) == 12  # the other sink never waited
    assert jsonl.error.startswith("jsonl: PublishError")
    assert filler is not None
    filler.unlink()  # space comes back
    jsonl.retry()
    assert jsonl.error == ""
    written = [
        json.loads(x)["report_id"] for x in (small_disk / "out.jsonl").read_text().split("\n") if x
    ]
    assert written == [f"r{k}" for k in range(12)]  # all, in order, once, no torn line
    jsonl.close()
    audit.close()
    kinds = [e["event"] for e in events(tmp_path / "audit.jsonl")]
    assert kinds == ["sink_failed", "sink_recovered"]  # once per outage


def test_a_full_disk_under_the_spool_holds_reports(small_disk: Path, tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    spool = Spool(small_disk / "spool.sqlite", audit=audit)

    class SpoolSink:
        def send(self, r: PublishedReport) -> None:
            spool.put("t", r.model_dump_json().encode(), r.report_id, 0.0)

    guard = GuardedSink("mqtt", SpoolSink(), audit, retry_s=60)
    filler = fill(small_disk)
    for k in range(40):
        guard.send(report(k))
    assert guard.error
    filler.unlink()
    guard.retry()
    assert guard.error == "" and spool.depth == 40
    guard.close()
    spool.close()


def test_past_the_bound_the_oldest_are_dropped_and_audited(tmp_path: Path) -> None:
    class Broken:
        def send(self, r: PublishedReport) -> None:
            raise OSError(28, "No space left on device")

    audit = AuditLog(tmp_path / "audit.jsonl")
    guard = GuardedSink("jsonl", Broken(), audit, max_held=3, retry_s=60)
    for k in range(5):
        guard.send(report(k))
    assert guard.dropped == 2
    guard.close()  # the three still held are audited as dropped at stop
    audit.close()
    dropped = [
        e["report_id"] for e in events(tmp_path / "audit.jsonl") if e["event"] == "sink_dropped"
    ]
    assert dropped == ["r0", "r1", "r2", "r3", "r4"]


@pytest.mark.parametrize("what", ["spool", "audit log"])
def test_a_second_process_on_one_file_is_refused(tmp_path: Path, what: str) -> None:
    path = tmp_path / "file"
    link = tmp_path / "link"
    link.symlink_to(path)
    with FileLocks([(what, path)]):
        with pytest.raises(CameraBusy, match=f"{what} .* is already used by process"):
            FileLocks([(what, link)])  # another spelling of the same file
        FileLocks([(what, tmp_path / "other")]).release()
    FileLocks([(what, path)]).release()  # free again once the holder is gone
