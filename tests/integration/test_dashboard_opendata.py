"""The export in the French national mobility-counting format (``/api/comptage.zip``) on SQLite
and a real PostgreSQL: every CSV valid against its Table Schema (frictionless), the counts those
that were ingested, nothing the CSV export would not give."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from frictionless import Package, Resource, Schema
from sqlalchemy import Engine

from edge.config import DashboardConfig
from edge.dashboard import comptage
from edge.dashboard.api import create_app
from edge.dashboard.queries import CountRow
from edge.dashboard.store import Store
from edge.schema import CATEGORY_NAMES, DIRECTIONS, PublishedReport
from tests.integration.test_dashboard import MONDAY, engine  # noqa: F401  (fixture)
from tests.support.dashboard_data import make_report
from tests.support.postgres import postgres_server  # noqa: F401  (fixture)

PARIS = ZoneInfo("Europe/Paris")
HOURS = 4
GAP_HOUR = 2  # the hall camera sends nothing in its third hour
POSITIONS = ["gare.hall:2.355300,48.880000", "gare.quai:2.356000,48.881000"]
RANGE = {"from": "2026-11-16", "to": "2026-11-17"}


def reports(camera: str, line: str, skip_hour: int | None = None) -> list[PublishedReport]:
    """One-minute windows over HOURS hours, with a zone that must not reach the export."""
    return [
        make_report(
            camera,
            MONDAY + 60 * k,
            line=line,
            counts={"in": {"pedestrian": k % 3, "vehicle": k % 2}, "out": {"bike": k % 5}},
            zone="square",
        )
        for k in range(HOURS * 60)
        if k // 60 != skip_hour
    ]


INGESTED = reports("hall", "door", skip_hour=GAP_HOUR) + reports("quai", "north")


def expected(period: int) -> dict[tuple[str, int], int]:
    """Passages per channel id and period start (Unix seconds), summed from the reports."""
    sums: dict[tuple[str, int], int] = defaultdict(int)
    for report in INGESTED:
        start = int(report.start) - int(report.start) % period
        for line, per in report.lines.items():
            for d in DIRECTIONS:
                for c in CATEGORY_NAMES:
                    ident = comptage.channel_id(comptage.Channel("gare", report.camera, line, d, c))
                    sums[(ident, start)] += per[d][c]
    return dict(sums)


@pytest.fixture
def client(engine: Engine) -> TestClient:  # noqa: F811
    Store(engine).add_reports("gare", INGESTED, now=MONDAY + (HOURS + 1) * 3600)
    config = DashboardConfig(timezone="Europe/Paris", attribution="Ville de Test")
    return TestClient(create_app(config, engine))


def download(client: TestClient, tmp_path: Path, **params: Any) -> Path:
    response = client.get("/api/comptage.zip", params={**RANGE, "position": POSITIONS, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="comptagemobilites-'
    )
    folder = tmp_path / f"export-{len(list(tmp_path.iterdir()))}"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == [
            "channels.csv", "datapackage.json", "measures.csv", "schemas/channel.json",
            "schemas/measure.json", "schemas/site.json", "sites.csv",
        ]  # fmt: skip
        archive.extractall(folder)
    return folder


def validate(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Each CSV against the shipped Table Schema, then the whole package: any error fails, with
    the validator's row, field, type and note."""
    tables = {}
    for name, schema in comptage.TABLES:
        shipped = json.loads(comptage.schema_text(schema))
        assert json.loads((folder / "schemas" / f"{schema}.json").read_text()) == shipped
        resource = Resource(
            path=f"{name}.csv", basepath=str(folder), schema=Schema.from_descriptor(shipped)
        )
        report = resource.validate()
        assert report.valid, (name, report.flatten(["rowNumber", "fieldName", "type", "note"]))
        with (folder / f"{name}.csv").open(encoding="utf-8", newline="") as file:
            tables[name] = list(csv.DictReader(file))
    report = Package(str(folder / "datapackage.json")).validate()
    assert report.valid, report.flatten(["rowNumber", "fieldName", "type", "note"])
    return tables


def seconds(moment: str) -> int:
    return int(dt.datetime.fromisoformat(moment).timestamp())


def measured(rows: list[dict[str, str]]) -> dict[tuple[str, int], str]:
    return {(r["channel_id"], seconds(r["start_datetime"])): r["count"] for r in rows}


