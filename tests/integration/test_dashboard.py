"""The dashboard's store, queries and API on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from edge.config import DashboardConfig
from edge.dashboard import queries
from edge.dashboard import schema as t
from edge.dashboard.api import create_app
from edge.dashboard.store import Store, migrate, open_engine
from edge.errors import ConfigError
from tests.support.dashboard_data import make_report
from tests.support.postgres import postgres_server  # noqa: F401  (fixture)

UTC = dt.timezone.utc
PARIS = ZoneInfo("Europe/Paris")
MONDAY = int(dt.datetime(2026, 11, 16, tzinfo=UTC).timestamp())


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dashboard.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_server").new_database()
    engine = open_engine(url)
    migrate(engine)
    yield engine
    engine.dispose()


def selection(
    start: int, end: int, bucket: queries.Bucket, tz: ZoneInfo = PARIS, **kw: Any
) -> queries.Selection:
    return queries.Selection(start=start, end=end, tz=tz, bucket=bucket, **kw)


def total(rows: list[queries.CountRow], direction: str = "in", category: str = "pedestrian") -> int:
    return sum(r.counts[direction][category] for r in rows)  # type: ignore[index]


def test_the_migration_creates_exactly_the_tables_the_code_uses(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), t.metadata)
    assert differences == []
    migrate(engine)  # a second start is a no-op


def test_a_redelivery_is_stored_once_and_two_parts_of_one_window_add_up(engine: Engine) -> None:
    store = Store(engine)
    report = make_report("cam", MONDAY, counts={"in": {"pedestrian": 4}})
    assert store.add_reports("s", [report], now=MONDAY + 60).stored == 1
    again = store.add_reports("s", [report, report], now=MONDAY + 120)
    assert (again.stored, again.duplicates) == (0, 2)
    # The box restarted mid-window: the second part has the same id but other figures.
    first_half = make_report(
        "cam", MONDAY + 600, counts={"in": {"pedestrian": 1}}, partial=True, observed_s=20
    )
    second_half = make_report(
        "cam", MONDAY + 600, counts={"in": {"pedestrian": 2}}, partial=True, observed_s=35
    )
    assert first_half.report_id == second_half.report_id
    assert store.add_reports("s", [first_half, second_half], now=MONDAY + 700).stored == 2
    rows = queries.counts(engine, selection(MONDAY, MONDAY + 3600, "hour"))
    assert total(rows) == 4 + 1 + 2


def test_15_minute_hour_and_day_buckets_sum_the_same_windows(engine: Engine) -> None:
    store = Store(engine)
    reports = [
        make_report(
            "cam", MONDAY + 60 * k, counts={"in": {"pedestrian": k % 3}, "out": {"bike": 1}}
        )
        for k in range(0, 6 * 60)
    ]
    store.add_reports("s", reports, now=MONDAY + 7 * 3600)
    expected = sum(k % 3 for k in range(6 * 60))
    span = (MONDAY, MONDAY + 6 * 3600)
    quarters = queries.counts(engine, selection(*span, "15min", tz=ZoneInfo("UTC")))
    hours = queries.counts(engine, selection(*span, "hour"))
    days = queries.counts(engine, selection(*span, "day"))
    assert (len(quarters), len(hours), len(days)) == (24, 6, 1)
    assert total(quarters) == total(hours) == total(days) == expected
    for bucket in ("15min", "hour", "day"):  # summed in the database, as the summary does
        summed = queries.totals(engine, selection(*span, bucket, tz=ZoneInfo("UTC")))
        assert summed["in"]["pedestrian"] == expected and summed["out"]["bike"] == 6 * 60
    assert total(hours, "out", "bike") == 6 * 60
    assert quarters[1].start - quarters[0].start == 900
    assert quarters[0].counts["in"]["pedestrian"] == sum(k % 3 for k in range(15))
    assert [r.start for r in hours] == [MONDAY + 3600 * h for h in range(6)]
    # Filters: one category, one direction, one line; another camera's line is not mixed in.
    store.add_reports(
        "s",
        [make_report("other", MONDAY, counts={"in": {"pedestrian": 50}})],
        now=MONDAY + 7 * 3600,
    )
    only = queries.counts(
        engine,
        selection(*span, "day", camera="cam", categories=("pedestrian",), directions=("in",)),
    )
    assert only[0].counts == {"in": {"pedestrian": expected}}
    assert total(queries.counts(engine, selection(*span, "day", line="door"))) == expected + 50


def test_days_are_the_time_zones_calendar_days_across_daylight_saving(engine: Engine) -> None:
    # 25 Oct 2026: clocks go back in Paris, the day has 25 hours: 22:00Z on the 24th to 23:00Z.
    midnight = int(dt.datetime(2026, 10, 25, tzinfo=PARIS).timestamp())
    assert midnight == int(dt.datetime(2026, 10, 24, 22, tzinfo=UTC).timestamp())
    store = Store(engine)
    hourly = [
        make_report("cam", midnight + 3600 * h, counts={"in": {"pedestrian": 1}}) for h in range(25)
    ]
    store.add_reports("s", hourly, now=midnight + 26 * 3600)
    (paris,) = queries.counts(engine, selection(midnight, midnight + 25 * 3600, "day"))
    assert paris.counts["in"]["pedestrian"] == 25
    assert (paris.end - paris.start) == 25 * 3600
    utc = queries.counts(
        engine, selection(midnight, midnight + 25 * 3600, "day", tz=ZoneInfo("UTC"))
    )
    assert [r.counts["in"]["pedestrian"] for r in utc] == [2, 23]


def test_late_windows_in_any_order_give_the_same_figures(engine: Engine) -> None:
    reports = [
        make_report("cam", MONDAY + 60 * k, counts={"in": {"vehicle": k % 5}}, zone="square")
        for k in range(240)
    ]
    shuffled = reports[:]
    random.Random(7).shuffle(shuffled)
    store = Store(engine)
    for report in shuffled:  # one by one, as the collector stores a spooled backlog
        store.add_reports("s", [report], now=MONDAY + 5 * 3600)
    hours = queries.counts(engine, selection(MONDAY, MONDAY + 4 * 3600, "hour"))
    assert [r.counts["in"]["vehicle"] for r in hours] == [
        sum(k % 5 for k in range(60 * h, 60 * (h + 1))) for h in range(4)
    ]
    with engine.connect() as connection:
        zone = connection.execute(select(t.zone_hours).order_by(t.zone_hours.c.hour)).all()
    assert len(zone) == 4
    assert all(z.observed_s == 3600 and z.max_pedestrian == 3 for z in zone)
    assert zone[0].mean_s_pedestrian / zone[0].observed_s == pytest.approx(1.5)


def test_retention_keeps_hourly_totals_and_refuses_windows_it_could_not_deduplicate(
    engine: Engine,
) -> None:
    store = Store(engine, raw_retention_days=2)
    old = [
        make_report("cam", MONDAY + 60 * k, counts={"in": {"pedestrian": 1}}) for k in range(120)
    ]
    store.add_reports("s", old, now=MONDAY + 3 * 3600)
    later = MONDAY + 3 * 86400
    deleted = store.prune(hourly_retention_days=None, now=later)
    assert deleted["windows"] == 120 and deleted["line_counts"] == 120
    assert queries.counts(engine, selection(MONDAY, MONDAY + 7200, "15min")) == []
    assert total(queries.counts(engine, selection(MONDAY, MONDAY + 7200, "hour"))) == 120
    refused = store.add_reports("s", old[:1], now=later)
    assert (refused.stored, refused.too_old) == (0, 1)
    assert total(queries.counts(engine, selection(MONDAY, MONDAY + 7200, "hour"))) == 120
    store.prune(hourly_retention_days=1, now=later)
    assert queries.counts(engine, selection(MONDAY, MONDAY + 7200, "hour")) == []


def test_completeness_counts_missing_and_partial_windows_and_offline_time(engine: Engine) -> None:
    store = Store(engine)
    kept = [k for k in range(60) if k not in (10, 11, 12)]
    last = 59  # cut short: half watched
    reports = [
        make_report("cam", MONDAY + 60 * k, partial=k == last, observed_s=30 if k == last else None)
        for k in kept
    ]
    store.add_reports("s", reports, now=MONDAY + 3600)
    store.set_status("s", "cam", True, MONDAY)
    store.set_status("s", "cam", False, MONDAY + 600)
    store.set_status("s", "cam", False, MONDAY + 700)  # a repeat is not a change
    store.set_status("s", "cam", True, MONDAY + 780)
    store.set_status("s", None, False, MONDAY + 3000)  # the whole site went offline
    (figures,) = queries.completeness(
        engine, selection(MONDAY, MONDAY + 3600, "hour"), now=MONDAY + 3600
    )
    assert (figures.expected, figures.received, figures.partial) == (60, 57, 1)
    assert figures.observed_s == 56 * 60 + 30
    assert figures.offline_s == 180 + 600
    assert figures.ratio == pytest.approx(57 / 60)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(t.status_events)).scalar() == 4


def test_turning_movements_are_summed_per_movement_and_old_reports_still_accepted(
    engine: Engine,
) -> None:
    """Version 2 reports carry movements; version 1 reports from older boxes, in the same
    store, keep counting their lines."""
    store = Store(engine)
    reports = [
        make_report(
            "junction",
            MONDAY + 60 * k,
            movements={
                "n-e": ("north", "east", {"vehicle": 3, "bike": 1}),
                "n-s": ("north", "south", {"vehicle": 2}),
            },
        )
        for k in range(90)  # an hour and a half: two hours of totals
    ] + [make_report("door", MONDAY, counts={"in": {"pedestrian": 5}})]
    assert store.add_reports("s", reports, now=MONDAY + 7200).stored == 91
    moved = queries.movements(engine, selection(MONDAY, MONDAY + 7200, "hour"))
    assert [(m["movement"], m["origin"], m["destination"], m["counts"]) for m in moved] == [
        ("n-e", "north", "east", {"pedestrian": 0, "bike": 90, "vehicle": 270}),
        ("n-s", "north", "south", {"pedestrian": 0, "bike": 0, "vehicle": 180}),
    ]
    only = selection(MONDAY, MONDAY + 3600, "hour", categories=("vehicle",), camera="junction")
    assert [m["counts"] for m in queries.movements(engine, only)] == [
        {"vehicle": 180},
        {"vehicle": 120},
    ]
    assert total(queries.counts(engine, selection(MONDAY, MONDAY + 3600, "hour"))) == 5


def test_a_database_url_we_cannot_use_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"dashboard\.database: 'mysql' is not supported"):
        open_engine("mysql://x@localhost/db")
    with pytest.raises(ConfigError, match=r"dashboard\.database: not a database URL"):
        open_engine("not a url")


# -- the web API ----------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    engine = open_engine(f"sqlite:///{tmp_path / 'api.sqlite'}")
    migrate(engine)
    store = Store(engine)
    reports = [
        make_report("cam", MONDAY + 60 * k, counts={"in": {"pedestrian": 1}, "out": {"bike": 2}})
        for k in range(180)
    ]
    store.add_reports("gare", reports, now=MONDAY + 4 * 3600)
    config = DashboardConfig(timezone="Europe/Paris", attribution="Ville de Test")
    return TestClient(create_app(config, engine))


RANGE = {"from": "2026-11-16", "to": "2026-11-17"}


def test_counts_api_buckets_filters_and_says_the_licence(client: TestClient) -> None:
    document = client.get("/api/counts", params={**RANGE, "site": "gare", "bucket": "hour"}).json()
    assert document["licence"] == "CC-BY-4.0" and document["attribution"] == "Ville de Test"
    assert document["tz"] == "Europe/Paris" and document["from"] == "2026-11-16T00:00:00+01:00"
    rows = document["rows"]
    assert [r["start"] for r in rows] == [
        "2026-11-16T01:00:00+01:00",
        "2026-11-16T02:00:00+01:00",
        "2026-11-16T03:00:00+01:00",
    ]
    assert rows[0]["in"]["pedestrian"] == 60 and rows[0]["out"]["bike"] == 120
    only = client.get(
        "/api/counts", params={**RANGE, "bucket": "day", "category": "bike", "direction": "out"}
    ).json()
    assert only["rows"][0]["out"] == {"bike": 360} and "in" not in only["rows"][0]
    assert client.get("/api/counts", params={**RANGE, "site": "elsewhere"}).json()["rows"] == []


def test_movements_api_gives_each_camera_s_origin_destination_cells(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'api.sqlite'}")
    migrate(engine)
    movements = {"w-e": ("west", "east", {"pedestrian": 4}), "e-w": ("east", "west", {"bike": 1})}
    reports = [make_report("square", MONDAY + 60 * k, movements=movements) for k in range(30)]
    Store(engine).add_reports("gare", reports, now=MONDAY + 3600)
    client = TestClient(create_app(DashboardConfig(timezone="Europe/Paris"), engine))
    document = client.get("/api/movements", params={**RANGE, "site": "gare"}).json()
    assert document["licence"] == "CC-BY-4.0" and document["from"] == "2026-11-16T00:00:00+01:00"
    cells = {(m["origin"], m["destination"]): m["counts"] for m in document["movements"]}
    assert cells == {
        ("east", "west"): {"pedestrian": 0, "bike": 30, "vehicle": 0},
        ("west", "east"): {"pedestrian": 120, "bike": 0, "vehicle": 0},
    }
    assert (
        client.get("/api/movements", params={**RANGE, "camera": "other"}).json()["movements"] == []
    )


def test_csv_and_json_downloads_hold_the_same_counts(client: TestClient) -> None:
    params = {**RANGE, "site": "gare", "bucket": "day"}
    response = client.get("/api/counts.csv", params=params)
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6  # one day x two directions x three categories
    by = {(r["direction"], r["category"]): int(r["count"]) for r in rows}
    assert by[("in", "pedestrian")] == 180 and by[("out", "bike")] == 360
    assert {r["licence"] for r in rows} == {"CC-BY-4.0"} and rows[0][
        "bucket_start"
    ] == "2026-11-16T00:00:00+01:00"
    download = client.get("/api/counts.json", params=params)
    assert "attachment" in download.headers["content-disposition"]
    assert download.json()["rows"] == client.get("/api/counts", params=params).json()["rows"]


def test_summary_and_completeness(client: TestClient) -> None:
    summary = client.get("/api/summary", params={**RANGE, "site": "gare"}).json()
    assert summary["totals"]["in"]["pedestrian"] == 180
    assert set(summary["week_on_week"]) == {"this_week", "last_week", "change_percent"}
    (camera,) = client.get("/api/completeness", params={**RANGE, "site": "gare"}).json()
    assert camera["camera"] == "cam" and camera["received"] == 180 and camera["window_s"] == 60
    sites = client.get("/api/sites").json()
    assert sites[0]["site"] == "gare" and sites[0]["cameras"][0]["lines"] == ["door"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "from: expected a date or ISO 8601 time"),
        ({"tz": "Mars/Olympus"}, "tz: unknown time zone"),
        ({"from": "2026-11-17", "to": "2026-11-16"}, "from: must be before to"),
        (
            {"from": "2020-01-01", "to": "2026-01-01", "bucket": "15min"},
            "more than 20000 15min buckets",
        ),
    ],
)
def test_bad_parameters_are_a_one_line_422(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    response = client.get("/api/counts", params=params)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_the_bucket_must_be_one_we_know(client: TestClient) -> None:
    response = client.get("/api/counts", params={"bucket": "week"})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == [
        "query",
        "bucket",
    ]


def test_nothing_can_be_changed_from_the_web(client: TestClient) -> None:
    methods = {m for route in client.app.routes for m in getattr(route, "methods", set())}  # type: ignore[attr-defined]
    assert methods <= {"GET", "HEAD"}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.request(method, "/api/counts").status_code == 405
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN
    spec = client.get("/openapi.json").json()
    assert {"/api/counts", "/api/counts.csv", "/api/counts.json", "/api/summary"} <= set(
        spec["paths"]
    )
    assert all(set(ops) == {"get"} for ops in spec["paths"].values())


def test_with_a_token_the_api_needs_it_and_the_page_stays_public(tmp_path: Path) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'token.sqlite'}")
    migrate(engine)
    token = "s3cret-read-token-0123"
    client = TestClient(create_app(DashboardConfig(access="token", token=token), engine))
    assert client.get("/api/sites").status_code == 401
    assert (
        client.get(
            "/api/sites", headers={"Authorization": "Bearer wrong-token-0123456"}
        ).status_code
        == 401
    )
    assert client.get("/api/sites", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.get("/api/counts.csv", params={"token": token}).status_code == 200
    assert client.get("/").status_code == 200 and client.get("/static/app.js").status_code == 200
    assert client.get("/healthz").status_code == 200


def test_token_access_needs_a_long_enough_token() -> None:
    with pytest.raises(ValueError, match="needs a token of at least 16 characters"):
        DashboardConfig(access="token", token="short")
