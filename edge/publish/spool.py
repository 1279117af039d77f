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
Payloads are already-gated ``PublishedReport`` JSON: nothing personal is ever stored here.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.errors import PublishError
from edge.legal.audit import AuditLog

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
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.create_function("sha256", 1, _sha256, deterministic=True)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(spool)").fetchall()}
            self._db.executescript(
                _MIGRATE if columns and "payload_sha256" not in columns else _SCHEMA
            )
        except (OSError, sqlite3.Error) as err:
            raise PublishError(f"{path}: cannot open the spool ({err})") from err

    def put(self, topic: str, payload: bytes, report_id: str, window_start: float) -> bool:
        """Store one report; False when this very report was already spooled (same topic, id
        and payload). A failed write is audited, then raised as ``PublishError``."""
        with self._lock:
            try:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO spool (topic, payload, report_id, window_start,"
                    " spooled_at, payload_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                    (topic, payload, report_id, window_start, self._clock(), _sha256(payload)),
                )
            except sqlite3.Error as err:
                if self._audit is not None:
                    self._audit.append(
                        "spool_write_failed", dropped=1, report_ids=[report_id], reason=str(err)
                    )
                raise PublishError(f"{self.path}: report {report_id} not spooled ({err})") from err
            added = cursor.rowcount == 1
            overflow = self._count() - self.max_reports
            if overflow > 0:
                self._drop(
                    "SELECT row FROM spool ORDER BY window_start, row LIMIT ?",
                    (overflow,),
                    "spool_full",
                )
        return added

    def pending(self, limit: int = 100, exclude: frozenset[int] = frozenset()) -> list[Spooled]:
        """The oldest windows first, skipping rows already in flight."""
        self.expire()
        with self._lock:
            rows = self._db.execute(
                "SELECT row, topic, payload, report_id, window_start FROM spool"
                " ORDER BY window_start, row LIMIT ?",
                (limit + len(exclude),),
            ).fetchall()
        return [Spooled(*r) for r in rows if r[0] not in exclude][:limit]

    def ack(self, row: int) -> None:
        """The broker has the report: forget it."""
        with self._lock:
            self._db.execute("DELETE FROM spool WHERE row = ?", (row,))

    def expire(self) -> int:
        """Drop reports spooled longer ago than ``max_age_s``; returns how many."""
        with self._lock:
            return self._drop(
                "SELECT row FROM spool WHERE spooled_at < ?",
                (self._clock() - self.max_age_s,),
                "spool_expired",
            )

    @property
    def depth(self) -> int:
        with self._lock:
            return self._count()

    def close(self) -> None:
        with self._lock:
            self._db.close()

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
