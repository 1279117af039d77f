"""Counts in the French national mobility-counting format ("schéma de comptage des mobilités" of
transport.data.gouv.fr, version 0.2.3): a ZIP of ``sites.csv``, ``channels.csv`` and
``measures.csv`` with a ``datapackage.json`` naming the three Table Schemas, which travel in
the ZIP (``schemas/``, copied unchanged from ``opendata/``) so that it validates offline.

Only what the CSV export gives for the same selection goes in: the rows of ``queries.counts``,
the same buckets, the disclosure rules already applied to what is stored. Zones stay out: an
occupancy is not a count of passages. The column names are read from the schemas, and a row
holding a name that is not one of them fails (``csv.DictWriter``), so a file cannot drift from
its schema silently.

The mapping (the README has the table):

- **site**: one per camera, ``site_id`` ``SITE.CAMERA`` (names are slugs without dots, so the id
  is unambiguous), ``parent_site_id`` our site. ``xlong``/``ylat`` are required numbers and the
  boxes never publish where a camera is (its location is free text on the notice), so the
  caller gives them (``parse_position``); there is no placeholder: 0,0 would put a counter in
  the Gulf of Guinea in the national register.
- **channel**: one per camera, line, direction and category, ``channel_id``
  ``SITE.CAMERA.LINE.DIRECTION.CATEGORY``; category -> ``mobility_type``
  (``MOBILITY_TYPES``), direction -> ``provider_direction_code`` (``IN``/``OUT``, as the
  schema's own example); ``direction`` (a compass point) stays empty: in/out are sides of a
  line on screen, not headings.
- **measure**: one per channel and bucket (``15min``, ``hour`` or ``day``: the selection's),
  ``counter_id`` the camera's site id. The schema wants every slot of a series present, with an
  empty count where nothing was counted: buckets missing between a line's first and last one
  in the range are written with an empty ``count``, never 0 (no data is not zero).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import IO, Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from edge.dashboard.queries import Bucket, CountRow, Selection, bucket_bounds
from edge.schema import CategoryName, Direction

SCHEMA_VERSION: Final = "0.2.3"
SCHEMA_URL: Final = "https://schema.data.gouv.fr/etalab/schema-comptage-mobilites/"
OPENDATA = files("edge.dashboard") / "opendata"
# (file in the ZIP, schema) in the order a reader needs them: sites, then channels, then measures.
TABLES: Final = (("sites", "site"), ("channels", "channel"), ("measures", "measure"))
TIME_STEPS: Final[Mapping[Bucket, int]] = {"15min": 900, "hour": 3600, "day": 86400}

# Our categories are the detector's COCO classes (edge.analytics.detections): a cyclist is
# counted once, as a bike; a motorcyclist as a vehicle; a person on an e-scooter is seen as a
# pedestrian. "vehicle" is car, motorcycle, bus and truck, the schema's CAR, TWO WHEELS
# MOTORIZED, BUS and TRUCK; a multi-valued mobility_type means the count is their sum.
MOBILITY_TYPES: Final[Mapping[CategoryName, str]] = {
    "pedestrian": "PEDESTRIAN",
    "bike": "BIKE",
    "vehicle": "CAR,TWO WHEELS MOTORIZED,BUS,TRUCK",
}
DIRECTION_CODES: Final[Mapping[Direction, str]] = {"in": "IN", "out": "OUT"}
DIRECTION_NAMES: Final[Mapping[Direction, str]] = {"in": "entrée", "out": "sortie"}  # the notice's
COUNTER_TYPE: Final = "VIDEO SENSOR"
COUNTER_TRANSMISSION: Final = "REMOTE TRANSMISSION"  # the boxes publish over MQTT
TEMPORALITY: Final = "PERMANENT"  # required by 0.2.3; a box counts where it is installed

_SLUG = r"[a-z0-9][a-z0-9_-]{0,31}"  # edge.schema.NAME_PATTERN, unanchored
_DEGREES = r"-?\d{1,3}(?:\.\d{1,12})?"
POSITION_PATTERN: Final = rf"^({_SLUG}\.{_SLUG}):({_DEGREES}),({_DEGREES})$"
_POSITION_RE = re.compile(POSITION_PATTERN)


@dataclass(frozen=True)
class Position:
    """Where a camera is, in WGS84 decimal degrees."""

    lon: float
    lat: float


@dataclass(frozen=True)
class CameraSpan:
    """The first window start and last window end a camera ever reported (Unix seconds)."""

    first_start: int
    last_end: int


class Channel(NamedTuple):
    site: str
    camera: str
    line: str
    direction: Direction
    category: CategoryName


def site_id(site: str, camera: str) -> str:
    """A camera's site id, also its counter id: slugs hold no dot, so ``a.b`` reads back."""
    return f"{site}.{camera}"


