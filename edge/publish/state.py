"""What a live run keeps on disk besides the spool, in the spool's own SQLite file.

``window_state``: each live camera's open window (``WindowState``: counts per line, direction
and category, zone sums and maxima, frames, observed seconds, first and last timestamps, window
index and length) with the policy it was counted under. The runner checkpoints it about once a
second, so a restart (even ``kill -9``) continues the window instead of publishing a few
seconds of counts as a report of their own. Aggregate figures only: no track id, box or time of
any one object is ever in it.

``report_ledger``: every report this box let out, by camera, window start, window length and
policy: a second, different report of a window is refused and audited (``egress_drop``,
"window already reported"); the same report again is idempotent (at-least-once delivery).

Both tables live in the spool's file (``spool.path``) so that one file holds everything a
restart needs; SQLite in WAL mode lets the spool's connection and this one share it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from edge.analytics.aggregate import WindowState
from edge.errors import PublishError
from edge.legal.audit import AuditLog

_SCHEMA = """
CREATE TABLE IF NOT EXISTS window_state (
    camera TEXT PRIMARY KEY,
    stream TEXT NOT NULL,
    window_index INTEGER NOT NULL,
    window_seconds REAL NOT NULL,
    policy_sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    saved_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS report_ledger (
    camera TEXT NOT NULL,
    window_start REAL NOT NULL,
    window_seconds REAL NOT NULL,
    policy_sha256 TEXT NOT NULL,
    report_id TEXT NOT NULL,
    payload_sha256 TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (camera, window_start, window_seconds, policy_sha256)
);
CREATE INDEX IF NOT EXISTS report_ledger_age ON report_ledger (claimed_at);
"""
ALREADY_REPORTED = "window already reported"
log = logging.getLogger(__name__)
PRUNE_EVERY = 1000  # ledger claims between two deletions of rows past the retention
MAX_UNSAVED = 10_000  # claims kept in memory while the disk is full


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
    except (OSError, sqlite3.Error) as err:
        raise PublishError(f"{path}: cannot open the window state ({err})") from err
    return db


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return -1


def _follow(path: Path, db: sqlite3.Connection, inode: int) -> tuple[sqlite3.Connection, int]:
    """The connection to use: a new one when the spool rebuilt a damaged file under us
    (``edge.publish.spool``), so checkpoints and claims go to the file in use, not aside."""
    now = _inode(path)
    if now == inode:
        return db, inode
    db.close()
    return _connect(path), _inode(path)


def payload_sha256(payload: Mapping[str, Any]) -> str:
    """Digest of a report payload, independent of key order."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class WindowStore:
    """Live cameras' open windows, one row per camera, under the policy in force."""

    def __init__(self, path: Path, policy_sha256: str, audit: AuditLog | None = None) -> None:
        self.path = path
        self.policy_sha256 = policy_sha256
        self._audit = audit
        self._lock = threading.Lock()
        self._db = _connect(path)
        self._inode = _inode(path)

    def save(self, camera: str, stream: str, state: WindowState) -> None:
        """Checkpoint ``camera``'s open window (replaces the previous one); durable on return."""
        row = (
            camera, stream, state.index, state.seconds, self.policy_sha256,
            json.dumps(state.to_json(), separators=(",", ":")), time.time(),
        )  # fmt: skip
        with self._lock:
            self._db, self._inode = _follow(self.path, self._db, self._inode)
            try:
                self._db.execute("INSERT OR REPLACE INTO window_state VALUES (?,?,?,?,?,?,?)", row)
            except sqlite3.Error as err:
                raise PublishError(
                    f"{self.path}: {camera}'s open window not saved ({err})"
                ) from err

    def load(self, camera: str, stream: str) -> list[tuple[str, str, WindowState]]:
        """The windows left open for this camera id or this stream (a renamed or moved camera
        is the same camera): (camera id saved with it, policy sha256 it was counted under,
        figures). A row that does not parse is deleted and audited: it can never be published."""
        with self._lock:
            self._db, self._inode = _follow(self.path, self._db, self._inode)
            rows = self._db.execute(
                "SELECT camera, policy_sha256, state FROM window_state"
                " WHERE camera = ? OR stream = ? ORDER BY window_index",
                (camera, stream),
            ).fetchall()
        out = []
        for owner, policy, text in rows:
            try:
                out.append((str(owner), str(policy), WindowState.from_json(json.loads(text))))
            except (ValueError, KeyError, TypeError) as err:
                self.forget(owner)
                if self._audit is not None:
                    self._audit.append(
                        "window_state_discarded", camera=owner, reason=f"unreadable ({err})"
                    )
        return out

    def withhold(self, camera: str, state: WindowState, reason: str) -> None:
        """A restored window that may not be published: audited, then forgotten."""
        if self._audit is not None:
            self._audit.append(
                "window_withheld", camera=camera, window_start=state.start,
                window_seconds=state.seconds, observed_s=round(state.observed, 3), reason=reason,
            )  # fmt: skip
        self.forget(camera)

    def forget(self, camera: str, stream: str = "") -> None:
        """The camera's (and the stream's) open window is published or withheld: drop it."""
        with self._lock:
            self._db, self._inode = _follow(self.path, self._db, self._inode)
            self._db.execute(
                "DELETE FROM window_state WHERE camera = ? OR stream = ?", (camera, stream)
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> WindowStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ReportLedger:
    """One report per camera and window, ever (within ``keep_days``, the policy's audit
    retention: the ledger is bounded and the audit log records the same period).

    Interface for the egress gate: ``claim(payload)`` with the payload about to go to the
    sinks (``EgressGate.payload(report)`` or ``PublishedReport.model_dump()``); "" lets it
    go, else the reason it was refused (already audited as ``egress_drop``). Claiming the same
    payload twice is idempotent, so the gate and the runner may both call it.
    """

    def __init__(
        self,
        path: Path,
        audit: AuditLog | None = None,
        keep_days: float = 365.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.keep_s = keep_days * 86400.0
        self.refused = 0
        self._audit = audit
        self._clock = clock
        self._lock = threading.Lock()
        self._claims = 0
        # Claims a full disk kept from the file, written with the next claim that can be.
        self._unsaved: dict[tuple[str, float, float, str], tuple[str, str, float]] = {}
        self._db = _connect(path)
        self._inode = _inode(path)
        self._prune()

    def claim(self, payload: Mapping[str, Any]) -> str:
        """Record this window as reported by this payload; "" if it may go out (first time,
        or the very same payload again), else why not."""
        camera, start, end = str(payload["camera"]), float(payload["start"]), float(payload["end"])
        policy, rid = str(payload["policy_sha256"]), str(payload["report_id"])
        digest = payload_sha256(payload)
        key = (camera, start, end - start, policy)
        with self._lock:
            self._db, self._inode = _follow(self.path, self._db, self._inode)
            row = self._unsaved.get(key)
            try:
                self._db.execute("BEGIN IMMEDIATE")  # one claim at a time, across processes too
                try:
                    for pending, (prid, pdigest, at) in list(self._unsaved.items()):
                        self._db.execute(
                            "INSERT OR IGNORE INTO report_ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (*pending, prid, pdigest, at),
                        )
                    found = self._db.execute(
                        "SELECT report_id, payload_sha256 FROM report_ledger WHERE camera = ?"
                        " AND window_start = ? AND window_seconds = ? AND policy_sha256 = ?",
                        key,
                    ).fetchone()
                    row = row or found
                    if row is None:
                        self._db.execute(
                            "INSERT INTO report_ledger VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (*key, rid, digest, self._clock()),
                        )
                    self._db.execute("COMMIT")
                    self._unsaved.clear()
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:  # a full disk: remember the claim, write it later
                if not self._unsaved:
                    log.warning(
                        "%s: report ledger not written (%s); kept in memory", self.path, err
                    )
                if row is None and len(self._unsaved) < MAX_UNSAVED:
                    self._unsaved[key] = (rid, digest, self._clock())
            self._claims += 1
            if self._claims % PRUNE_EVERY == 0:
                self._prune_locked()
        if row is None or row[1] == digest:
            return ""
        self.refused += 1
        if self._audit is not None:
            self._audit.append(
                "egress_drop",
                reason=ALREADY_REPORTED,
                camera=camera,
                window_start=start,
                window_seconds=end - start,
                report_id=rid,
                reported_id=str(row[0]),
            )
        return ALREADY_REPORTED

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ReportLedger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _prune(self) -> None:
        with self._lock:
            self._prune_locked()

    def _prune_locked(self) -> None:
        self._db.execute(
            "DELETE FROM report_ledger WHERE claimed_at < ?", (self._clock() - self.keep_s,)
        )
