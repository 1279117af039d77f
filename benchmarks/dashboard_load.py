"""Dashboard page load and API latency on 90 days of one-minute windows for 20 cameras.

Why: the issue's acceptance asks that "pages load fast on 90 days of one-minute windows for 20
cameras (measure it)". Hour and day charts are summed from hourly totals, 15-minute charts from
the raw windows; only a data set of that size, stored by the real code and read through the real
server, says how fast that is. So:

- the data set (seeded, deterministic: daily and weekly profile, 1-2 lines per camera, a zone on
  some, pedestrians/bikes/vehicles, a few missing and partial windows, offline periods with
  their status events) goes in through ``Store.add_reports``, the collector's code path, and
  ends at the time it is generated, so the page's default range (the last 7 days) hits it;
- the server is the real ``edge dashboard --no-collect``, in its own process;
- every API call the page makes, and the heavier selections a user can pick, are timed over
  HTTP from this machine (first call = cold, then median and p95), with response sizes gzipped;
- with ``--browser`` the page is loaded in headless Chromium until its chart is drawn.

Run from the repository root (a rerun reuses the database when it holds the data set):

    .venv/bin/python -m benchmarks.dashboard_load --db var/bench/dashboard-90d.sqlite \\
        --browser --out benchmarks/results/2026-11-22-dashboard
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import yaml
from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from edge.dashboard import schema as t
from edge.dashboard.store import Store, migrate, open_engine
from edge.schema import NoticeMessage, PublishedReport, iso, report_id

WINDOW_S = 60
DAY = 86400
FPS = 12.5
CATEGORIES = ("pedestrian", "bike", "vehicle")
POLICY_SHA256 = hashlib.sha256(b"dashboard benchmark policy").hexdigest()
NOTICE_URL = "https://example.org/footfall-counting"
SLOW_MS = 300.0
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1280,1000",
)

# -- the data set ------------------------------------------------------------------------------

# Share of pedestrians, bikes and vehicles, and passages per minute at the weekday peak
# (first line, both directions), by kind of camera.
KINDS: dict[str, tuple[tuple[float, float, float], tuple[float, float], tuple[str, str]]] = {
    "entrance": ((0.95, 0.05, 0.0), (4.0, 12.0), ("door", "side-door")),
    "street": ((0.60, 0.15, 0.25), (15.0, 40.0), ("crossing", "pavement")),
    "carpark": ((0.25, 0.05, 0.70), (3.0, 10.0), ("barrier", "footpath")),
}


@dataclass(frozen=True)
class CameraSpec:
    index: int
    site: str
    name: str
    kind: str
    lines: tuple[str, ...]
    zones: tuple[str, ...]
    peak: float  # passages per minute, first line, at the weekday peak


@dataclass(frozen=True)
class Outage:
    """A camera (or, ``camera`` None, a whole site) offline over [start, end)."""

    site: str
    camera: str | None
    start: int
    end: int


@dataclass(frozen=True)
class DataSet:
    days: int
    cameras: tuple[CameraSpec, ...]
    sites: tuple[str, ...]
    start: int
    end: int
    outages: tuple[Outage, ...]
    seed: int
    tz: ZoneInfo

    def down(self, camera: CameraSpec) -> list[tuple[int, int]]:
        return [
            (o.start, o.end)
            for o in self.outages
            if o.site == camera.site and o.camera in (None, camera.name)
        ]


def layout(cameras: int, sites: int, seed: int) -> tuple[CameraSpec, ...]:
    """Cameras spread over the sites in blocks: 1 or 2 lines each, a zone on every fourth."""
    rng = np.random.default_rng([seed, 1])
    out = []
    for i in range(cameras):
        kind = ("entrance", "street", "carpark")[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
        _, (low, high), names = KINDS[kind]
        lines = names[: 1 + int(rng.random() < 0.5)]
        out.append(
            CameraSpec(
                index=i,
                site=f"site-{i * sites // cameras + 1}",
                name=f"cam-{i + 1:02d}",
                kind=kind,
                lines=lines,
                zones=("queue",) if i % 4 == 1 else (),
                peak=round(float(rng.uniform(low, high)), 2),
            )
        )
    return tuple(out)


def plan(days: int, cameras: int, sites: int, seed: int, tz: ZoneInfo, end: int) -> DataSet:
    """The data set ending at ``end`` (a whole minute): cameras, and when they were offline."""
    specs = layout(cameras, sites, seed)
    start = end - days * DAY
    rng = np.random.default_rng([seed, 2])
    outages = []
    # A few cameras offline for 30 min to 10 h, and one site (its box) down for 2 to 4 h;
    # never on the first or last day, so the data set's span is the same for every camera.
    for _ in range(max(1, cameras // 4)):
        camera = specs[int(rng.integers(cameras))]
        begin = start + DAY + int(rng.integers((days - 2) * DAY))
        length = int(rng.integers(1800, 10 * 3600))
        outages.append(Outage(camera.site, camera.name, begin, min(begin + length, end - DAY)))
    site = f"site-{int(rng.integers(sites)) + 1}"
    begin = start + DAY + int(rng.integers((days - 2) * DAY))
    outages.append(Outage(site, None, begin, begin + int(rng.integers(2 * 3600, 4 * 3600))))
    outages = [o for o in outages if o.end > o.start]
    return DataSet(
        days=days,
        cameras=specs,
        sites=tuple(sorted({c.site for c in specs})),
        start=start,
        end=end,
        outages=tuple(sorted(outages, key=lambda o: o.start)),
        seed=seed,
        tz=tz,
    )


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hour - centre) / width) ** 2)


def _between(hour: np.ndarray, low: float, high: float) -> np.ndarray:
    rise, fall = np.exp(-(hour - low) * 2), np.exp((hour - high) * 2)
    return np.asarray(1 / (1 + rise) / (1 + fall))


def profile(hour: np.ndarray, weekday: np.ndarray) -> np.ndarray:
    """Activity, about 1 at the weekday peaks: low at night, peaks at 08:30 and 17:30 and a
    smaller one at lunch on weekdays; one broad afternoon hump on Saturday, lower on Sunday."""
    week = (
        0.03
        + 0.30 * _between(hour, 7, 20.5)
        + 0.85 * _bump(hour, 8.5, 0.9)
        + 0.45 * _bump(hour, 12.5, 1.0)
        + 0.95 * _bump(hour, 17.6, 1.2)
    )
    weekend = 0.03 + 0.20 * _between(hour, 9, 21) + 0.65 * _bump(hour, 14.5, 2.6)
    weekend = np.where(weekday == 6, 0.6 * weekend, weekend)
    return np.where(weekday >= 5, weekend, week)


def utc_offset(moment: int, tz: ZoneInfo) -> float:
    offset = dt.datetime.fromtimestamp(moment, tz).utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def local_hours(moments: np.ndarray, tz: ZoneInfo) -> tuple[np.ndarray, np.ndarray]:
    """Local hour of the day (fractional) and weekday (0 = Monday) of Unix ``moments``."""
    hours, which = np.unique(moments - moments % 3600, return_inverse=True)
    offsets = np.array([utc_offset(int(h), tz) for h in hours])
    local = moments + offsets[which]
    return (local % DAY) / 3600, ((local // DAY) + 3) % 7  # 1970-01-01 was a Thursday


def camera_day(data: DataSet, camera: CameraSpec, day: int) -> list[dict[str, Any]]:
    """One camera's reports (as the JSON the collector receives) for day ``day`` of the set."""
    rng = np.random.default_rng([data.seed, 3, camera.index, day])
    weather = np.random.default_rng([data.seed, 4, int(camera.site[5:]), day]).lognormal(0, 0.12)
    starts = data.start + day * DAY + WINDOW_S * np.arange(DAY // WINDOW_S)
    hour, weekday = local_hours(starts, data.tz)
    mix, _, _ = KINDS[camera.kind]
    swing = 0.3 if camera.kind == "entrance" else 0.12  # in in the morning, out in the evening
    share_in = 0.5 + swing * np.tanh((13.5 - hour) / 1.5)
    level = camera.peak * weather * rng.lognormal(0, 0.05) * profile(hour, weekday)
    per_line = np.array([1.0, 0.4][: len(camera.lines)])
    rate = (
        level[:, None, None, None]
        * per_line[None, :, None, None]
        * np.stack([share_in, 1 - share_in], axis=1)[:, None, :, None]
        * np.array(mix)[None, None, None, :]
    )  # minute x line x direction x category
    observed = np.full(len(starts), float(WINDOW_S))
    keep = rng.random(len(starts)) > 5e-4  # a window lost now and then (spool overflow)
    for down_start, down_end in data.down(camera):
        ends = starts + WINDOW_S
        keep &= ~((starts >= down_start) & (ends <= down_end))  # wholly offline: no report
        cut_by_start = (starts < down_start) & (ends > down_start)
        cut_by_end = (starts < down_end) & (ends > down_end)
        observed = np.where(cut_by_start, down_start - starts, observed)
        observed = np.where(cut_by_end, ends - down_end, observed)
    cut = rng.random(len(starts)) < 2e-4  # a window cut short (restart, stream stall)
    observed = np.where(cut, rng.uniform(5, 55, len(starts)).round(3), observed)
    split = rng.random(len(starts)) < 1e-4  # a restart mid-window: two parts, one report id
    scale = np.clip(observed / WINDOW_S, 0, 1)
    counts = rng.poisson(rate * scale[:, None, None, None]).tolist()
    dwell = 1.5 if camera.kind == "entrance" else 0.4  # minutes in the zone
    occupancy = rate.sum(axis=(1, 2)) * dwell  # minute x category
    means = (rng.gamma(4.0, 1.0, occupancy.shape) * occupancy / 4).round(3).tolist()
    peaks = (np.ceil(occupancy) + rng.poisson(1 + occupancy / 2)).astype(int).tolist()
    frames = np.maximum(1, (observed * FPS).astype(int) - rng.poisson(2, len(starts))).tolist()
    reports: list[dict[str, Any]] = []
    for k in np.flatnonzero(keep).tolist():
        start = float(starts[k])
        report = {
            "schema_version": 1,
            "report_id": report_id(camera.name, start, POLICY_SHA256),
            "camera": camera.name,
            "start": start,
            "end": start + WINDOW_S,
            "window_start": iso(start),
            "window_end": iso(start + WINDOW_S),
            "frames": frames[k],
            "observed_s": float(observed[k]),
            "partial": bool(observed[k] < WINDOW_S),
            "lines": {
                name: {d: dict(zip(CATEGORIES, counts[k][j][i], strict=True))
                       for i, d in enumerate(("in", "out"))}
                for j, name in enumerate(camera.lines)
            },
            "zones": {
                name: {c: {"mean": means[k][i], "max": peaks[k][i]}
                       for i, c in enumerate(CATEGORIES)}
                for name in camera.zones
            },
            "policy_sha256": POLICY_SHA256,
            "notice_url": NOTICE_URL,
        }  # fmt: skip
        if split[k] and not report["partial"]:
            first = round(float(rng.uniform(10, 50)), 3)
            for part, seconds in ((0, first), (1, WINDOW_S - first)):
                piece = json.loads(json.dumps(report))
                piece["observed_s"], piece["partial"] = seconds, True
                piece["frames"] = max(1, int(seconds * FPS))
                for per in piece["lines"].values():
                    for d in per.values():
                        for c in d:
                            d[c] = d[c] // 2 + (d[c] % 2) * part
                reports.append(piece)
        else:
            reports.append(report)
    return reports


@dataclass
class Generation:
    seconds: float = 0.0
    build_s: float = 0.0  # numpy draws and report dicts
    validate_s: float = 0.0  # PublishedReport.model_validate, as the collector does
    store_s: float = 0.0  # Store.add_reports
    reports: int = 0
    stored: int = 0
    duplicates: int = 0
    status_events: int = 0
    reports_per_s: float = 0.0
    load_before: list[float] = field(default_factory=list)
    load_after: list[float] = field(default_factory=list)
    reused: bool = False


def generate(engine: Engine, data: DataSet) -> Generation:
    """Store the data set day by day, one ``add_reports`` per site and day (about 7200 reports),
    with the status changes in time order, as the collector would have."""
    store = Store(engine, raw_retention_days=data.days + 1)
    gen = Generation(load_before=load())
    began = time.perf_counter()
    events = sorted(
        [(data.start, s, None, True) for s in data.sites]
        + [(data.start, c.site, c.name, True) for c in data.cameras]
        + [(o.start, o.site, o.camera, False) for o in data.outages]
        + [(o.end, o.site, o.camera, True) for o in data.outages],
        key=lambda e: e[0],
    )
    for site in data.sites:
        store.set_notice(
            site,
            NoticeMessage(schema_version=1, policy="benchmark", policy_sha256=POLICY_SHA256,
                          notice_url=NOTICE_URL, notice=f"Footfall counting at {site}."),
            data.start,
        )  # fmt: skip
    for day in range(data.days):
        day_end = data.start + (day + 1) * DAY
        while events and events[0][0] < day_end:
            at, site, camera, online = events.pop(0)
            store.set_status(site, camera, online, at)
            gen.status_events += 1
        for site in data.sites:
            tick = time.perf_counter()
            raw = [r for c in data.cameras if c.site == site for r in camera_day(data, c, day)]
            tock = time.perf_counter()
            reports = [PublishedReport.model_validate(r) for r in raw]
            tack = time.perf_counter()
            added = store.add_reports(site, reports, now=day_end)
            gen.build_s += tock - tick
            gen.validate_s += tack - tock
            gen.store_s += time.perf_counter() - tack
            gen.reports += len(reports)
            gen.stored += added.stored
            gen.duplicates += added.duplicates
        elapsed = time.perf_counter() - began
        print(
            f"  day {day + 1}/{data.days}: {gen.reports:,} reports, {elapsed:.0f} s, "
            f"{gen.reports / elapsed:,.0f} reports/s (build {gen.build_s:.0f} s, "
            f"validate {gen.validate_s:.0f} s, store {gen.store_s:.0f} s)",
            file=sys.stderr,
        )
    gen.seconds = time.perf_counter() - began
    gen.reports_per_s = round(gen.reports / gen.seconds, 1)
    gen.load_after = load()
    for name in ("seconds", "build_s", "validate_s", "store_s"):
        setattr(gen, name, round(getattr(gen, name), 1))
    return gen


def held_end(engine: Engine, data: DataSet) -> int | None:
    """The end of the data set if the database holds it (same cameras, lines, zones and span),
    None if it is empty; ``SystemExit`` if it holds something else."""
    if "cameras" not in inspect(engine).get_table_names():
        return None
    with engine.connect() as connection:
        cameras = connection.execute(select(t.cameras)).all()
        if not cameras:
            return None
        names: dict[int, list[str]] = {}
        for table in (t.lines, t.zones):
            for row in connection.execute(select(table.c.camera_id, table.c.name)):
                names.setdefault(row.camera_id, []).append(row.name)
    want = {(c.site, c.name): sorted(c.lines + c.zones) for c in data.cameras}
    have = {(c.site, c.name): sorted(names.get(c.id, [])) for c in cameras}
    spans = [(c.last_end or 0) - (c.first_start or 0) for c in cameras]
    if have == want and all(abs(s - data.days * DAY) <= 3600 for s in spans):
        return max(int(c.last_end) for c in cameras)
    raise SystemExit(
        "the database holds another data set (or an interrupted one): rerun with --rebuild"
    )


def wipe(url: str) -> None:
    """Remove the data set: the SQLite file, or the dashboard's tables in PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm", ".generation.json"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    engine = open_engine(url)
    t.metadata.drop_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def table_rows(engine: Engine) -> dict[str, int]:
    tables = (t.windows, t.line_counts, t.zone_counts, t.line_hours, t.zone_hours, t.camera_hours,
              t.status_events, t.lines, t.zones)  # fmt: skip
    count = func.count()
    with engine.connect() as connection:
        return {
            table.name: int(connection.execute(select(count).select_from(table)).scalar_one())
            for table in tables
        }


def database_bytes(engine: Engine, url: str) -> int:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(
            Path(f"{parsed.database}{s}").stat().st_size
            for s in ("", "-wal", "-shm")
            if Path(f"{parsed.database}{s}").exists()
        )
    with engine.connect() as connection:
        size = text("SELECT pg_database_size(current_database())")
        return int(connection.execute(size).scalar_one())


def sidecar(url: str) -> Path | None:
    """Where the generation figures of a SQLite data set are kept, for the runs that reuse it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    return Path(f"{parsed.database}.generation.json")


def prepare(url: str, data_args: argparse.Namespace, rebuild: bool) -> dict[str, Any]:
    """Make sure ``url`` holds the data set; its description, rows, size and generation."""
    if rebuild:
        wipe(url)
    engine = open_engine(url)
    migrate(engine)
    tz = ZoneInfo(data_args.timezone)
    shape = (data_args.days, data_args.cameras, data_args.sites, data_args.seed, tz)
    end = held_end(engine, plan(*shape, 0))
    figures = sidecar(url)
    if end is None:
        now = int(time.time())
        data = plan(*shape, now - now % WINDOW_S)
        print(f"generating {data.days} days x {len(data.cameras)} cameras into {redact(url)}",
              file=sys.stderr)  # fmt: skip
        gen = generate(engine, data)
        if figures is not None:
            figures.write_text(json.dumps({"end": data.end, **asdict(gen)}) + "\n")
    else:
        data = plan(*shape, end)
        print(f"reusing the data set in {redact(url)} (ends {iso(end)})", file=sys.stderr)
        earlier = json.loads(figures.read_text()) if figures and figures.exists() else {}
        gen = Generation(**{k: v for k, v in earlier.items() if k != "end"})
        gen.reused = True
    rows = table_rows(engine)
    size = database_bytes(engine, url)
    engine.dispose()
    return {"data": data, "generation": asdict(gen), "rows": rows, "database_bytes": size}


# -- the server ----------------------------------------------------------------------------------


def redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, timezone: str, work: Path, retention_days: int) -> Iterator[str]:
    """``edge dashboard --no-collect`` on a free port; yields its base URL once /healthz answers.
    The raw retention is longer than the data set, so the start-up retention pass deletes
    nothing of a reused data set."""
    port = free_port()
    config = work / f"dashboard-{port}.yaml"
    settings = {"database": url, "listen_port": port, "timezone": timezone,
                "raw_retention_days": retention_days}  # fmt: skip
    config.write_text(yaml.safe_dump({"dashboard": settings}), encoding="utf-8")
    config.chmod(0o600)  # a PostgreSQL URL may hold a password
    log_path = work / f"server-{port}.log"
    edge = Path(sys.executable).parent / "edge"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(edge), "dashboard", "-c", str(config), "--no-collect"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"edge dashboard ended ({process.returncode}):\n"
                                 + log_path.read_text()[-3000:])  # fmt: skip
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("edge dashboard did not answer /healthz within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        config.unlink(missing_ok=True)


# -- HTTP measurements ---------------------------------------------------------------------------


@dataclass
class Timing:
    name: str
    path: str
    status: int
    cold_ms: float
    median_ms: float
    p95_ms: float
    max_ms: float
    wire_bytes: int  # gzip on the wire
    body_bytes: int
    rows: int | None
    samples_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def url(self) -> str:
        return self.path + (f"?{urlencode(self.params)}" if self.params else "")


def day_range(data: DataSet, days: int) -> tuple[tuple[str, str], ...]:
    """``days`` whole local days up to the data set's last day, as the page asks (``to`` is the
    day after the picker's last day: exclusive)."""
    last = dt.datetime.fromtimestamp(data.end - 1, data.tz).date()
    first = last - dt.timedelta(days=days - 1)
    return (("from", first.isoformat()), ("to", (last + dt.timedelta(days=1)).isoformat()))


def cases(data: DataSet) -> tuple[list[Case], dict[str, Any]]:
    """What is measured: the page and each API call it makes, for the default selection and
    for heavier ones a user can pick; and the selection the browser loads."""
    camera = data.cameras[0]
    one = (("site", camera.site), ("camera", camera.name), ("line", camera.lines[0]))
    cam = (("site", camera.site), ("camera", camera.name))
    site = (("site", camera.site),)
    week, month, quarter = day_range(data, 7), day_range(data, 30), day_range(data, data.days)
    hour, day, quarter_hour = (("bucket", "hour"),), (("bucket", "day"),), (("bucket", "15min"),)
    n = data.days
    out = [
        Case("page /", "/"),
        Case("static app.js", "/static/app.js"),
        Case("config", "/api/config"),
        Case("sites", "/api/sites"),
        Case("counts: line, 7 d, hour (page default)", "/api/counts", one + week + hour),
        Case(f"counts: line, {n} d, day", "/api/counts", one + quarter + day),
        Case(f"counts: line, {n} d, hour", "/api/counts", one + quarter + hour),
        Case("counts: camera, 30 d, 15 min", "/api/counts", cam + month + quarter_hour),
        Case(f"counts: site, {n} d, day", "/api/counts", site + quarter + day),
        Case("counts: all sites, 7 d, hour", "/api/counts", week + hour),
        Case(f"counts: all sites, {n} d, hour", "/api/counts", quarter + hour),
        Case("summary: line, 7 d, hour (default)", "/api/summary", one + week + hour),
        Case(f"summary: all cameras, {n} d, day", "/api/summary", quarter + day),
        Case(f"summary: all cameras, {n} d, hour", "/api/summary", quarter + hour),
        Case("completeness: line, 7 d (default)", "/api/completeness", one + week + hour),
        Case(f"completeness: all cameras, {n} d", "/api/completeness", quarter + day),
        Case(f"notice: {camera.site}", f"/api/sites/{camera.site}/notice"),
        Case(f"counts.csv: site, {n} d, hour", "/api/counts.csv", site + quarter + hour),
        Case(f"counts.json: site, {n} d, hour", "/api/counts.json", site + quarter + hour),
    ]
    browser = {
        "line, 7 d, hour (default)": one + week + hour,
        f"line, {n} d, day": one + quarter + day,
    }
    return out, browser


def rows_of(response: httpx.Response) -> int | None:
    kind = response.headers.get("content-type", "")
    if kind.startswith("text/csv"):
        return response.text.count("\n") - 1
    if kind.startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("rows"), list):
            return len(body["rows"])
        if isinstance(body, list):
            return len(body)
    return None


