"""Reading the dashboard's database: counts per bucket, week-on-week, completeness, sites.

Hour and day buckets are summed from the hourly totals, 15-minute buckets from the raw windows
(so they exist for ``raw_retention_days`` only). Days are the time zone's calendar days (a
daylight-saving day has 23 or 25 hours); hours are UTC hours, which are the local hours in every
zone whose offset is whole hours. A window counts in the bucket where it starts.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, Select, Table, func, or_, select

from edge.dashboard import schema as t
from edge.schema import CATEGORY_NAMES, DIRECTIONS, CategoryName, Direction

Bucket = Literal["15min", "hour", "day"]
BUCKETS: tuple[Bucket, ...] = ("15min", "hour", "day")
QUARTER = 900
HOUR = 3600


@dataclass(frozen=True)
class Selection:
    """What a chart, an export or the API asks for: which lines, when, how bucketed."""

    start: int  # Unix seconds, included
    end: int  # Unix seconds, excluded
    tz: ZoneInfo
    bucket: Bucket = "hour"
    site: str | None = None
    camera: str | None = None
    line: str | None = None
    categories: tuple[CategoryName, ...] = CATEGORY_NAMES
    directions: tuple[Direction, ...] = DIRECTIONS


@dataclass(frozen=True)
class CountRow:
    """Passages over one line in one bucket, by direction and category."""

    site: str
    camera: str
    line: str
    start: int
    end: int
    counts: dict[Direction, dict[CategoryName, int]] = field(default_factory=dict)


def local_midnight(moment: int, tz: ZoneInfo) -> int:
    day = dt.datetime.fromtimestamp(moment, tz).date()
    return int(dt.datetime.combine(day, dt.time(), tz).timestamp())


def bucket_bounds(moment: int, bucket: Bucket, tz: ZoneInfo) -> tuple[int, int]:
    """The bucket holding ``moment``: [start, end) in Unix seconds."""
    if bucket == "15min":
        start = moment - moment % QUARTER
        return start, start + QUARTER
    if bucket == "hour":
        start = moment - moment % HOUR
        return start, start + HOUR
    start = local_midnight(moment, tz)
    return start, local_midnight(start + 26 * HOUR, tz)


def widen(selection: Selection) -> tuple[int, int]:
    """The selection's range widened to whole buckets."""
    start = bucket_bounds(selection.start, selection.bucket, selection.tz)[0]
    last = bucket_bounds(max(selection.end - 1, selection.start), selection.bucket, selection.tz)
    return start, last[1]


def _counted(selection: Selection) -> tuple[Table, ColumnElement[int], list[Any]]:
    """Where the selection's passages are read (raw windows for 15-minute buckets, hourly totals
    otherwise), that table's time column, and the conditions of its range widened to buckets."""
    start, end = widen(selection)
    if selection.bucket == "15min":
        table, at = t.line_counts, t.line_counts.c.start
    else:
        table, at = t.line_hours, t.line_hours.c.hour
    return table, at, [at >= start, at < end]


