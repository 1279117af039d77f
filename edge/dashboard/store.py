"""Writing to the dashboard's database: reports, status, notices, audit heads, rejections,
retention.

One writer at a time (the collector, the retention pass) and many readers (the web server).
Every report is kept twice at
arrival: as its window (until ``raw_retention_days``) and added into hourly totals (kept until
``hourly_retention_days``, or forever), in one transaction, so the two never disagree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, case, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from edge.dashboard import schema as t
from edge.errors import ConfigError, EdgeError
from edge.schema import (
    CATEGORY_NAMES,
    DIRECTIONS,
    AuditHeadMessage,
    CategoryName,
    Direction,
    MovementsReport,
    NoticeMessage,
    PublishedReport,
    StatsMessage,
    ZoneFigures,
)

log = logging.getLogger(__name__)

HOUR = 3600
DAY = 86400
MAX_REASONS = 500  # distinct rejection reasons kept: the table stays small whatever comes
OTHER_REASONS = "other reasons"


class StoreError(EdgeError):
    """The database cannot be opened or written."""


def open_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created and the file put in WAL mode,
    so the web server reads while the collector writes."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise ConfigError([f"dashboard.database: not a database URL ({err})"]) from err
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            [f"dashboard.database: '{parsed.get_backend_name()}' is not supported, "
             "expected sqlite:///PATH or postgresql+psycopg://..."]
        )  # fmt: skip
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError) as err:
        raise ConfigError([f"dashboard.database: cannot use this URL ({err})"]) from err
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000"):
                cursor.execute(f"PRAGMA {pragma}")
            cursor.close()

    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (Alembic); a no-op when it is there already."""
    config = Config()
    config.set_main_option("script_location", "edge.dashboard:migrations")
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as err:
        raise StoreError(f"dashboard.database: cannot open ({_first_line(err)})") from err


def _first_line(err: BaseException) -> str:
    return str(getattr(err, "orig", err)).strip().splitlines()[0]


