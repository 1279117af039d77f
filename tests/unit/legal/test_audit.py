from __future__ import annotations

import hashlib
import itertools
import json
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from edge.errors import EdgeError
from edge.legal.audit import GENESIS, AuditError, AuditLog, verify_audit

START = datetime(2025, 1, 31, 12, 0, tzinfo=timezone.utc)


def ticking_clock() -> Callable[[], datetime]:
    """One second later at each call, so entries are deterministic."""
    ticks = itertools.count()
    return lambda: START + timedelta(seconds=next(ticks), microseconds=7)


def make_log(path: Path, entries: int = 5) -> list[bytes]:
    """A log of ``entries`` lines (at least 2), line 2 holding a non-ASCII field value."""
    with AuditLog(path, clock=ticking_clock()) as log:
        log.append("start", model_sha256="ab" * 32)
        log.append("policy", accepted=True, name="café", rules=["a", "b"])
        for i in range(entries - 2):
            log.append("window", count=i, mean=0.5, by={"person": i})
    return lines_of(path)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def sha256_without_hash(entry: dict[str, Any]) -> str:
    """The documented hash, computed here independently of the module."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- writing and reading back ---------------------------------------------------------------


def test_round_trip_and_reopen_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "audit.jsonl"  # parents are created
    with AuditLog(path, clock=ticking_clock()) as log:
        assert log.last_hash == GENESIS
        first = log.append("start", version="0.1.0")
        second = log.append("window", count=3, ratio=0.25, tags=["x"], extra={"a": None})
        last = log.last_hash
    assert first["seq"] == 0 and first["prev"] == GENESIS
    assert second["seq"] == 1 and second["prev"] == first["hash"] == sha256_without_hash(first)
    assert last == second["hash"] == sha256_without_hash(second)
    assert first["time"] == "2025-01-31T12:00:00.000007Z"
    assert list(second) == [
        "seq",
        "time",
        "event",
        "prev",
        "count",
        "ratio",
        "tags",
        "extra",
        "hash",
    ]
    assert [json.loads(line) for line in lines_of(path)] == [first, second]

    with AuditLog(path) as log:
        assert log.last_hash == last
        third = log.append("stop")
    assert third["seq"] == 2 and third["prev"] == last

    check = verify_audit(path)
    assert check.ok and check.entries == 3 and check.broken_line is None and check.reason == ""
    assert check.last_hash == third["hash"]


def test_empty_file_starts_a_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.touch()
    check = verify_audit(path)  # an empty log vouches for nothing: it does not verify
    assert not check.ok and check.entries == 0 and "empty" in check.reason
    with AuditLog(path) as log:
        entry = log.append("start")
    assert entry["seq"] == 0 and entry["prev"] == GENESIS
    assert verify_audit(path).entries == 1


def test_each_fsync_leaves_only_complete_json_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "audit.jsonl"
    real_fsync = os.fsync
    seen: list[int] = []

    def spy(fd: int) -> None:
        real_fsync(fd)
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n")
        for line in data.splitlines():
            json.loads(line)
        seen.append(len(data.splitlines()))

    monkeypatch.setattr(os, "fsync", spy)
    with AuditLog(path) as log:
        for i in range(3):
            log.append("window", count=i)
    # one fsync per append, each after its line was written (plus the new file's directory)
    assert seen[-3:] == [1, 2, 3]


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- what append refuses --------------------------------------------------------------------


@pytest.mark.parametrize("key", ["seq", "time", "event", "prev", "hash"])
def test_reserved_keys_are_rejected(tmp_path: Path, key: str) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log, pytest.raises(ValueError, match="reserved"):
        log.append("start", **{key: "x"})
    assert verify_audit(tmp_path / "audit.jsonl").entries == 0


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), -float("inf"), [1.0, float("nan")], {"a": float("inf")}]
)
def test_non_finite_numbers_are_rejected(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log, pytest.raises(ValueError, match="finite"):
        log.append("window", value=value)
    assert path.read_bytes() == b""


@pytest.mark.parametrize("value", [object(), (1, 2), {1, 2}, b"raw", {1: "int key"}])
def test_non_json_values_are_rejected(tmp_path: Path, value: Any) -> None:
    with AuditLog(tmp_path / "audit.jsonl") as log, pytest.raises(ValueError):
        log.append("window", value=value)


def test_bad_event_naive_clock_and_closed_log_are_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(ValueError, match="event"):
        log.append("")
    log.close()
    log.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        log.append("start")
    with AuditLog(tmp_path / "b.jsonl", clock=datetime.now) as naive, pytest.raises(ValueError):
        naive.append("start")


def test_a_second_writer_is_noticed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as one, AuditLog(path) as two:
        one.append("start")
        with pytest.raises(AuditError, match="changed since it was opened"):
            two.append("start")
        with pytest.raises(ValueError, match="closed"):
            two.append("again")
    assert verify_audit(path).ok and verify_audit(path).entries == 1


def test_appends_from_many_threads_keep_one_chain(tmp_path: Path) -> None:
    """Regression: the pipeline and the MQTT drain thread append to one log; two appends that
    overlapped took the same seq, tripped the size check and closed the log."""
    path = tmp_path / "audit.jsonl"
    threads, each = 8, 200
    start = threading.Barrier(threads)
    with AuditLog(path) as log:

        def append_many(worker: int) -> None:
            start.wait()  # all at once: as much overlap as the GIL lets through
            for i in range(each):
                log.append("window", worker=worker, i=i)

        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(append_many, w) for w in range(threads)]:
                done.result()  # re-raises an AuditError or "closed" from a worker
    check = verify_audit(path)
    assert check.ok, check.reason
    assert check.entries == threads * each
    entries = [json.loads(line) for line in lines_of(path)]
    for worker in range(threads):  # each thread's entries in the order it wrote them
        assert [e["i"] for e in entries if e["worker"] == worker] == list(range(each))


# --- tamper detection -----------------------------------------------------------------------


def flip(line: bytes, at: int) -> bytes:
    return line[:at] + bytes([line[at] ^ 0x01]) + line[at + 1 :]


def after(marker: bytes, skip: int = 0) -> Callable[[bytes], int]:
    return lambda line: line.index(marker) + len(marker) + skip


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda line: 0, id="opening-brace"),
        pytest.param(after(b'"seq":'), id="seq"),
        pytest.param(after(b'"time":"', 12), id="time"),
        pytest.param(after(b'"event":"', 2), id="event"),
        pytest.param(after(b'"prev":"', 20), id="prev"),
        pytest.param(after(b'"name":"', 1), id="field-value"),
        pytest.param(lambda line: line.index("é".encode()), id="non-ascii-byte"),
        pytest.param(after(b'"rules":["'), id="list-item"),
        pytest.param(after(b'"accepted":'), id="field-bool"),
        pytest.param(after(b'"hash":"', 5), id="hash"),
        pytest.param(lambda line: len(line) - 3, id="last-hash-digit"),
        pytest.param(lambda line: len(line) - 2, id="closing-brace"),
        pytest.param(lambda line: len(line) - 1, id="newline"),
    ],
)
def test_one_altered_byte_breaks_that_line(tmp_path: Path, where: Callable[[bytes], int]) -> None:
    path = tmp_path / "audit.jsonl"
    lines = make_log(path)
    lines[1] = flip(lines[1], where(lines[1]))
    write_lines(path, lines)
    check = verify_audit(path)
    assert not check.ok
    assert check.broken_line == 2 and check.entries == 1
    assert check.reason.startswith("line 2: ")


def test_every_single_byte_change_is_caught_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = make_log(path, entries=4)
    for number, line in enumerate(lines, start=1):
        for at in range(len(line)):
            for mask in (0x01, 0x20, 0x80):
                changed = list(lines)
                changed[number - 1] = line[:at] + bytes([line[at] ^ mask]) + line[at + 1 :]
                write_lines(path, changed)
                check = verify_audit(path)
                assert (check.ok, check.broken_line) == (False, number), (number, at, mask)


def test_reasons_name_what_is_wrong(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = make_log(path)
    cases = {
        "not JSON": [*lines[:2], b"{oops\n", *lines[3:]],
        "hash does not match its content": [
            *lines[:2],
            lines[2].replace(b'"count":0', b'"count":9'),
            *lines[3:],
        ],
        "not in the exact form": [*lines[:2], lines[2].replace(b'"seq":', b'"seq": '), *lines[3:]],
    }
    for reason, changed in cases.items():
        write_lines(path, changed)
        assert verify_audit(path).reason.startswith(f"line 3: {reason}")


def test_a_recomputed_hash_still_breaks_the_next_line(tmp_path: Path) -> None:
    """An attacker who rewrites line 2 and fixes its hash is caught by line 3's prev."""
    path = tmp_path / "audit.jsonl"
    lines = make_log(path)
    entry = json.loads(lines[1])
    entry["accepted"] = False
    entry["hash"] = sha256_without_hash(entry)
    lines[1] = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    write_lines(path, lines)
    check = verify_audit(path)
    assert (check.ok, check.broken_line) == (False, 3)
    assert check.reason == "line 3: prev does not match line 2's hash"