def test_the_export_is_valid_and_holds_the_ingested_counts_per_channel_and_hour(
    client: TestClient, tmp_path: Path
) -> None:
    tables = validate(download(client, tmp_path, bucket="hour"))
    sites, channels, measures = tables["sites"], tables["channels"], tables["measures"]
    assert [(s["site_id"], s["parent_site_id"], s["xlong"], s["ylat"]) for s in sites] == [
        ("gare.hall", "gare", "2.355300", "48.880000"),
        ("gare.quai", "gare", "2.356000", "48.881000"),
    ]
    # A channel per camera, line, direction and category, in the schema's vocabulary.
    assert len(channels) == 2 * 2 * 3
    hall_in_vehicle = next(c for c in channels if c["channel_id"] == "gare.hall.door.in.vehicle")
    assert hall_in_vehicle == {
        **hall_in_vehicle,
        "site_id": "gare.hall",
        "mobility_type": "CAR,TWO WHEELS MOTORIZED,BUS,TRUCK",
        "provider_direction_code": "IN",
        "direction": "",
        "counter_type": "VIDEO SENSOR",
        "temporality": "PERMANENT",
        "data_provider_name": "Ville de Test",
        "time_step": "3600",
        "started_at": "2026-11-16T01:00:00+01:00",  # the camera's first window
        "ended_at": "",
    }
    assert {c["mobility_type"] for c in channels} == {
        "PEDESTRIAN", "BIKE", "CAR,TWO WHEELS MOTORIZED,BUS,TRUCK",
    }  # fmt: skip
    assert {c["site_id"] for c in channels} == {s["site_id"] for s in sites}
    assert {m["channel_id"] for m in measures} == {c["channel_id"] for c in channels}
    assert all(m["counter_id"] == m["channel_id"].rsplit(".", 3)[0] for m in measures)
    assert not any("square" in m["channel_id"] for m in measures)  # zones are not passages
    # Counts per channel and hour are the ingested ones; the hour the hall camera sent nothing
    # is present with an empty count (no data), never 0.
    got = measured(measures)
    want = expected(3600)
    assert {k: int(v) for k, v in got.items() if v != ""} == want
    gap = MONDAY + GAP_HOUR * 3600
    assert {k for k, v in got.items() if v == ""} == {
        (c["channel_id"], gap) for c in channels if c["site_id"] == "gare.hall"
    }
    assert all(seconds(m["end_datetime"]) - seconds(m["start_datetime"]) == 3600 for m in measures)


def test_hourly_measures_sum_the_15_minute_ones(client: TestClient, tmp_path: Path) -> None:
    hours = validate(download(client, tmp_path, bucket="hour"))
    quarters = validate(download(client, tmp_path, bucket="15min"))
    assert {c["time_step"] for c in quarters["channels"]} == {"900"}
    by_quarter = measured(quarters["measures"])
    assert {k: int(v) for k, v in by_quarter.items() if v != ""} == expected(900)
    summed: dict[tuple[str, int], int] = defaultdict(int)
    for (channel, start), count in by_quarter.items():
        if count != "":
            summed[(channel, start - start % 3600)] += int(count)
    by_hour = {k: int(v) for k, v in measured(hours["measures"]).items() if v != ""}
    assert dict(summed) == by_hour == expected(3600)
    # Four empty quarters where the hour is empty.
    assert sum(v == "" for v in by_quarter.values()) == 4 * sum(
        v == "" for v in measured(hours["measures"]).values()
    )


def test_the_export_gives_what_the_csv_export_gives_and_nothing_else(
    client: TestClient, tmp_path: Path
) -> None:
    """Same selection, same rows: filters by camera, direction and category apply, and every
    count is one of the CSV export's."""
    params = {"bucket": "hour", "camera": "quai", "direction": "out", "category": "bike"}
    tables = validate(download(client, tmp_path, **params))
    assert [s["site_id"] for s in tables["sites"]] == ["gare.quai"]  # the selected camera only
    assert [c["channel_id"] for c in tables["channels"]] == ["gare.quai.north.out.bike"]
    ours = {(seconds(m["start_datetime"]), int(m["count"])) for m in tables["measures"]}
    exported = client.get("/api/counts.csv", params={**RANGE, **params})
    theirs = {
        (seconds(r["bucket_start"]), int(r["count"]))
        for r in csv.DictReader(io.StringIO(exported.text))
    }
    assert ours == theirs and len(ours) == HOURS


