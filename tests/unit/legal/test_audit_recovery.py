"""A torn audit tail (a crash or a full disk mid-append) is set aside and recorded in the chain
at the next start, instead of blocking every restart; a log broken anywhere else still refuses."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.legal.audit import AuditError, AuditLog, verify_audit


def make_log(path: Path) -> bytes:
    with AuditLog(path) as log:
        log.append("start", cameras=["a"])
        log.append("window", count=3)
        log.append("stop", frames_processed=10, interrupted=False)
    return path.read_bytes()


@pytest.mark.parametrize(
    "torn",
    [
        pytest.param(lambda last: last[:1], id="one-byte"),
        pytest.param(lambda last: last[: len(last) // 2], id="half-line"),
        pytest.param(lambda last: last[:-1], id="all-but-newline"),
        pytest.param(lambda last: b"\0" * len(last), id="zeros-after-crash"),
        pytest.param(lambda last: last[:20] + b"\n", id="not-json-with-newline"),
    ],
)
def test_a_torn_last_line_is_set_aside_and_recorded(tmp_path: Path, torn: object) -> None:
    path = tmp_path / "audit.jsonl"
    lines = make_log(path).splitlines(keepends=True)
    bad = torn(lines[-1])  # type: ignore[operator]
    path.write_bytes(b"".join(lines[:-1]) + bad)
    with AuditLog(path) as log:  # before: AuditError, "does not verify, not extending it"
        log.append("start", cameras=["a"])
    check = verify_audit(path)
    assert check.ok, check.reason
    entries = [json.loads(x) for x in path.read_bytes().splitlines()]
    assert [e["event"] for e in entries] == ["start", "window", "recovered", "start"]
    recovered = entries[2]
    assert recovered["bytes_set_aside"] == len(bad)
    assert (tmp_path / recovered["set_aside"]).read_bytes() == bad


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda ls: [ls[0], ls[1][:-5] + b"xxxx\n", ls[2]], id="changed-middle"),
        pytest.param(lambda ls: [ls[0], ls[1][:-1], ls[2]], id="torn-middle"),
        pytest.param(lambda ls: [ls[0], ls[2]], id="deleted-middle"),
        pytest.param(lambda ls: [*ls[:2], ls[2][:-5] + b'000"}\n'], id="valid-json-bad-hash"),
    ],
)
def test_a_log_broken_elsewhere_still_refuses(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "audit.jsonl"
    lines = make_log(path).splitlines(keepends=True)
    path.write_bytes(b"".join(damage(lines)))  # type: ignore[operator]
    before = path.read_bytes()
    with pytest.raises(AuditError, match="does not verify"):
        AuditLog(path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.torn-*"))


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs (root only): a real ENOSPC, not an injected one."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.mark.parametrize(("free", "size"), [(0, 9000), (4096, 9000), (8192, 30000)])
def test_a_full_disk_mid_run_does_not_need_a_human(small_disk: Path, free: int, size: int) -> None:
    """The disk fills (``free`` bytes left when a ``size``-byte stop entry is written: nothing,
    or part of it, reaches the disk); once space returns the next start extends a log that
    verifies."""
    path = small_disk / "audit.jsonl"
    log = AuditLog(path)
    log.append("start", cameras=["a"])
    filler = small_disk / "filler"
    with filler.open("wb", buffering=0) as f:  # fill the disk, then give back `free` bytes
        try:
            while f.write(b"x" * 4096):
                pass
        except OSError:
            pass
    os.truncate(filler, max(filler.stat().st_size - free, 0))
    with pytest.raises(AuditError):
        log.append("stop", frames_processed=1, padding="p" * size)
    filler.unlink()  # space comes back
    with AuditLog(path) as again:  # before: refused, torn stop entry
        again.append("start", cameras=["a"])
    assert verify_audit(path).ok