def percentile(samples: Sequence[float], q: float) -> float:
    return round(float(np.percentile(samples, q)), 1)


def measure_http(base: str, todo: Sequence[Case], repeat: int) -> list[Timing]:
    """Each case once cold (its first request since the server started), then ``repeat`` times
    on the same keep-alive connection, as a browser does."""
    out = []
    with httpx.Client(base_url=base, timeout=300, headers={"Accept-Encoding": "gzip"}) as client:
        for case in todo:
            samples = []
            for _ in range(repeat + 1):
                began = time.perf_counter()
                response = client.get(case.url)
                samples.append((time.perf_counter() - began) * 1e3)
            warm = samples[1:]
            timing = Timing(
                name=case.name,
                path=case.url,
                status=response.status_code,
                cold_ms=round(samples[0], 1),
                median_ms=round(statistics.median(warm), 1),
                p95_ms=percentile(warm, 95),
                max_ms=round(max(warm), 1),
                wire_bytes=response.num_bytes_downloaded,
                body_bytes=len(response.content),
                rows=rows_of(response),
                samples_ms=[round(s, 1) for s in samples],
            )
            print(
                f"  {timing.name}: {timing.status}, cold {timing.cold_ms} ms, median "
                f"{timing.median_ms} ms, p95 {timing.p95_ms} ms, {timing.wire_bytes:,} B",
                file=sys.stderr,
            )
            out.append(timing)
    return out


