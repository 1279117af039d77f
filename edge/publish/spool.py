"""A durable spool in front of the broker: no count is lost to an outage or a restart.

Every report is written to SQLite (WAL, synchronous FULL: on disk when ``put`` returns) before
it is published, and deleted only when the broker acknowledges it (PUBACK for QoS 1). After an
outage or a restart, what is left is sent again in window order. Delivery is therefore
at-least-once; a report sent twice carries the same report id, so consumers de-duplicate.

A row is keyed by topic, report id and the payload's sha256: the same report put twice is one
row, but two different reports that share an id (one window reported twice) are both kept,
never one silently lost (``edge.publish.state.ReportLedger`` keeps the second from being made).
A spool written before the digest was part of the key is migrated when opened.

The spool is bounded: past ``max_reports`` the oldest are dropped, and reports older than
``max_age_s`` expire (the policy's spool retention); each drop is written to the audit log.
A report that cannot be written is audited (``spool_write_failed``) before the error is raised.

A damaged file (SQLite says "malformed" or "not a database", or a row's payload no longer has
its digest) never stops delivery: the file is moved aside (``<name>.damaged-<time>``, the last
``KEEP_DAMAGED`` kept), a new one is made with every row that can still be read (the spool's,
and the window state's and ledger's tables that share the file), and ``spool_damaged`` in the
audit log says how many rows were saved and how many could not be read.
Payloads are already-gated ``PublishedReport`` JSON: nothing personal is ever stored here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from edge.errors import PublishError
from edge.legal.audit import AuditLog

log = logging.getLogger(__name__)
_T = TypeVar("_T")
KEEP_DAMAGED = 3  # damaged files kept aside for a look; older ones are removed
_DAMAGE = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_COLUMNS = "row, topic, payload, report_id, window_start, spooled_at, payload_sha256"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    report_id TEXT NOT NULL,
    window_start REAL NOT NULL,
    spooled_at REAL NOT NULL,
    payload_sha256 TEXT NOT NULL,
    UNIQUE (topic, report_id, payload_sha256)
);
CREATE INDEX IF NOT EXISTS spool_order ON spool (window_start, row);
"""
# A spool from before the payload digest was part of the key: same rows, digest computed.
_MIGRATE = (
    """
BEGIN IMMEDIATE;
ALTER TABLE spool RENAME TO spool_old;
DROP INDEX IF EXISTS spool_order;
"""
    + _SCHEMA
    + """
INSERT INTO spool (row, topic, payload, report_id, window_start, spooled_at, payload_sha256)
    SELECT row, topic, payload, report_id, window_start, spooled_at, sha256(payload)
    FROM spool_old;
DROP TABLE spool_old;
COMMIT;
"""
)


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def is_damage(err: BaseException) -> bool:
    """SQLite says the file's bytes are wrong (not a busy, full or read-only disk)."""
    code = getattr(err, "sqlite_errorcode", None)
    return isinstance(err, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGE


class _Damaged(Exception):
    """Internal: a row whose payload no longer matches its digest."""


@dataclass(frozen=True)
class Spooled:
    row: int
    topic: str
    payload: bytes
    report_id: str
    window_start: float


class Spool:
    """Thread-safe: the publisher's network thread acknowledges while the pipeline puts."""

    def __init__(
        self,
        path: Path,
        max_reports: int = 100_000,
        max_age_s: float = 7 * 86400,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.max_reports = max_reports
        self.max_age_s = max_age_s
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self.damage_events = 0  # times the file was found damaged and rebuilt
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open()
        except sqlite3.DatabaseError as err:
            if not is_damage(err):
                raise PublishError(f"{path}: cannot open the spool ({err})") from err
            self._db = self._rebuild(err)
        except OSError as err:
            raise PublishError(f"{path}: cannot open the spool ({err})") from err

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.create_function("sha256", 1, _sha256, deterministic=True)
            columns = {r[1] for r in db.execute("PRAGMA table_info(spool)").fetchall()}
            db.executescript(_MIGRATE if columns and "payload_sha256" not in columns else _SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def put(self, topic: str, payload: bytes, report_id: str, window_start: float) -> bool:
        """Store one report; False when this very report was already spooled (same topic, id
        and payload). A failed write is audited, then raised as ``PublishError``."""
        row = (topic, payload, report_id, window_start, self._clock(), _sha256(payload))
        insert = (
            "INSERT OR IGNORE INTO spool (topic, payload, report_id, window_start,"
            " spooled_at, payload_sha256) VALUES (?, ?, ?, ?, ?, ?)"
        )
        with self._lock:
            try:
                cursor = self._guarded(lambda: self._db.execute(insert, row))
            except sqlite3.Error as err:
                if self._audit is not None:
                    self._audit.append(
                        "spool_write_failed", dropped=1, report_ids=[report_id], reason=str(err)
                    )
                raise PublishError(f"{self.path}: report {report_id} not spooled ({err})") from err
            added = cursor.rowcount == 1
            overflow = self._guarded(self._count) - self.max_reports
            if overflow > 0:
                self._guarded(
                    lambda: self._drop(
                        "SELECT row FROM spool ORDER BY window_start, row LIMIT ?",
                        (overflow,),
                        "spool_full",
                    )
                )
        return added

    def pending(self, limit: int = 100, exclude: frozenset[int] = frozenset()) -> list[Spooled]:
        """The oldest windows first, skipping rows already in flight. A row whose payload no
        longer has its digest (bytes changed on disk) is never sent: the file is rebuilt."""
        self.expire()

        def read() -> list[Spooled]:
            rows = self._db.execute(
                "SELECT row, topic, payload, report_id, window_start, payload_sha256 FROM spool"
                " ORDER BY window_start, row LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
            if any(not isinstance(r[2], bytes) or _sha256(r[2]) != r[5] for r in rows):
                raise _Damaged("a payload does not match its sha256")
            return [Spooled(*r[:5]) for r in rows if r[0] not in exclude][:limit]

        with self._lock:
            return self._guarded(read)

    def ack(self, row: int) -> None:
        """The broker has the report: forget it."""
        with self._lock:
            self._guarded(lambda: self._db.execute("DELETE FROM spool WHERE row = ?", (row,)))

    def expire(self) -> int:
        """Drop reports spooled longer ago than ``max_age_s``; returns how many."""
        with self._lock:
            return self._guarded(
                lambda: self._drop(
                    "SELECT row FROM spool WHERE spooled_at < ?",
                    (self._clock() - self.max_age_s,),
                    "spool_expired",
                )
            )

    @property
    def depth(self) -> int:
        with self._lock:
            return self._guarded(self._count)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _guarded(self, action: Callable[[], _T]) -> _T:
        """``action`` (under ``_lock``); on damage, rebuild the file and try once more."""
        try:
            return action()
        except (sqlite3.DatabaseError, _Damaged) as err:
            undecodable = "Could not decode" in str(err)  # text bytes changed on disk
            if not (isinstance(err, _Damaged) or undecodable or is_damage(err)):
                raise
            self._db.close()
            self._db = self._rebuild(err)
        return action()

    def _rebuild(self, err: BaseException) -> sqlite3.Connection:
        """Move the damaged file aside, make a new one with every row still readable, audit."""
        self.damage_events += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.replace(Path(f"{aside}{suffix}"))
        saved, lost, unreadable, mismatched = _salvage(aside, self.path, self.max_reports)
        Path(f"{aside}-shm").unlink(missing_ok=True)
        _prune_damaged(self.path)
        db = self._open()
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        log.error(
            "%s: damaged (%s); moved to %s, %d reports saved, %s lost",
            self.path, reason, aside.name, saved, "an unknown number" if lost is None else lost,
        )  # fmt: skip
        if self._audit is not None:
            self._audit.append(
                "spool_damaged", reason=reason, set_aside=aside.name, saved=saved, lost=lost,
                unreadable=unreadable, changed=mismatched,
            )  # fmt: skip
        return db

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])

    def _drop(self, select: str, params: tuple[float | int, ...], event: str) -> int:
        rows = [r[0] for r in self._db.execute(select, params).fetchall()]
        if not rows:
            return 0
        ids = [
            r[0]
            for r in self._db.execute(
                f"SELECT report_id FROM spool WHERE row IN ({','.join('?' * len(rows))})", rows
            ).fetchall()
        ]
        self._db.execute(f"DELETE FROM spool WHERE row IN ({','.join('?' * len(rows))})", rows)
        if self._audit is not None:
            self._audit.append(event, dropped=len(rows), report_ids=list(ids))
        return len(rows)


def _salvage(damaged: Path, fresh: Path, max_reports: int) -> tuple[int, int | None, int, int]:
    """Copy what can be read from ``damaged`` into a new ``fresh``: spool rows one by one (a
    damaged page loses only its own rows), other tables (window state, ledger) as far as they
    read. Returns (reports saved, reports lost or None when the file gave no count, spool rows
    unreadable, spool rows whose bytes changed)."""
    saved = unreadable = mismatched = 0
    try:
        old = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
    except sqlite3.Error:
        return 0, None, 0, 0
    new = sqlite3.connect(fresh, isolation_level=None)
    try:
        new.execute("PRAGMA journal_mode=WAL")
        new.executescript(_SCHEMA)
        new.execute("BEGIN")
        top = _highest_row(old)
        low = max(_lowest_row(old, top), top - 4 * max_reports)  # bounded work
        for row in range(low, top + 1):
            try:
                found = old.execute(f"SELECT {_COLUMNS} FROM spool WHERE row = ?", (row,))
                record = found.fetchone()
            except sqlite3.Error:
                unreadable += 1
                continue
            if record is None:
                continue
            if not isinstance(record[2], bytes) or _sha256(record[2]) != record[6]:
                mismatched += 1
                continue
            new.execute(f"INSERT OR IGNORE INTO spool ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)", record)
            saved += 1
        _copy_other_tables(old, new)
        new.execute("COMMIT")
        counted = _count_rows(old)
    finally:
        old.close()
        new.close()
    if counted is None:
        lost = None if saved == 0 else unreadable + mismatched
    else:
        lost = max(counted - saved, unreadable + mismatched)
    return saved, lost, unreadable, mismatched


def _count_rows(db: sqlite3.Connection) -> int | None:
    """How many reports the damaged file held, from whichever of its trees still reads."""
    counts = []
    for how in ("INDEXED BY spool_order", "NOT INDEXED"):
        try:
            counts.append(int(db.execute(f"SELECT COUNT(*) FROM spool {how}").fetchone()[0]))
        except sqlite3.Error:
            continue
    return max(counts, default=None)


def _highest_row(db: sqlite3.Connection) -> int:
    found = 0
    queries = ("SELECT MAX(row) FROM spool", "SELECT seq FROM sqlite_sequence WHERE name = 'spool'")
    for query in queries:
        try:
            for (value,) in db.execute(query).fetchall():
                if isinstance(value, int):
                    found = max(found, value)
        except sqlite3.DatabaseError:
            continue
    return found


def _lowest_row(db: sqlite3.Connection, top: int) -> int:
    try:
        value = db.execute("SELECT MIN(row) FROM spool").fetchone()[0]
    except sqlite3.DatabaseError:
        return 1
    return value if isinstance(value, int) and value <= top else 1


def _copy_other_tables(old: sqlite3.Connection, new: sqlite3.Connection) -> None:
    """Tables other than the spool that share the file, row by row until one does not read."""
    try:
        tables = old.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            " AND name NOT IN ('spool', 'spool_old') AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    except sqlite3.DatabaseError:
        return
    for name, sql in tables:
        if not isinstance(sql, str):
            continue
        new.execute(sql.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1))
        try:
            for record in old.execute(f'SELECT * FROM "{name}"'):
                marks = ",".join("?" * len(record))
                new.execute(f'INSERT OR IGNORE INTO "{name}" VALUES ({marks})', record)
        except sqlite3.Error:
            continue


def _prune_damaged(path: Path) -> None:
    """Keep the newest ``KEEP_DAMAGED`` damaged files: the box runs for months."""
    kept = sorted(path.parent.glob(f"{path.name}.damaged-*[0-9]"), key=lambda p: p.stat().st_mtime)
    for old in kept[:-KEEP_DAMAGED]:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{old}{suffix}").unlink(missing_ok=True)