def channel_id(channel: Channel) -> str:
    return ".".join(channel)


def parse_position(value: str) -> tuple[str, Position]:
    """``SITE.CAMERA:LONGITUDE,LATITUDE`` -> (site id, position). The boxes never publish
    coordinates and the schema requires them, so whoever publishes the export says where each
    camera is; plain decimals only (no exponent, nan or inf), within the WGS84 ranges."""
    match = _POSITION_RE.fullmatch(value)
    if match is None:
        raise ValueError(
            "expected SITE.CAMERA:LONGITUDE,LATITUDE such as gare.hall:2.3522,48.8566, "
            f"got {value!r}"
        )
    lon, lat = float(match[2]), float(match[3])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"{value!r}: longitude must be in [-180, 180] and latitude in [-90, 90]")
    return match[1], Position(lon, lat)


def camera_spans(sites: Iterable[Mapping[str, Any]]) -> dict[str, CameraSpan]:
    """Per site id, the camera's span from ``queries.sites``: it gives ``started_at``, which the
    schema says must not change over time (a camera's first window does not)."""
    return {
        site_id(site["site"], camera["camera"]): CameraSpan(
            camera["first_start"], camera["last_end"]
        )
        for site in sites
        for camera in site["cameras"]
        if camera["first_start"] is not None and camera["last_end"] is not None
    }


def cameras(rows: Iterable[CountRow]) -> list[tuple[str, str]]:
    """The (site, camera) pairs the rows hold, sorted: one site each."""
    return sorted({(r.site, r.camera) for r in rows})


def channels(rows: Iterable[CountRow], s: Selection) -> list[Channel]:
    """Every line of the rows, by the selection's directions and categories."""
    lines = sorted({(r.site, r.camera, r.line) for r in rows})
    return [Channel(*line, d, c) for line in lines for d in s.directions for c in s.categories]


def site_row(site: str, camera: str, position: Position) -> dict[str, str]:
    """Six decimals: the schema asks for at least four; six is 0.1 m, as precise as any sign."""
    return {
        "site_id": site_id(site, camera),
        "parent_site_id": site,
        "site_name": f"{site} {camera}",
        "xlong": f"{position.lon:.6f}",
        "ylat": f"{position.lat:.6f}",
    }


def channel_row(
    channel: Channel,
    span: CameraSpan,
    time_step: int,
    provider: str | None,
    when: Callable[[int], str],
) -> dict[str, str]:
    """``ended_at`` stays empty (still counting: the schema wants a new channel once it is
    set); ``time_step`` is the bucket (a daylight-saving day still says 86400, and every
    measure has its own ``end_datetime``)."""
    return {
        "channel_id": channel_id(channel),
        "site_id": site_id(channel.site, channel.camera),
        "mobility_type": MOBILITY_TYPES[channel.category],
        "counter_transmission_type": COUNTER_TRANSMISSION,
        "counter_type": COUNTER_TYPE,
        "provider_direction_code": DIRECTION_CODES[channel.direction],
        "provider_direction_name": (
            f"ligne {channel.line}, sens {DIRECTION_NAMES[channel.direction]} ({channel.direction})"
        ),
        "data_provider_name": provider or "",
        "temporality": TEMPORALITY,
        "started_at": when(span.first_start),
        "last_updated_at": when(span.last_end),
        "time_step": str(time_step),
    }


def slots(
    rows: Sequence[CountRow], bucket: Bucket, tz: ZoneInfo
) -> Iterator[tuple[int, int, CountRow | None]]:
    """One line's buckets from its first row to its last, ``None`` for those missing between:
    the schema wants every slot of a series, an empty count where nothing was counted."""
    end: int | None = None
    for row in rows:
        while end is not None and end < row.start:
            start, end = bucket_bounds(end, bucket, tz)
            yield start, end, None
        yield row.start, row.end, row
        end = row.end


