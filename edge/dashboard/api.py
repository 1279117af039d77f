"""The web side: a read-only JSON API, CSV/JSON exports and the offline page that charts them.

Every route is a GET: nothing on the public side can change the data or the settings (retention
and migrations run inside the service). With ``access: token`` the ``/api`` routes need
``Authorization: Bearer TOKEN`` (or ``?token=`` for a download link); the page and its
scripts hold no data and stay public. The page's JavaScript is ours and served from the
package: no CDN, nothing fetched from the internet. The OpenAPI description is
``/openapi.json``; the interactive docs are off because they load scripts from a CDN.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import secrets
import time
from collections.abc import Iterator
from importlib.resources import files
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from edge import __version__
from edge.config import DashboardConfig
from edge.dashboard import comptage, queries
from edge.dashboard.ingest import IngestCounters
from edge.dashboard.queries import BUCKETS, Bucket, CountRow, Selection
from edge.schema import CATEGORY_NAMES, DIRECTIONS, NAME_PATTERN, CategoryName, Direction

STATIC = files("edge.dashboard") / "static"
MAX_BUCKETS = 20_000  # per line: 15-minute buckets for 200 days, hours for 2 years
BUCKET_SECONDS = {"15min": 900, "hour": 3600, "day": 86400}
LAST_MOMENT = int(dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc).timestamp())
# Site, camera and line names are slugs (edge.schema.NAME_PATTERN): anything else matches
# nothing, and a NUL byte or 10,000 characters would only reach the database to be refused.
NameQuery = Annotated[str | None, Query(max_length=32, pattern=NAME_PATTERN)]
MAX_POSITIONS = 1000  # cameras placed in one national-format export


def parse_moment(name: str, value: str | None, tz: ZoneInfo, default: float) -> int:
    """``2026-11-20`` (local midnight), ``2026-11-20T08:00`` (local) or with an offset/Z,
    from 1970 to 9000: further out, bucket bounds and local times overflow ``datetime``."""
    if value is None:
        return int(default)
    try:
        if not value.isprintable():  # fromisoformat overlooks a trailing NUL
            raise ValueError(value)
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz)
        seconds = int(moment.timestamp())
    except (ValueError, OverflowError):
        raise HTTPException(
            422, f"{name}: expected a date or ISO 8601 time such as 2026-11-20T08:00, got {value!r}"
        ) from None
    if not 0 <= seconds < LAST_MOMENT:
        raise HTTPException(422, f"{name}: out of range (1970 to 9000)")
    return seconds


@functools.lru_cache(maxsize=1 << 16)  # thousands of rows share each bucket's times
def iso_local(moment: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(moment, tz).isoformat()


def selection(
    request: Request,
    site: NameQuery = None,
    camera: NameQuery = None,
    line: NameQuery = None,
    start: Annotated[
        str | None, Query(alias="from", max_length=64, description="default: 7 days ago")
    ] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description="default: now")] = None,
    bucket: Bucket = "hour",
    category: Annotated[list[CategoryName] | None, Query()] = None,
    direction: Annotated[list[Direction] | None, Query()] = None,
    tz: Annotated[
        str | None, Query(max_length=64, description="IANA zone; default: the dashboard's")
    ] = None,
) -> Selection:
    """The query parameters shared by counts, exports, summary and completeness."""
    try:
        zone = ZoneInfo(tz) if tz else request.app.state.timezone
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name no file can have
        raise HTTPException(422, f"tz: unknown time zone {tz!r}") from None
    now = time.time()
    to = parse_moment("to", end, zone, now)
    since = parse_moment("from", start, zone, to - 7 * 86400)
    if since >= to:
        raise HTTPException(422, "from: must be before to")
    if (to - since) / BUCKET_SECONDS[bucket] > MAX_BUCKETS:
        raise HTTPException(422, f"from/to: more than {MAX_BUCKETS} {bucket} buckets")
    return Selection(
        start=since,
        end=to,
        tz=zone,
        bucket=bucket,
        site=site,
        camera=camera,
        line=line,
        categories=tuple(category) if category else CATEGORY_NAMES,
        directions=tuple(direction) if direction else DIRECTIONS,
    )


Selected = Annotated[Selection, Depends(selection)]


def create_app(
    config: DashboardConfig, engine: Engine, counters: IngestCounters | None = None
) -> FastAPI:
    """The dashboard's web application over ``engine``; ``counters`` from the collector."""
    app = FastAPI(
        title=f"{config.title}: footfall counts",
        version=__version__,
        description="Anonymous, time-aggregated counts of pedestrians, bikes and vehicles "
        f"crossing counting lines. Licence: {config.licence}.",
        docs_url=None,
        redoc_url=None,
    )
    # Level 5, not 9: a 14 MiB export compresses in 63 ms instead of 515 ms, 16 % larger.
    app.add_middleware(GZipMiddleware, minimum_size=2048, compresslevel=5)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.state.timezone = ZoneInfo(config.timezone)
    licence = {
        "licence": config.licence,
        "licence_url": config.licence_url,
        "attribution": config.attribution,
    }

    def authorised(request: Request) -> None:
        if config.access == "public" or config.token is None:
            return
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        given = given or request.query_params.get("token", "")
        if not secrets.compare_digest(given.encode(), config.token.get_secret_value().encode()):
            raise HTTPException(401, "a valid token is required", {"WWW-Authenticate": "Bearer"})

    def row_json(row: CountRow, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "site": row.site,
            "camera": row.camera,
            "line": row.line,
            "start": iso_local(row.start, tz),
            "end": iso_local(row.end, tz),
            **{d: per for d, per in row.counts.items()},
        }

    def hours_document(s: Selection, key: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """Figures summed over the range in whole hours, with the range and the licence."""
        start, end = queries.whole_hours(s)
        return {
            "from": iso_local(start, s.tz),
            "to": iso_local(end, s.tz),
            "tz": s.tz.key,
            **licence,
            key: rows,
        }

    def counts_document(s: Selection) -> dict[str, Any]:
        start, end = queries.widen(s)
        return {
            "from": iso_local(start, s.tz),
            "to": iso_local(end, s.tz),
            "bucket": s.bucket,
            "tz": s.tz.key,
            **licence,
            "rows": [row_json(r, s.tz) for r in queries.counts(engine, s)],
        }

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    @app.exception_handler(SQLAlchemyError)
    def unavailable(request: Request, err: SQLAlchemyError) -> JSONResponse:
        """The database is down or refuses a query: say so, not an internal error."""
        return JSONResponse({"detail": "the database is unavailable"}, status_code=503)

    @app.get("/healthz", tags=["service"], summary="Is the collector connected and storing?")
    def health() -> JSONResponse:
        """503 while the collector cannot store (the database is failing) or has stopped."""
        ingest = counters or IngestCounters()
        status = "ok" if counters is None or counters.storing == "ok" else counters.storing
        body = {"status": status, "version": __version__, "ingest": ingest.__dict__}
        return JSONResponse(body, status_code=200 if status == "ok" else 503)

    guard = [Depends(authorised)]

    @app.get("/api/config", tags=["meta"], dependencies=guard)
    def settings() -> dict[str, Any]:
        """What the page needs to know: title, time zone, buckets, licence, retention."""
        return {
            "title": config.title,
            "timezone": config.timezone,
            "buckets": list(BUCKETS),
            "raw_retention_days": config.raw_retention_days,
            **licence,
        }

    @app.get("/api/sites", tags=["meta"], dependencies=guard)
    def sites() -> list[dict[str, Any]]:
        """Every site, its cameras, their lines and zones, status and notice reference."""
        return queries.sites(engine)

    @app.get("/api/sites/{site}/notice", tags=["meta"], dependencies=guard)
    def notice(site: Annotated[str, Path(max_length=32, pattern=NAME_PATTERN)]) -> dict[str, Any]:
        """The public information notice the site's counting box publishes."""
        found = queries.notice(engine, site)
        if found is None or found["notice"] is None:
            raise HTTPException(404, f"site {site!r}: no notice received")
        return found

    @app.get("/api/counts", tags=["counts"], dependencies=guard)
    def counts(s: Selected) -> dict[str, Any]:
        """Passages per line and bucket, by direction and category; buckets with no window
        received are absent. The range is widened to whole buckets."""
        return counts_document(s)

    @app.get("/api/counts.json", tags=["exports"], dependencies=guard)
    def counts_json(s: Selected) -> JSONResponse:
        """The same as /api/counts, as a file to download."""
        return JSONResponse(counts_document(s), headers=_attachment(s, "json"))

    @app.get("/api/counts.csv", tags=["exports"], dependencies=guard)
    def counts_csv(s: Selected) -> StreamingResponse:
        """One row per line, bucket, direction and category, with the licence on every row."""
        rows = queries.counts(engine, s)
        return StreamingResponse(
            _csv(rows, s, licence), media_type="text/csv; charset=utf-8",
            headers=_attachment(s, "csv"),
        )  # fmt: skip

    @app.get("/api/comptage.zip", tags=["exports"], dependencies=guard)
    def comptage_zip(
        s: Selected,
        position: Annotated[
            list[Annotated[str, Field(max_length=100)]] | None,
            Query(
                max_length=MAX_POSITIONS,
                description="SITE.CAMERA:LONGITUDE,LATITUDE (WGS84), one per camera exported: "
                "the national schema requires coordinates and the boxes never publish them",
            ),
        ] = None,
    ) -> Response:
        """The same counts as /api/counts.csv in the French national mobility-counting format
        (schéma comptage mobilités 0.2.3 of transport.data.gouv.fr): a ZIP of sites.csv,
        channels.csv, measures.csv, their Table Schemas and a datapackage.json with the
        licence. Lines only; one measure per channel and bucket (15min, hour or day)."""
        positions = _positions(position or [])
        rows = queries.counts(engine, s)
        missing = comptage.missing_positions(rows, positions)
        if missing:
            raise HTTPException(
                422,
                "position: the national schema requires each site's coordinates; give "
                f"position=SITE.CAMERA:LONGITUDE,LATITUDE for {', '.join(missing)}",
            )
        spans = comptage.camera_spans(queries.sites(engine))
        created = iso_local(int(time.time()), s.tz)
        descriptor = comptage.datapackage(config.title, licence, created)
        body = comptage.package(
            rows, s, positions, spans, licence, descriptor, lambda m: iso_local(m, s.tz)
        )
        headers = _attachment(s, "zip", prefix="comptagemobilites")
        return Response(body, media_type="application/zip", headers=headers)

    @app.get("/api/movements", tags=["counts"], dependencies=guard)
    def movements(s: Selected) -> dict[str, Any]:
        """Turning movements over the range (whole hours), per camera's movement and category:
        the cells of each camera's origin-destination matrix (from report schema version 2)."""
        return hours_document(s, "movements", queries.movements(engine, s))

    @app.get("/api/zones", tags=["counts"], dependencies=guard)
    def zones(s: Selected) -> dict[str, Any]:
        """Zone occupancy over the range (whole hours): time-weighted mean and peak per zone
        and category, as the boxes' policies let them out."""
        return hours_document(s, "zones", queries.zones(engine, s))

    @app.get("/api/summary", tags=["counts"], dependencies=guard)
    def summary(s: Selected) -> dict[str, Any]:
        """Totals over the range, and the last 7 whole days against the 7 before."""
        return {
            "from": iso_local(s.start, s.tz),
            "to": iso_local(s.end, s.tz),
            "totals": queries.totals(engine, s),
            "week_on_week": queries.week_on_week(engine, s),
        }

    @app.get("/api/completeness", tags=["counts"], dependencies=guard)
    def completeness(s: Selected) -> list[dict[str, Any]]:
        """Per camera: windows received against expected, partial ones, seconds watched and
        time offline (from the status topics) over the range."""
        return [{**c.__dict__, "ratio": c.ratio} for c in queries.completeness(engine, s)]

    @app.get("/api/audit-heads", tags=["service"], dependencies=guard)
    def audit_heads(
        site: NameQuery = None, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
    ) -> list[dict[str, Any]]:
        """The audit-log heads each box published, newest first (times in UTC): anchors kept
        off the box. ``edge audit verify FILE --expect-head HEAD --expect-entries ENTRIES``
        fails on a log cut or rewritten before that head."""
        utc = ZoneInfo("UTC")
        return [
            {"site": row["site"], "entries": row["entries"], "head": row["head"],
             "time": iso_local(row["at"], utc), "received": iso_local(row["received_at"], utc)}
            for row in queries.audit_heads(engine, site, limit)
        ]  # fmt: skip

    @app.get("/api/rejections", tags=["service"], dependencies=guard)
    def rejections() -> dict[str, int]:
        """Messages the collector refused, by reason (never their content)."""
        return queries.rejections(engine)

    return app


def _attachment(s: Selection, extension: str, prefix: str = "counts") -> dict[str, str]:
    parts = [p for p in (s.site, s.camera, s.line) if p] or ["all"]
    name = "-".join([*parts, s.bucket, dt.date.fromtimestamp(s.start).isoformat()])
    return {"Content-Disposition": f'attachment; filename="{prefix}-{name}.{extension}"'}


def _positions(values: list[str]) -> dict[str, comptage.Position]:
    """``position`` parameters by site id; a malformed one is a 422 saying the expected form."""
    try:
        return dict(comptage.parse_position(value) for value in values)
    except ValueError as err:
        raise HTTPException(422, f"position: {err}") from None


def _csv(rows: list[CountRow], s: Selection, licence: dict[str, Any]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["site", "camera", "line", "bucket_start", "bucket_end", "direction", "category",
         "count", "licence", "attribution"]
    )  # fmt: skip
    for row in rows:
        start, end = iso_local(row.start, s.tz), iso_local(row.end, s.tz)
        for direction, per in row.counts.items():
            for category, n in per.items():
                writer.writerow(
                    [row.site, row.camera, row.line, start, end, direction, category, n,
                     licence["licence"], licence["attribution"] or ""]
                )  # fmt: skip
        if out.tell() > 64 * 1024:
            yield out.getvalue()
            out.seek(0), out.truncate()
    yield out.getvalue()