def test_a_forged_first_entry_must_start_from_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    entry: dict[str, Any] = {
        "seq": 0,
        "time": "2025-01-31T12:00:00.000000Z",
        "event": "start",
        "prev": "1" * 64,
    }
    entry["hash"] = sha256_without_hash(entry)
    path.write_bytes(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
    check = verify_audit(path)
    assert check.broken_line == 1 and "GENESIS" in check.reason


@pytest.mark.parametrize(
    ("tamper", "broken_line", "reason"),
    [
        pytest.param(lambda ls: ls[1:], 1, "line 1: seq 1, expected 0", id="delete-first"),
        pytest.param(
            lambda ls: ls[:2] + ls[3:], 3, "line 3: seq 3, expected 2", id="delete-middle"
        ),
        pytest.param(
            lambda ls: ls[:3] + ls[4:], 4, "line 4: seq 4, expected 3", id="delete-last-but-one"
        ),
        pytest.param(
            lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2, "line 2: seq 2, expected 1", id="swap"
        ),
        pytest.param(
            lambda ls: [*ls[:2], ls[1], *ls[2:]], 3, "line 3: seq 1, expected 2", id="duplicate"
        ),
        pytest.param(
            lambda ls: [*ls[:4], ls[4][:-10]], 5, "line 5: no newline", id="truncated-final-line"
        ),
        pytest.param(lambda ls: [*ls[:4], ls[4][:-1]], 5, "line 5: no newline", id="newline-cut"),
        pytest.param(
            lambda ls: [*ls[:2], ls[2][:30]], 3, "line 3: no newline", id="truncated-in-middle"
        ),
        pytest.param(lambda ls: [*ls[:2], b"\n", *ls[2:]], 3, "line 3: not JSON", id="blank-line"),
    ],
)
def test_line_level_tampering(
    tmp_path: Path,
    tamper: Callable[[list[bytes]], list[bytes]],
    broken_line: int,
    reason: str,
) -> None:
    path = tmp_path / "audit.jsonl"
    write_lines(path, tamper(make_log(path)))
    check = verify_audit(path)
    assert not check.ok
    assert check.broken_line == broken_line
    assert check.entries == broken_line - 1
    assert check.reason.startswith(reason)
    if "no newline" in reason:
        assert "torn" in check.reason


def test_a_cut_tail_is_only_seen_against_a_kept_hash(tmp_path: Path) -> None:
    """The limitation the module docstring states: the chain alone cannot see a missing tail."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append("start")
        early = log.last_hash  # e.g. printed at an earlier stop
        log.append("window", count=1)
        log.append("stop")
        kept = log.last_hash
    write_lines(path, lines_of(path)[:-1])
    assert verify_audit(path).ok  # undetected on its own
    check = verify_audit(path, expect_hash=kept)
    assert not check.ok and check.broken_line is None and "cut" in check.reason
    assert verify_audit(path, expect_hash=early).ok  # the log may grow after a kept hash


@pytest.mark.parametrize(
    ("tamper", "line"),
    [
        pytest.param(lambda ls: [ls[0], flip(ls[1], 40), *ls[2:]], 2, id="altered-byte"),
        pytest.param(lambda ls: ls[:2] + ls[3:], 3, id="deleted-line"),
        # a torn *last* line is recovered (test_audit_recovery.py); one in the middle is not
        pytest.param(lambda ls: [*ls[:2], ls[2][:-1], *ls[3:]], 3, id="torn-middle-line"),
    ],
)
def test_audit_log_refuses_to_extend_a_broken_file(
    tmp_path: Path, tamper: Callable[[list[bytes]], list[bytes]], line: int
) -> None:
    path = tmp_path / "audit.jsonl"
    write_lines(path, tamper(make_log(path)))
    before = path.read_bytes()
    with pytest.raises(AuditError, match=f"line {line}: ") as caught:
        AuditLog(path)
    assert isinstance(caught.value, EdgeError)
    assert path.read_bytes() == before


def test_missing_file_cannot_be_verified(tmp_path: Path) -> None:
    with pytest.raises(AuditError, match="cannot read"):
        verify_audit(tmp_path / "absent.jsonl")