def digest(report: PublishedReport) -> str:
    """What tells a redelivery (same digest) from a second part of the same window."""
    canonical = json.dumps(report.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass
class Added:
    stored: int = 0
    duplicates: int = 0
    too_old: int = 0


def _keeps_larger(column: str) -> bool:
    """Peaks and times are kept at their largest; every other figure is summed."""
    return column.startswith("max_") or column == "last_at"


def _accumulate(totals: dict[str, float], values: Mapping[str, float]) -> None:
    """Add ``values`` into ``totals`` as ``_upsert_add`` adds them into the table."""
    for column, value in values.items():
        before = totals.get(column, 0)
        totals[column] = max(before, value) if _keeps_larger(column) else before + value


def _upsert_add(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE SET column = column + new value."""
    if not rows:
        return
    postgres = connection.dialect.name == "postgresql"
    statement = (postgresql if postgres else sqlite).insert(table)
    greatest = func.greatest if postgres else func.max  # SQLite's two-argument max()
    keys = [c.name for c in table.primary_key.columns]
    update = {
        c.name: (
            greatest(table.c[c.name], statement.excluded[c.name])
            if _keeps_larger(c.name)
            else table.c[c.name] + statement.excluded[c.name]
        )
        for c in table.columns
        if c.name not in keys
    }
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=update), rows)


def line_columns(per_direction: dict[Direction, dict[CategoryName, int]]) -> dict[str, int]:
    """One window's counts on one line, as the wide columns of ``line_counts``."""
    return {
        f"{d}_{c}": per_direction.get(d, {}).get(c, 0) for d in DIRECTIONS for c in CATEGORY_NAMES
    }


def zone_columns(per_category: dict[CategoryName, ZoneFigures], seconds: float) -> dict[str, float]:
    """One window's occupancy of one zone: mean x seconds (to sum) and peak (to take the max)."""
    empty = ZoneFigures(mean=0.0, max=0)
    figures = {c: per_category.get(c, empty) for c in CATEGORY_NAMES}
    return {
        "observed_s": seconds,
        **{f"mean_s_{c}": f.mean * seconds for c, f in figures.items()},
        **{f"max_{c}": f.max for c, f in figures.items()},
    }


class Store:
    """The writing side of the database: the collector's messages and the retention pass, one
    transaction at a time (a lock), while the web server reads through its own connections."""

    def __init__(self, engine: Engine, raw_retention_days: int = 90) -> None:
        self.engine = engine
        self.raw_retention_s = raw_retention_days * DAY
        self._sites: set[str] = set()
        self._cameras: dict[tuple[str, str], int] = {}
        self._lines: dict[tuple[int, str], int] = {}
        self._zones: dict[tuple[int, str], int] = {}
        self._movements: dict[tuple[int, str, str, str], int] = {}
        self._lock = threading.Lock()

    # -- ids of sites, cameras, lines and zones, created on first sight -------------------------

    def _site(self, connection: Connection, site: str) -> None:
        if site in self._sites:
            return
        known = connection.execute(select(t.sites.c.name).where(t.sites.c.name == site)).first()
        if known is None:
            connection.execute(t.sites.insert().values(name=site))
        self._sites.add(site)

    def _id(
        self, connection: Connection, table: Table, cache: dict[Any, int], key: dict[str, Any]
    ) -> int:
        cache_key = tuple(key.values())
        if cache_key not in cache:
            where = [table.c[name] == value for name, value in key.items()]
            found = connection.execute(select(table.c.id).where(*where)).scalar()
            if found is None:
                found = connection.execute(table.insert().returning(table.c.id), [key]).scalar_one()
            cache[cache_key] = int(found)
        return cache[cache_key]

    def camera_id(self, connection: Connection, site: str, camera: str) -> int:
        self._site(connection, site)
        return self._id(connection, t.cameras, self._cameras, {"site": site, "name": camera})

    # -- reports --------------------------------------------------------------------------------

    def add_reports(
        self, site: str, reports: Sequence[PublishedReport], now: float | None = None
    ) -> Added:
        """Store new windows and add them to the hourly totals, in one transaction.

        A report already stored (same id and digest) is a redelivery and skipped; a window
        older than the raw retention is refused: its id could no longer be checked.
        """
        now = time.time() if now is None else now
        added = Added()
        cutoff = now - self.raw_retention_s
        fresh = [r for r in reports if r.end > cutoff]
        added.too_old = len(reports) - len(fresh)
        keyed = {(r.report_id, digest(r)): r for r in fresh}
        added.duplicates = len(fresh) - len(keyed)
        with self._write("reports") as connection:
            known = self._known(connection, list(keyed))
            added.duplicates += len(known)
            new = [(key, r) for key, r in keyed.items() if key not in known]
            self._insert(connection, site, new, int(now))
        added.stored = len(new)
        return added

    def _known(self, connection: Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of ``keys`` are stored, looked up by report id (the primary key's first column):
        SQLite answers ``(report_id, digest) IN (VALUES ...)`` of several pairs with a full scan."""
        wanted = set(keys)
        ids = sorted({report_id for report_id, _ in keys})
        known: set[tuple[str, str]] = set()
        for i in range(0, len(ids), 500):
            rows = connection.execute(
                select(t.windows.c.report_id, t.windows.c.digest).where(
                    t.windows.c.report_id.in_(ids[i : i + 500])
                )
            )
            known.update(k for k in ((r.report_id, r.digest) for r in rows) if k in wanted)
        return known

    def _insert(
        self,
        connection: Connection,
        site: str,
        new: list[tuple[tuple[str, str], PublishedReport]],
        received: int,
    ) -> None:
        windows: list[dict[str, Any]] = []
        line_rows: list[dict[str, Any]] = []
        zone_rows: list[dict[str, Any]] = []
        hours: dict[tuple[Table, int, int], dict[str, float]] = defaultdict(dict)
        spans: dict[int, tuple[int, int, int | None]] = {}  # camera: first, last, window length
        for (report_id, key), report in new:
            camera = self.camera_id(connection, site, report.camera)
            start, end = int(report.start), math.ceil(report.end)
            hour = start - start % HOUR
            windows.append(
                {"report_id": report_id, "digest": key, "camera_id": camera, "start": start,
                 "end": end, "partial": report.partial, "frames": report.frames,
                 "observed_s": report.observed_s, "received_at": received}
            )  # fmt: skip
            _accumulate(
                hours[(t.camera_hours, camera, hour)],
                {"windows": 1, "partial": int(report.partial), "observed_s": report.observed_s},
            )
            first, last, window_s = spans.get(camera, (start, end, None))
            full = None if report.partial else end - start
            spans[camera] = (min(first, start), max(last, end), full or window_s)
            for name, per_direction in report.lines.items():
                line = self._id(
                    connection, t.lines, self._lines, {"camera_id": camera, "name": name}
                )
                counts = line_columns(per_direction)
                line_rows.append({"line_id": line, "start": start, **counts})
                _accumulate(hours[(t.line_hours, line, hour)], counts)
            for name, per_category in report.zones.items():
                zone = self._id(
                    connection, t.zones, self._zones, {"camera_id": camera, "name": name}
                )
                figures = zone_columns(per_category, report.observed_s)
                zone_rows.append({"zone_id": zone, "start": start, **figures})
                _accumulate(hours[(t.zone_hours, zone, hour)], figures)
            movements = report.movements if isinstance(report, MovementsReport) else {}
            for name, moved in movements.items():
                ends = {"origin": moved.origin, "destination": moved.destination}
                movement = self._id(
                    connection, t.movements, self._movements,
                    {"camera_id": camera, "name": name, **ends},
                )  # fmt: skip
                counts = {c: moved.counts.get(c, 0) for c in CATEGORY_NAMES}
                _accumulate(hours[(t.movement_hours, movement, hour)], counts)
        for table, rows in (
            (t.windows, windows), (t.line_counts, line_rows), (t.zone_counts, zone_rows)
        ):  # fmt: skip
            if rows:
                connection.execute(table.insert(), rows)
        for table in (t.line_hours, t.zone_hours, t.camera_hours, t.movement_hours):
            owner = next(c.name for c in table.primary_key.columns if c.name != "hour")
            rows = [
                {owner: key, "hour": hour, **totals}
                for (of, key, hour), totals in hours.items()
                if of is table
            ]
            _upsert_add(connection, table, rows)
        for camera, (first, last, window_s) in spans.items():
            self._extend_camera(connection, camera, first, last, window_s)

    def _extend_camera(
        self, connection: Connection, camera: int, start: int, end: int, window_s: int | None
    ) -> None:
        """The span a camera has reported over, and its window length (of a full window)."""
        c = t.cameras.c
        values: dict[str, Any] = {
            "first_start": case(
                (c.first_start.is_(None) | (c.first_start > start), start), else_=c.first_start
            ),
            "last_end": case((c.last_end.is_(None) | (c.last_end < end), end), else_=c.last_end),
        }
        if window_s is not None:
            values["window_s"] = window_s
        connection.execute(t.cameras.update().where(c.id == camera).values(**values))

    # -- status, health and notices ------------------------------------------------------------

    def set_status(self, site: str, camera: str | None, online: bool, at: float) -> None:
        """A status change of a camera (or of the site, ``camera`` None); repeats are ignored."""
        with self._write("status") as connection:
            if camera is None:
                self._site(connection, site)
                table, where, camera_id = t.sites, t.sites.c.name == site, None
            else:
                camera_id = self.camera_id(connection, site, camera)
                table, where = t.cameras, t.cameras.c.id == camera_id
            if connection.execute(select(table.c.online).where(where)).scalar() == online:
                return
            connection.execute(table.update().where(where).values(online=online, status_at=int(at)))
            connection.execute(
                t.status_events.insert().values(
                    site=site, camera_id=camera_id, at=int(at), online=online
                )
            )

    def set_stats(self, site: str, stats: StatsMessage, at: float) -> None:
        """Health figures: only each camera's online flag is kept, as a status change."""
        for camera, figures in stats.cameras.items():
            self.set_status(site, camera, figures.online, at)

    def set_notice(self, site: str, notice: NoticeMessage, at: float) -> None:
        with self._write("notice") as connection:
            self._site(connection, site)
            connection.execute(
                t.sites.update().where(t.sites.c.name == site).values(
                    policy=notice.policy, policy_sha256=notice.policy_sha256,
                    notice_url=notice.notice_url, notice=notice.notice, notice_at=int(at),
                )
            )  # fmt: skip

    def add_audit_head(self, site: str, message: AuditHeadMessage, received: float) -> bool:
        """Keep a published audit-log head (an anchor off the box); a head already kept (the
        retained message again, at every reconnect) is not added twice. True if new."""
        at = int(dt.datetime.fromisoformat(message.time.replace("Z", "+00:00")).timestamp())
        row = {"site": site, "head": message.head, "entries": message.entries, "at": at,
               "received_at": int(received)}  # fmt: skip
        with self._write("audit head") as connection:
            self._site(connection, site)
            postgres = connection.dialect.name == "postgresql"
            statement = (postgresql if postgres else sqlite).insert(t.audit_heads).values(row)
            result = connection.execute(statement.on_conflict_do_nothing())
            return bool(result.rowcount)

    def reject(self, reason: str, at: float) -> None:
        """Count a refused message under its reason (never its content); past
        ``MAX_REASONS`` distinct reasons, a new one is counted under ``OTHER_REASONS``."""
        reason = reason[:200]
        with self._write("rejection") as connection:
            r = t.rejections.c
            known = connection.execute(select(r.reason).where(r.reason == reason)).first()
            if known is None:
                kept = connection.execute(select(func.count()).select_from(t.rejections)).scalar()
                if (kept or 0) >= MAX_REASONS:
                    reason = OTHER_REASONS
            row = {"reason": reason, "count": 1, "last_at": int(at)}
            _upsert_add(connection, t.rejections, [row])

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        """One transaction; a database error becomes ``StoreError`` and the id caches are
        dropped, since what they cached may have been rolled back."""
        try:
            with self._lock, self.engine.begin() as connection:
                yield connection
        except BaseException as err:  # a value the driver cannot bind rolls back too
            caches = (self._sites, self._cameras, self._lines, self._zones, self._movements)
            for cache in caches:
                cache.clear()
            if not isinstance(err, SQLAlchemyError):
                raise
            raise StoreError(
                f"dashboard.database: cannot store {what} ({_first_line(err)})"
            ) from err

    # -- retention ------------------------------------------------------------------------------

    def prune(self, hourly_retention_days: int | None, now: float | None = None) -> dict[str, int]:
        """Delete windows past the raw retention (their hours stay) and hours past theirs."""
        now = time.time() if now is None else now
        cutoff = int(now - self.raw_retention_s)
        deleted: dict[str, int] = {}
        with self._write("retention") as connection:
            for table in (t.windows, t.line_counts, t.zone_counts):
                result = connection.execute(table.delete().where(table.c.start < cutoff))
                deleted[table.name] = result.rowcount
            deleted[t.audit_heads.name] = self._prune_audit_heads(connection, cutoff)
            if hourly_retention_days is not None:
                hour_cutoff = int(now - hourly_retention_days * DAY)
                for table in (t.line_hours, t.zone_hours, t.camera_hours, t.movement_hours):
                    result = connection.execute(table.delete().where(table.c.hour < hour_cutoff))
                    deleted[table.name] = result.rowcount
        return deleted

    @staticmethod
    def _prune_audit_heads(connection: Connection, cutoff: int) -> int:
        """Heads older than the raw retention, except each site's latest: it vouches for
        every entry before it, so a site that went quiet keeps its last anchor."""
        heads, newer = t.audit_heads, t.audit_heads.alias("newer")
        latest = select(func.max(newer.c.at)).where(newer.c.site == heads.c.site).scalar_subquery()
        statement = heads.delete().where(heads.c.at < cutoff, heads.c.at < latest)
        return int(connection.execute(statement).rowcount)