def test_the_package_says_the_licence_and_the_schemas(client: TestClient, tmp_path: Path) -> None:
    descriptor = json.loads((download(client, tmp_path) / "datapackage.json").read_text())
    assert descriptor["licenses"] == [
        {"name": "CC-BY-4.0", "title": "CC-BY-4.0",
         "path": "https://creativecommons.org/licenses/by/4.0/"}
    ]  # fmt: skip
    assert descriptor["contributors"] == [{"title": "Ville de Test", "role": "publisher"}]
    assert [(r["path"], r["schema"]) for r in descriptor["resources"]] == [
        ("sites.csv", "schemas/site.json"),
        ("channels.csv", "schemas/channel.json"),
        ("measures.csv", "schemas/measure.json"),
    ]


def test_a_broken_file_fails_validation(client: TestClient, tmp_path: Path) -> None:
    """The check above can fail: a count that is not a number, a site without coordinates."""
    folder = download(client, tmp_path)
    measures = folder / "measures.csv"
    measures.write_text(measures.read_text().replace(",60\n", ",sixty\n", 1))
    with pytest.raises(AssertionError, match="type-error"):
        validate(folder)
    folder = download(client, tmp_path)
    sites = folder / "sites.csv"
    sites.write_text(sites.read_text().replace("2.355300,48.880000", ",", 1))
    with pytest.raises(AssertionError, match="constraint-error"):
        validate(folder)


@pytest.mark.parametrize(
    ("positions", "message"),
    [
        ([], "requires each site's coordinates; give position=SITE.CAMERA:LONGITUDE,LATITUDE "
             "for gare.hall, gare.quai"),
        (POSITIONS[:1], "for gare.quai"),
        (["gare.quai:2.35"], "expected SITE.CAMERA:LONGITUDE,LATITUDE"),
        (["gare.quai:200,48.8"], "longitude must be in [-180, 180]"),
        (["gare.quai:nan,inf"], "expected SITE.CAMERA:LONGITUDE,LATITUDE"),
        (["gare.quai:2.35,48.8\x00"], "expected SITE.CAMERA:LONGITUDE,LATITUDE"),
    ],
)  # fmt: skip
def test_positions_are_required_and_checked(
    client: TestClient, positions: list[str], message: str
) -> None:
    response = client.get("/api/comptage.zip", params={**RANGE, "position": positions})
    assert response.status_code == 422 and message in response.json()["detail"]


def test_hostile_positions_are_a_422(client: TestClient) -> None:
    for positions in (["p" * 10_000], POSITIONS * 501):
        response = client.get("/api/comptage.zip", params={**RANGE, "position": positions})
        assert response.status_code == 422


def test_the_export_needs_the_token_when_access_needs_one(engine: Engine) -> None:  # noqa: F811
    token = "s3cret-read-token-0123"
    config = DashboardConfig(access="token", token=token)
    client = TestClient(create_app(config, engine))
    assert client.get("/api/comptage.zip").status_code == 401
    answer = client.get("/api/comptage.zip", params={"token": token})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"


def test_missing_buckets_between_measures_are_slots_without_a_count() -> None:
    """Across the Paris autumn change: a 25-hour day between two measured days."""
    first = int(dt.datetime(2026, 10, 24, tzinfo=PARIS).timestamp())
    third = int(dt.datetime(2026, 10, 26, tzinfo=PARIS).timestamp())
    rows = [
        CountRow("s", "c", "l", first, first + 86400),
        CountRow("s", "c", "l", third, third + 86400),
    ]
    slots = list(comptage.slots(rows, "day", PARIS))
    assert [(start, end - start, row is None) for start, end, row in slots] == [
        (first, 86400, False),
        (first + 86400, 25 * 3600, True),
        (third, 86400, False),
    ]


def test_a_position_reads_back() -> None:
    assert comptage.parse_position("gare.hall:-1.5,47.2") == (
        "gare.hall",
        comptage.Position(-1.5, 47.2),
    )
    for bad in (
        "gare:1,2",
        "gare.hall:1,2,3",
        "Gare.hall:1,2",
        "gare.hall: 1,2",
        "gare.hall:1,-91",
    ):
        with pytest.raises(ValueError):
            comptage.parse_position(bad)
