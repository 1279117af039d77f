"""A tamper-evident, append-only audit log: JSON Lines chained by SHA-256, fsync'd per entry.

Each line is one JSON object::

    {"seq": 0, "time": "2025-01-31T12:00:00.000000Z", "event": "start", "prev": "000…",
     ...fields, "hash": "9f2c…"}

``seq`` counts from 0 without gaps, ``time`` is UTC with microseconds, ``prev`` is the previous
entry's ``hash`` (``GENESIS`` for the first), and ``hash`` is the SHA-256 of the entry's
canonical JSON without the ``hash`` key (``sort_keys``, no spaces, UTF-8). A line must also be
byte for byte what this module writes, so a byte changed without changing the parsed value
(``1e+16`` -> ``1E+16``, a duplicated key) is caught too.

What the chain detects on its own: a changed byte, a deleted, inserted, duplicated or swapped
line, a removed first line, a cut in the middle, a torn last line (no newline after a crash), an
empty log (``verify_audit`` never passes one: it vouches for nothing).
What it cannot: **the tail cut off**, or **the log rewritten and re-chained** (an entry deleted
and every later ``seq``, ``prev`` and ``hash`` recomputed: no key is involved, anyone can
compute SHA-256). Both verify on their own. They fail against an anchor kept off the box:
``AuditLog.head`` (entry count and last hash) is what ``edge run`` publishes on the retained
MQTT topic ``<prefix>/<site>/audit`` and the dashboard keeps; ``verify_audit(path,
expect_hash=..., expect_entries=...)`` (``edge audit verify FILE --expect-head HASH
--expect-entries N``) then requires entry N to have that hash, so a log cut below N entries or
rewritten at or before entry N fails, while a log that merely grew since still passes. An
anchor vouches for every entry up to it, nothing after it: entries written since the last head
that reached the broker (a broker down for an hour leaves that hour unanchored) can still be cut
or rewritten undetected.
One writer at a time: a second writer is noticed at the next append (the file grew), not
prevented. Where the log is belongs to the installation (``edge --audit-log PATH``), never to
the configuration or the environment, so a refused configuration cannot choose where its
refusal is written.

The log must never hold personal data: no track ids, boxes, images, or free text from the
scene. That is the caller's duty; the log records decisions (started, policy accepted, model
hash, stopped) and counters, nothing about anyone seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias, cast

from edge.errors import EdgeError

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"

GENESIS = "0" * 64
RESERVED = frozenset({"seq", "time", "event", "prev", "hash"})

_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


class AuditError(EdgeError):
    """The audit log does not verify, or cannot be read or written; it is not extended."""


@dataclass(frozen=True)
class AuditCheck:
    """The result of verifying a log; ``reason`` is empty when ``ok``.

    entries: entries that verified (all of them when ok). broken_line: 1-based line of the first
    broken entry, None when ok or when only ``expect_hash`` failed. last_hash: hash of the last
    entry that verified (GENESIS if none), the value to keep elsewhere.
    """

    ok: bool
    entries: int
    broken_line: int | None
    reason: str
    last_hash: str


def canonical(obj: dict[str, Any]) -> bytes:
    """The bytes an entry's hash is taken over: independent of key order and spacing."""
    text = json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 hex of the entry's canonical JSON, without its ``hash`` key."""
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def _line(entry: dict[str, Any]) -> bytes:
    """An entry as written: compact, keys in insertion order (seq, time, event, prev, ..., hash)."""
    text = json.dumps(entry, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8") + b"\n"


def _check_value(value: object, where: str) -> None:
    """Only plain JSON: the entry read back must equal the entry written."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"audit field {where} is {value}: only finite numbers")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"audit field {where} has a non-string key {key!r}")
            _check_value(item, f"{where}[{key!r}]")
        return
    raise ValueError(f"audit field {where} is a {type(value).__name__}, not a JSON value")


class _Broken(Exception):
    """Internal: why one line does not continue the chain."""


def _verify_line(raw: bytes, expected_seq: int, prev_hash: str) -> str:
    """The line's hash if it continues the chain; raises _Broken with the reason if not."""
    if not raw.endswith(b"\n"):
        raise _Broken("no newline at the end: the last write was torn (crash during append?)")
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _Broken("not JSON") from None
    if not isinstance(entry, dict):
        raise _Broken("not a JSON object")
    try:
        rewritten = _line(entry)
    except ValueError:  # NaN or Infinity slipped in
        rewritten = b""
    if rewritten != raw:
        raise _Broken("not in the exact form this log writes (bytes changed)")
    for key in ("event", "prev", "hash"):
        if not isinstance(entry.get(key), str):
            raise _Broken(f"{key!r} missing or not a string")
    seq = entry.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise _Broken("'seq' missing or not an integer")
    time = entry.get("time")
    if not isinstance(time, str) or not _TIME.fullmatch(time):
        raise _Broken("'time' missing or not ISO-8601 UTC with microseconds")
    digest: str = entry["hash"]
    if digest != entry_hash(entry):
        raise _Broken("hash does not match its content")
    if seq != expected_seq:
        raise _Broken(f"seq {seq}, expected {expected_seq}")
    if entry["prev"] != prev_hash:
        if expected_seq == 0:
            raise _Broken("prev is not GENESIS for the first entry")
        raise _Broken(f"prev does not match line {expected_seq}'s hash")
    return digest


@dataclass(frozen=True)
class AuditHead:
    """The chain's head: how many entries, and the hash of the last one (GENESIS if none).
    Published off the box, it is the anchor ``verify_audit`` checks a log against."""

    entries: int
    hash: str


@dataclass(frozen=True)
class _Scan:
    check: AuditCheck
    size: int  # bytes that verified: the file's size when ok
    hashes: dict[int, str]  # entry number (1-based) -> hash, for the anchor's entries only


def _scan(lines: Iterable[bytes], expect_hash: str | None = None) -> _Scan:
    """Verify lines in order, stopping at the first broken one; remember where ``expect_hash``
    appears (by entry number), so an anchor can be checked without a second pass."""
    last = GENESIS
    size = count = 0
    hashes: dict[int, str] = {}
    for number, raw in enumerate(lines, start=1):
        try:
            last_now = _verify_line(raw, count, last)
        except _Broken as broken:
            check = AuditCheck(False, count, number, f"line {number}: {broken}", last)
            return _Scan(check, size, hashes)
        last = last_now
        size += len(raw)
        count += 1
        if last == expect_hash:
            hashes[count] = last
    return _Scan(AuditCheck(True, count, None, "", last), size, hashes)


def verify_audit(
    path: Path, *, expect_hash: str | None = None, expect_entries: int | None = None
) -> AuditCheck:
    """Check the whole chain, and that it is not empty; with an anchor kept elsewhere (a
    published ``AuditHead``: ``expect_hash`` and, better, ``expect_entries``) also that it was
    neither cut nor rewritten up to the anchor.

    The log may have grown since the anchor was taken: with ``expect_entries`` N the entry N
    must have ``expect_hash``; without it, some entry must.
    """
    if expect_entries is not None and (expect_hash is None or expect_entries < 1):
        raise ValueError("expect_entries needs expect_hash, and counts from 1")
    try:
        with path.open("rb") as f:
            scan = _scan(f, expect_hash)
    except OSError as err:
        raise AuditError(f"{path}: cannot read the audit log ({err.strerror})") from err
    check = scan.check
    if not check.ok:
        return check
    reason = ""
    if check.entries == 0:
        reason = "the log is empty: nothing recorded, or everything removed"
    elif expect_entries is not None and check.entries < expect_entries:
        reason = (
            f"{check.entries} entries, the anchor vouches for {expect_entries}: "
            "the log was cut or rewritten"
        )
    elif expect_entries is not None and expect_entries not in scan.hashes:
        reason = (
            f"entry {expect_entries} does not have the anchor's hash {expect_hash}: "
            "the log was rewritten at or before it"
        )
    elif expect_hash is not None and not scan.hashes:
        reason = f"no entry has the anchor's hash {expect_hash}: the log was cut or rewritten"
    if reason:
        return AuditCheck(False, check.entries, None, reason, check.last_hash)
    return check


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class AuditLog:
    """Append-only, hash-chained audit log. One JSON object per line.

    Opening an existing file verifies it first and continues its chain; a file that does not
    verify raises AuditError and is left untouched, so a tampered log is never silently extended.
    ``clock`` returns an aware datetime (tests inject a fixed one).

    Thread-safe: the pipeline and the MQTT drain thread (spool drops) append to one log, and
    two appends that overlapped would take the same ``seq`` and trip the size check.
    """

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._path = path
        self._clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, created = _open_append(path)
        except OSError as err:
            raise AuditError(f"{path}: cannot open the audit log ({err.strerror})") from err
        try:
            with os.fdopen(os.dup(fd), "rb") as reader:  # closing the copy keeps fd open
                scan = _scan(reader)
            if created:
                _fsync_dir(path.parent)
        except OSError as err:
            os.close(fd)
            raise AuditError(f"{path}: cannot read the audit log ({err.strerror})") from err
        check = scan.check
        torn = b""
        if not check.ok:
            try:
                torn = _torn_tail(fd, scan.size)
                if torn:
                    aside = _set_aside(path, torn, clock())
                    os.ftruncate(fd, scan.size)
                    os.fsync(fd)
            except OSError as err:
                os.close(fd)
                raise AuditError(f"{path}: cannot recover a torn tail ({err.strerror})") from err
            if not torn:
                os.close(fd)
                raise AuditError(
                    f"{path}: audit log does not verify, not extending it: {check.reason}"
                )
        self._file = os.fdopen(fd, "ab", buffering=0)
        self._seq = check.entries
        self._last = check.last_hash
        self._size = scan.size
        self._closed = False
        self._lock = threading.Lock()  # one append at a time: seq, time, hash and write agree
        if torn:  # said in the chain itself: a DPO sees that bytes were set aside, and where
            self.append(
                "recovered", reason=check.reason, bytes_set_aside=len(torn), set_aside=aside.name
            )

    @property
    def path(self) -> Path:
        return self._path

    @property
    def last_hash(self) -> str:
        """Hash of the last entry (GENESIS if empty): keep it elsewhere to detect a cut tail."""
        return self._last

    @property
    def head(self) -> AuditHead:
        """Entries and last hash, read together (another thread may be appending): the
        anchor ``edge run`` publishes."""
        with self._lock:
            return AuditHead(self._seq, self._last)

    def append(self, event: str, /, **fields: JsonValue) -> dict[str, JsonValue]:
        """Write one entry, durably (fsync) before returning it as stored on disk."""
        if self._closed:
            raise ValueError(f"{self._path}: append on a closed audit log")
        if not isinstance(event, str) or not event:
            raise ValueError("audit event must be a non-empty string")
        reserved = sorted(RESERVED & fields.keys())
        if reserved:
            raise ValueError(f"audit fields cannot use the reserved keys {reserved}")
        for name, value in fields.items():
            _check_value(value, name)
        with self._lock:
            if self._closed:  # closed by another thread (or a failed write) meanwhile
                raise ValueError(f"{self._path}: append on a closed audit log")
            moment = self._clock()  # read here: times follow seq
            if moment.tzinfo is None:
                raise ValueError("the audit clock must return an aware datetime")
            time = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            entry: dict[str, Any] = {"seq": self._seq, "time": time, "event": event}
            entry["prev"] = self._last
            entry.update(fields)
            try:
                entry["hash"] = entry_hash(entry)
                line = _line(entry)
            except (ValueError, UnicodeEncodeError) as err:
                raise ValueError(f"audit entry cannot be written as JSON: {err}") from err
            self._write(line)
            self._seq += 1
            self._last = entry["hash"]
        return cast("dict[str, JsonValue]", json.loads(line))

    def _write(self, line: bytes) -> None:
        """One write of the whole line, then flush and fsync; on any failure the log is closed.
        Called with ``_lock`` held."""
        try:
            if os.fstat(self._file.fileno()).st_size != self._size:
                self._shut()
                raise AuditError(
                    f"{self._path}: the audit log changed since it was opened (another writer?)"
                )
            written = self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as err:
            self._cut()
            self._shut()
            raise AuditError(f"{self._path}: cannot write the audit log ({err.strerror})") from err
        if written != len(line):
            self._cut()
            self._shut()
            raise AuditError(f"{self._path}: short write to the audit log, last line is torn")
        self._size += written

    def _cut(self) -> None:
        """After a failed write: remove a partial line now if the disk lets us (else the next
        start sets it aside). Called with ``_lock`` held."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._file.fileno(), self._size)

    def close(self) -> None:
        """Close the file; waits for an append under way, so its line is whole."""
        with self._lock:
            self._shut()

    def _shut(self) -> None:
        """Close; the caller holds ``_lock``."""
        if not self._closed:
            self._closed = True
            self._file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


MAX_TORN = 1 << 20  # a last line longer than any entry we write is not a torn append


def _torn_tail(fd: int, good: int) -> bytes:
    """The bytes after the last good entry if they are one torn append (a crash or a full disk
    mid-write: no newline at the end, or not a JSON object), else b"" (tampering: refuse)."""
    size = os.fstat(fd).st_size
    if size - good > MAX_TORN:
        return b""
    tail = os.pread(fd, size - good, good)
    if not tail or b"\n" in tail[:-1]:
        return b""  # broken before the last line: not a torn append
    if not tail.endswith(b"\n"):
        return tail
    # Ends in a newline: torn only if no whole entry is in it (a torn line, then a good one
    # appended after it, is a break in the middle).
    starts = [0] + [i for i in range(1, len(tail)) if tail.startswith(b'{"seq":', i)]
    for start in starts:
        try:
            entry = json.loads(tail[start:].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(entry, dict):
            return b""
    return tail


def _set_aside(path: Path, torn: bytes, moment: datetime) -> Path:
    """Keep the torn bytes next to the log (never lost, for a look), durably."""
    stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    aside = path.with_name(f"{path.name}.torn-{stamp}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, torn)
        os.fsync(fd)
    finally:
        os.close(fd)
    _fsync_dir(path.parent)
    return aside


def _open_append(path: Path) -> tuple[int, bool]:
    """Open for reading and appending; create with mode 0o600 if new. Returns (fd, created)."""
    flags = os.O_RDWR | os.O_APPEND
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, flags), False


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable too (POSIX only; Windows cannot open dirs)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