# -- the page in a browser -------------------------------------------------------------------------

# Installed before the page's own scripts: notes when the chart's SVG is in the DOM (it carries
# data-buckets once drawn) and the next frame after it, relative to the navigation's start.
CHART_WATCH = """
new MutationObserver((_, observer) => {
  if (!document.querySelector("#chart svg[data-buckets]")) return;
  observer.disconnect();
  window.__chartDrawn = performance.now();
  const painted = () => { window.__chartPainted = performance.now(); };
  requestAnimationFrame(() => requestAnimationFrame(painted));
}).observe(document, { childList: true, subtree: true });
"""

BROWSER_TIMES = ("response_end_ms", "dom_content_loaded_ms", "load_event_ms", "chart_drawn_ms",
                 "chart_painted_ms", "wall_ms")  # fmt: skip

NAVIGATION = """
const n = performance.getEntriesByType("navigation")[0];
const $error = document.getElementById("error");
const api = performance.getEntriesByType("resource").filter((r) => r.name.includes("/api/"));
return {
  response_end_ms: n.responseEnd, dom_content_loaded_ms: n.domContentLoadedEventEnd,
  load_event_ms: n.loadEventEnd, chart_drawn_ms: window.__chartDrawn,
  chart_painted_ms: window.__chartPainted || null,
  buckets: Number(document.querySelector("#chart svg").getAttribute("data-buckets")),
  error: $error.hidden ? null : $error.textContent,
  api: api.map((r) => ({ url: r.name.replace(location.origin, ""), start_ms: r.startTime,
                         duration_ms: r.duration, transfer_bytes: r.transferSize })),
};
"""