def _where(query: Select[Any], selection: Selection) -> Select[Any]:
    for column, value in (
        (t.cameras.c.site, selection.site),
        (t.cameras.c.name, selection.camera),
        (t.lines.c.name, selection.line),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


def counts(engine: Engine, selection: Selection) -> list[CountRow]:
    """Passages per line and bucket, ordered by site, camera, line and time; buckets without
    any window received are absent (no data is not zero)."""
    table, when, in_range = _counted(selection)
    columns = [t.cameras.c.site, t.cameras.c.name.label("camera"), t.lines.c.name.label("line")]
    query = select(*columns).select_from(table.join(t.lines).join(t.cameras)).where(*in_range)
    if selection.bucket == "15min":  # raw windows, summed per quarter
        moment = (when - when % QUARTER).label("moment")
        sums = [func.sum(table.c[name]).label(name) for name in t.COUNT_COLUMNS]
        query = query.add_columns(moment, *sums).group_by(*columns, moment)
    else:  # hourly totals: one row per line and hour already
        query = query.add_columns(when.label("moment"), *(table.c[n] for n in t.COUNT_COLUMNS))
    query = _where(query.order_by(*columns, "moment"), selection)
    # site, camera, line and moment come first, then the count columns in COUNT_COLUMNS order
    wanted = [
        (d, c, 4 + t.COUNT_COLUMNS.index(f"{d}_{c}"))
        for d in selection.directions
        for c in selection.categories
    ]
    bounds: dict[int, tuple[int, int]] = {}  # many lines share each bucket: its bounds once
    rows: dict[tuple[str, str, str, int], CountRow] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            at = int(row[3])
            span = bounds.get(at)
            if span is None:
                span = bounds[at] = bucket_bounds(at, selection.bucket, selection.tz)
            key = (row[0], row[1], row[2], span[0])
            out = rows.get(key)
            if out is None:
                out = rows[key] = CountRow(row[0], row[1], row[2], *span)
            for d, c, i in wanted:
                per = out.counts.setdefault(d, {})
                per[c] = per.get(c, 0) + int(row[i])
    return list(rows.values())


def totals(engine: Engine, selection: Selection) -> dict[Direction, dict[CategoryName, int]]:
    """Passages over the selection's range (widened to whole buckets), summed in the database:
    a total over 90 days of a whole site never builds its rows in Python."""
    table, _, in_range = _counted(selection)
    sums = [func.coalesce(func.sum(table.c[name]), 0).label(name) for name in t.COUNT_COLUMNS]
    query = select(*sums).select_from(table.join(t.lines).join(t.cameras)).where(*in_range)
    with engine.connect() as connection:
        row = connection.execute(_where(query, selection)).one()
    return {
        d: {c: int(getattr(row, f"{d}_{c}")) for c in selection.categories}
        for d in selection.directions
    }


def whole_hours(selection: Selection) -> tuple[int, int]:
    """The selection's range widened to whole hours: what the hourly tables can answer."""
    return widen(replace(selection, bucket="hour"))


def _hourly_totals(
    engine: Engine,
    selection: Selection,
    hours: Table,
    owner: Table,
    columns: list[Any],
    figures: list[Any],
) -> list[Any]:
    """``figures`` over the range's whole hours of ``hours``, joined to its ``owner`` (movements,
    zones) and their cameras, one row per ``columns``, for the selection's site and camera."""
    start, end = whole_hours(selection)
    query = (
        select(*columns, *figures)
        .select_from(hours.join(owner).join(t.cameras))
        .where(hours.c.hour >= start, hours.c.hour < end)
        .group_by(*columns)
        .order_by(*columns)
    )
    with engine.connect() as connection:
        return list(connection.execute(_where(query, replace(selection, line=None))))


def movements(engine: Engine, selection: Selection) -> list[dict[str, Any]]:
    """Turning movements over the selection's range (widened to whole hours), summed per
    movement and category in the database: one row per camera's movement, an origin-destination
    matrix's cell."""
    m, hours = t.movements, t.movement_hours
    columns = [t.cameras.c.site, t.cameras.c.name.label("camera"), m.c.name, m.c.origin,
               m.c.destination]  # fmt: skip
    sums = [func.sum(hours.c[c]).label(c) for c in selection.categories]
    return [
        {
            "site": row.site,
            "camera": row.camera,
            "movement": row.name,
            "origin": row.origin,
            "destination": row.destination,
            "counts": {c: int(getattr(row, c)) for c in selection.categories},
        }
        for row in _hourly_totals(engine, selection, hours, m, columns, sums)
    ]


def zones(engine: Engine, selection: Selection) -> list[dict[str, Any]]:
    """Zone occupancy over the selection's range (whole hours): per zone and category, the
    time-weighted mean (objects present on average while watched) and the peak. The boxes
    published only figures their policy allows (groups below its floor count as 0)."""
    z, hours = t.zones, t.zone_hours
    columns = [t.cameras.c.site, t.cameras.c.name.label("camera"), z.c.name]
    figures = [func.sum(hours.c.observed_s).label("observed_s")]
    figures += [func.sum(hours.c[f"mean_s_{c}"]).label(f"mean_s_{c}") for c in selection.categories]
    figures += [func.max(hours.c[f"max_{c}"]).label(f"max_{c}") for c in selection.categories]
    out = []
    for row in _hourly_totals(engine, selection, hours, z, columns, figures):
        watched = float(row.observed_s or 0.0)
        out.append(
            {
                "site": row.site,
                "camera": row.camera,
                "zone": row.name,
                "observed_s": round(watched, 1),
                "mean": {
                    c: round(float(getattr(row, f"mean_s_{c}")) / watched, 3) if watched else 0.0
                    for c in selection.categories
                },
                "max": {c: int(getattr(row, f"max_{c}")) for c in selection.categories},
            }
        )
    return out


def week_on_week(engine: Engine, selection: Selection, now: float | None = None) -> dict[str, Any]:
    """The last 7 whole local days against the 7 before them, by direction and category."""
    now = time.time() if now is None else now
    today = local_midnight(int(now), selection.tz)
    week_start = local_midnight(today - 7 * 86400 + 2 * HOUR, selection.tz)
    before_start = local_midnight(week_start - 7 * 86400 + 2 * HOUR, selection.tz)
    this = totals(engine, replace(selection, start=week_start, end=today, bucket="hour"))
    last = totals(engine, replace(selection, start=before_start, end=week_start, bucket="hour"))
    change: dict[str, dict[str, float | None]] = {}
    for d in selection.directions:
        change[d] = {}
        for c in selection.categories:
            before, after = last[d][c], this[d][c]
            change[d][c] = round(100.0 * (after - before) / before, 1) if before else None
    return {
        "this_week": {"start": week_start, "end": today, "counts": this},
        "last_week": {"start": before_start, "end": week_start, "counts": last},
        "change_percent": change,
    }


@dataclass(frozen=True)
class Completeness:
    """How much of the range a camera really reported: windows, seconds watched, offline."""

    site: str
    camera: str
    window_s: int | None
    expected: int
    received: int
    partial: int
    observed_s: float
    offline_s: float
    online: bool | None

    @property
    def ratio(self) -> float | None:
        return min(1.0, self.received / self.expected) if self.expected else None


def completeness(
    engine: Engine, selection: Selection, now: float | None = None
) -> list[Completeness]:
    """Per camera: windows received against those expected since it first reported (up to
    now), partial windows, seconds watched, and offline time from the status topics."""
    now = int(time.time() if now is None else now)
    start, end = selection.start, min(selection.end, now)
    c, h = t.cameras.c, t.camera_hours.c
    hours = (
        select(
            h.camera_id,
            func.sum(h.windows).label("windows"),
            func.sum(h.partial).label("partial"),
            func.sum(h.observed_s).label("observed_s"),
        )
        .where(h.hour >= start - start % HOUR, h.hour < end)
        .group_by(h.camera_id)
        .subquery()
    )
    query = (
        select(c.id, c.site, c.name, c.window_s, c.first_start, c.online, hours)
        .select_from(t.cameras.outerjoin(hours, hours.c.camera_id == c.id))
        .order_by(c.site, c.name)
    )
    query = _where(query, replace(selection, line=None))  # per camera: no line to filter on
    out = []
    with engine.connect() as connection:
        cameras = connection.execute(query).all()
        offline = _offline_seconds(connection, [(r.site, r.id) for r in cameras], start, end)
    for r in cameras:
        begin = max(start, r.first_start or end)
        expected = max(0, (end - begin) // r.window_s) if r.window_s else 0
        out.append(
            Completeness(
                site=r.site,
                camera=r.name,
                window_s=r.window_s,
                expected=int(expected),
                received=int(r.windows or 0),
                partial=int(r.partial or 0),
                observed_s=round(float(r.observed_s or 0.0), 1),
                offline_s=round(offline.get(r.id, 0.0), 1),
                online=r.online,
            )
        )
    return out


def _offline_seconds(
    connection: Any, cameras: Sequence[tuple[str, int]], start: int, end: int
) -> dict[int, float]:
    """Seconds in [start, end) each camera, or its whole site, said it was offline."""
    if not cameras or end <= start:
        return {}
    e = t.status_events.c
    site_names = sorted({site for site, _ in cameras})
    events = connection.execute(
        select(e.site, e.camera_id, e.at, e.online)
        .where(e.site.in_(site_names), e.at < end)
        .where(or_(e.camera_id.is_(None), e.camera_id.in_([cid for _, cid in cameras])))
        .order_by(e.at, e.id)
    ).all()
    by_site: dict[str, list[Any]] = defaultdict(list)
    for event in events:
        by_site[event.site].append(event)
    out = {}
    for site, camera in cameras:
        site_up: bool | None = None
        camera_up: bool | None = None
        offline, since = 0.0, start
        for event in by_site[site]:
            if event.camera_id not in (None, camera):
                continue
            at = max(event.at, start)
            if site_up is False or camera_up is False:
                offline += at - since
            since = at
            if event.camera_id is None:
                site_up = event.online
            else:
                camera_up = event.online
        if site_up is False or camera_up is False:
            offline += end - since
        out[camera] = offline
    return out


def sites(engine: Engine) -> list[dict[str, Any]]:
    """Every site with its cameras, their lines and zones, status and notice reference."""
    s, c = t.sites.c, t.cameras.c
    with engine.connect() as connection:
        site_rows = connection.execute(select(t.sites).order_by(s.name)).all()
        camera_rows = connection.execute(select(t.cameras).order_by(c.site, c.name)).all()
        names: dict[tuple[str, int], list[str]] = defaultdict(list)
        for kind, table in (("lines", t.lines), ("zones", t.zones)):
            for row in connection.execute(select(table).order_by(table.c.name)):
                names[(kind, row.camera_id)].append(row.name)
    cameras: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in camera_rows:
        cameras[row.site].append(
            {
                "camera": row.name,
                "online": row.online,
                "window_s": row.window_s,
                "first_start": row.first_start,
                "last_end": row.last_end,
                "lines": names[("lines", row.id)],
                "zones": names[("zones", row.id)],
            }
        )
    return [
        {
            "site": row.name,
            "online": row.online,
            "policy": row.policy,
            "policy_sha256": row.policy_sha256,
            "notice_url": row.notice_url,
            "has_notice": row.notice is not None,
            "cameras": cameras[row.name],
        }
        for row in site_rows
    ]


def notice(engine: Engine, site: str) -> dict[str, Any] | None:
    s = t.sites.c
    with engine.connect() as connection:
        row = connection.execute(
            select(s.name, s.policy, s.policy_sha256, s.notice_url, s.notice, s.notice_at).where(
                s.name == site
            )
        ).first()
    return None if row is None else dict(row._mapping)


def rejections(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(t.rejections).order_by(t.rejections.c.reason))
        return {row.reason: int(row._mapping["count"]) for row in rows}


def audit_heads(engine: Engine, site: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The audit-log heads the sites published, newest first: each is an anchor for
    ``edge audit verify FILE --expect-head HEAD --expect-entries ENTRIES`` on that site's box."""
    h = t.audit_heads.c
    query = select(h.site, h.entries, h.head, h.at, h.received_at)
    if site is not None:
        query = query.where(h.site == site)
    query = query.order_by(h.site, h.at.desc(), h.entries.desc()).limit(limit)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