def measure_rows(
    rows: Sequence[CountRow], s: Selection, when: Callable[[int], str]
) -> Iterator[dict[str, str]]:
    """Per channel, its buckets in time order (``rows`` come ordered by site, camera, line and
    time, as ``queries.counts`` returns them)."""
    for (site, camera, line), of_line in itertools.groupby(
        rows, key=lambda r: (r.site, r.camera, r.line)
    ):
        series = list(slots(list(of_line), s.bucket, s.tz))
        for d, c in itertools.product(s.directions, s.categories):
            channel = channel_id(Channel(site, camera, line, d, c))
            for start, end, row in series:
                yield {
                    "channel_id": channel,
                    "counter_id": site_id(site, camera),
                    "start_datetime": when(start),
                    "end_datetime": when(end),
                    "count": "" if row is None else str(row.counts[d][c]),
                }


@functools.cache
def schema_text(schema: str) -> str:
    return (OPENDATA / f"{schema}.json").read_text(encoding="utf-8")


@functools.cache
def field_names(schema: str) -> tuple[str, ...]:
    """The schema's columns, in its order: the header the validators expect."""
    return tuple(field["name"] for field in json.loads(schema_text(schema))["fields"])


def write_csv(out: IO[str], schema: str, rows: Iterable[Mapping[str, str]]) -> None:
    """Every column of ``schema`` (an optional one empty: the column must be there); a key that
    is not one of its fields raises ``ValueError``."""
    writer = csv.DictWriter(out, field_names(schema), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def datapackage(title: str, licence: Mapping[str, str | None], created: str) -> dict[str, Any]:
    """The package descriptor: the CSVs cannot carry licence columns (the schemas are closed),
    so the licence and attribution the other exports put on every row are said here."""
    licence_entry = {"name": licence["licence"], "title": licence["licence"]}
    if licence["licence_url"]:
        licence_entry["path"] = licence["licence_url"]
    descriptor: dict[str, Any] = {
        "profile": "tabular-data-package",
        "name": "comptage-mobilites",
        "title": f"{title} : comptage des mobilités",
        "created": created,
        "licenses": [licence_entry],
        "sources": [
            {"title": f"Schéma de comptage des mobilités {SCHEMA_VERSION}", "path": SCHEMA_URL}
        ],
        "resources": [
            {
                "name": name,
                "path": f"{name}.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": f"schemas/{schema}.json",
            }
            for name, schema in TABLES
        ],
    }
    if licence["attribution"]:
        descriptor["contributors"] = [{"title": licence["attribution"], "role": "publisher"}]
    return descriptor


def missing_positions(rows: Iterable[CountRow], positions: Mapping[str, Position]) -> list[str]:
    """The site ids of the rows' cameras that were given no position."""
    return [site_id(*camera) for camera in cameras(rows) if site_id(*camera) not in positions]


def package(
    rows: Sequence[CountRow],
    s: Selection,
    positions: Mapping[str, Position],
    spans: Mapping[str, CameraSpan],
    licence: Mapping[str, str | None],
    descriptor: Mapping[str, Any],
    when: Callable[[int], str],
) -> bytes:
    """The ZIP; every camera of ``rows`` must have a position (``missing_positions``) and a
    span. ``data_provider_name`` is the licence's attribution: who re-users must name."""
    step, provider = TIME_STEPS[s.bucket], licence["attribution"]
    tables = {
        "sites": (site_row(*camera, positions[site_id(*camera)]) for camera in cameras(rows)),
        "channels": (
            channel_row(ch, spans[site_id(ch.site, ch.camera)], step, provider, when)
            for ch in channels(rows, s)
        ),
        "measures": measure_rows(rows, s, when),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("datapackage.json", json.dumps(descriptor, ensure_ascii=False, indent=2))
        for name, schema in TABLES:
            archive.writestr(f"schemas/{schema}.json", schema_text(schema))
            with (
                archive.open(f"{name}.csv", "w") as raw,
                io.TextIOWrapper(raw, encoding="utf-8", newline="") as out,
            ):
                write_csv(out, schema, tables[name])
    return buffer.getvalue()