def rounded(value: Any) -> Any:
    """``value`` with its floats to 0.1 (milliseconds from the browser carry float noise)."""
    if isinstance(value, float):
        return round(value, 1)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def browser_loads(
    base: str, selections: dict[str, tuple[tuple[str, str], ...]], repeat: int
) -> list[dict[str, Any]]:
    """Each selection loaded in a fresh headless Chromium (empty profile and cache: cold), then
    ``repeat`` more times in it (warm); times from the navigation's start, in the page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    out = []
    for name, params in selections.items():
        url = f"{base}/?{urlencode(params)}"
        with tempfile.TemporaryDirectory(prefix="dashboard-chromium-") as profile_dir:
            options = webdriver.ChromeOptions()
            options.binary_location = CHROMIUM
            for flag in (*CHROME_FLAGS, f"--user-data-dir={profile_dir}"):
                options.add_argument(flag)
            driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
            try:
                driver.execute_cdp_cmd(
                    "Page.addScriptToEvaluateOnNewDocument", {"source": CHART_WATCH}
                )
                loads = []
                for _ in range(repeat + 1):
                    began = time.perf_counter()
                    driver.get(url)
                    WebDriverWait(driver, 300, poll_frequency=0.01).until(
                        lambda d: d.execute_script(
                            "return window.__chartPainted !== undefined"
                            ' || !document.getElementById("error").hidden'
                        )
                    )
                    wall = (time.perf_counter() - began) * 1e3
                    figures = driver.execute_script(NAVIGATION)
                    if figures["error"]:
                        raise SystemExit(f"the page says: {figures['error']}")
                    loads.append({"wall_ms": round(wall, 1), **rounded(figures)})
            finally:
                driver.quit()
        warm = loads[1:]

        def median(key: str, rows: list[dict[str, Any]] = warm) -> float:
            return round(statistics.median(float(r[key]) for r in rows), 1)

        result = {
            "name": name,
            "url": url.replace(base, ""),
            "buckets": loads[0]["buckets"],
            "cold": {k: v for k, v in loads[0].items() if k != "error"},
            "warm_median": {key: median(key) for key in BROWSER_TIMES},
            "warm_loads": warm,
        }
        print(
            f"  browser {name}: chart drawn cold {loads[0]['chart_drawn_ms']:.0f} ms, warm "
            f"{result['warm_median']['chart_drawn_ms']:.0f} ms",
            file=sys.stderr,
        )
        out.append(result)
    return out


# -- the report ----------------------------------------------------------------------------------


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def commit() -> str:
    """The checkout measured: its commit, "+dirty" when edge/ has changes not committed."""

    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return found.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "edge") else "")


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_average_at_start": load(),
    }


def mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} kiB"


def markdown(result: dict[str, Any]) -> str:
    """The figures as Markdown, the exact command first."""
    out = [
        "# Dashboard load benchmark",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Run {result['date']} at commit {result['commit']} on {result['machine']['platform']}, "
        f"{result['machine']['cpus']} CPUs, Python {result['machine']['python']}, "
        f"SQLite {result['machine']['sqlite']}.",
        f"Load average (1, 5, 15 min) at start: {result['machine']['load_average_at_start']} "
        "(other jobs share the machine).",
        "",
    ]
    for backend in result["backends"]:
        data, gen = backend["data_set"], backend["generation"]
        out += [
            f"## {backend['database']}",
            "",
            f"Data set: {data['days']} days x {data['cameras']} cameras on {data['sites']} sites, "
            f"{data['lines']} lines, {data['zones']} zone(s), one-minute windows, "
            f"{data['start']} to {data['end']}, seed {data['seed']}, {data['timezone']}; "
            f"{len(data['outages'])} offline periods.",
            "",
            "| table | rows |",
            "|---|---:|",
            *(f"| {name} | {n:,} |" for name, n in backend["rows"].items()),
            "",
            f"Database size: {mib(backend['database_bytes'])}.",
        ]
        if gen["reused"]:
            out.append("The data set was generated by an earlier run and reused.")
        if gen["reports"]:
            out += [
                f"Generation through `Store.add_reports`: {gen['reports']:,} reports in "
                f"{gen['seconds']:,.0f} s = {gen['reports_per_s']:,.0f} reports/s "
                f"(building the report dicts {gen['build_s']:,.0f} s, "
                f"`PublishedReport.model_validate` {gen['validate_s']:,.0f} s, "
                f"`add_reports` {gen['store_s']:,.0f} s); {gen['stored']:,} stored, "
                f"{gen['status_events']} status changes. Load average before: "
                f"{gen['load_before']}, after: {gen['load_after']}.",
                "",
            ]
        out += [
            f"### API over HTTP (1 cold call, then {result['repeat']}; gzip accepted)",
            "",
            f"Load average before: {backend['load_before_http']}, after: "
            f"{backend['load_after_http']}. Cold: the first request of its kind since the "
            "server started (the database file is in the OS page cache all the same); p95 of "
            f"{result['repeat']} calls is close to their worst. Sizes: gzip on the wire, "
            "then the body as sent before compression.",
            "",
            "| request | status | rows | cold ms | median ms | p95 ms | on the wire | body | "
            f"> {SLOW_MS:.0f} ms |",
            "|---|---:|---:|---:|---:|---:|---:|---:|:---:|",
        ]
        for h in backend["http"]:
            slow = "**slow**" if max(h["median_ms"], h["cold_ms"]) > SLOW_MS else ""
            rows = "" if h["rows"] is None else f"{h['rows']:,}"
            out.append(
                f"| {h['name']} | {h['status']} | {rows} | {h['cold_ms']:,.0f} | "
                f"{h['median_ms']:,.0f} | {h['p95_ms']:,.0f} | {mib(h['wire_bytes'])} | "
                f"{mib(h['body_bytes'])} | {slow} |"
            )
        out += ["", "Requests:", ""]
        out += [f"- {h['name']}: `{h['path']}`" for h in backend["http"]]
        out.append("")
        if backend.get("browser"):
            out += [
                f"### The page in headless Chromium (cold = fresh profile, warm = median of "
                f"{result['browser_repeat']})",
                "",
                f"Load average before: {backend['load_before_browser']}, after: "
                f"{backend['load_after_browser']}. Times from the navigation's start: the "
                "HTML received, DOMContentLoaded, the load event, the chart's SVG in the DOM, "
                "the frame after it; wall = from `driver.get` to that frame, seen from "
                "Python (WebDriver's overhead included).",
                "",
                "| selection | buckets | load | HTML ms | DOMContentLoaded ms | load ms | "
                "chart drawn ms | chart painted ms | wall ms |",
                "|---|---:|---|---:|---:|---:|---:|---:|---:|",
            ]
            for b in backend["browser"]:
                for label, figures in (("cold", b["cold"]), ("warm", b["warm_median"])):
                    cells = " | ".join(f"{float(figures[k] or 0):,.0f}" for k in BROWSER_TIMES)
                    out.append(f"| {b['name']} | {b['buckets']} | {label} | {cells} |")
            out += ["", "API calls of the cold loads, as the browser saw them:", ""]
            for b in backend["browser"]:
                calls = ", ".join(
                    f"`{a['url'].split('?')[0]}` {a['duration_ms']:,.0f} ms"
                    for a in b["cold"]["api"]
                )
                out.append(f"- {b['name']} (`{b['url']}`): {calls}")
            out.append("")
    return "\n".join(out)


def describe(data: DataSet) -> dict[str, Any]:
    return {
        "days": data.days,
        "cameras": len(data.cameras),
        "sites": len(data.sites),
        "lines": sum(len(c.lines) for c in data.cameras),
        "zones": sum(len(c.zones) for c in data.cameras),
        "start": iso(data.start),
        "end": iso(data.end),
        "seed": data.seed,
        "timezone": data.tz.key,
        "layout": [asdict(c) for c in data.cameras],
        "outages": [
            {"site": o.site, "camera": o.camera, "from": iso(o.start), "to": iso(o.end)}
            for o in data.outages
        ],
    }


def run_backend(
    url: str, args: argparse.Namespace, work: Path, progress: Callable[[str], None]
) -> dict[str, Any]:
    progress(f"data set in {redact(url)}")
    prepared = prepare(url, args, args.rebuild)
    data: DataSet = prepared["data"]
    backend: dict[str, Any] = {
        "database": redact(url),
        "data_set": describe(data),
        "generation": prepared["generation"],
        "rows": prepared["rows"],
        "database_bytes": prepared["database_bytes"],
    }
    todo, selections = cases(data)
    with server(url, args.timezone, work, 3650) as base:
        progress(f"HTTP against {base}")
        backend["load_before_http"] = load()
        backend["http"] = [asdict(x) for x in measure_http(base, todo, args.repeat)]
        backend["load_after_http"] = load()
        if args.browser:
            progress("headless Chromium")
            backend["load_before_browser"] = load()
            backend["browser"] = browser_loads(base, selections, args.browser_repeat)
            backend["load_after_browser"] = load()
    return backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("var/bench/dashboard-load.sqlite"),
                        help="SQLite file of the data set, reused when it holds it")  # fmt: skip
    parser.add_argument("--rebuild", action="store_true", help="regenerate the data set")
    parser.add_argument("--postgres", metavar="URL",
                        help="also measure against this PostgreSQL database "
                        "(postgresql+psycopg://USER:PASSWORD@HOST/DB)")  # fmt: skip
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--cameras", type=int, default=20)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--timezone", default="Europe/Paris")
    parser.add_argument("--repeat", type=int, default=10, help="warm calls per request")
    parser.add_argument("--browser", action="store_true", help="also load the page in Chromium")
    parser.add_argument("--browser-repeat", type=int, default=5, help="warm page loads")
    parser.add_argument("--out", type=Path, help="folder for dashboard_load.json and .md")
    args = parser.parse_args()
    if not 1 <= args.sites <= args.cameras:
        parser.error("--sites must be between 1 and --cameras")
    if args.days < 7:
        parser.error("--days must be 7 or more (the page's default range is 7 days)")

    command = shlex.join([os.path.relpath(sys.executable), "-m", "benchmarks.dashboard_load",
                          *sys.argv[1:]])  # fmt: skip
    if args.postgres:
        command = command.replace(args.postgres, redact(args.postgres))
    result: dict[str, Any] = {
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "repeat": args.repeat,
        "browser_repeat": args.browser_repeat,
        "backends": [],
    }

    def progress(what: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {what}, load {load()}", file=sys.stderr)

    urls = [f"sqlite:///{args.db.resolve()}"] + ([args.postgres] if args.postgres else [])
    with tempfile.TemporaryDirectory(prefix="dashboard-load-") as tmp:
        for url in urls:
            result["backends"].append(run_backend(url, args, Path(tmp), progress))
    report = markdown(result)
    print(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "dashboard_load.json").write_text(json.dumps(result, indent=1) + "\n")
        (args.out / "dashboard_load.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
