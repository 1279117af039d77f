"""The dashboard under hostile input: crafted messages through a real Mosquitto, writes a real
PostgreSQL refuses, a database that fails for a while, a burst through the shipped queue
limits, and API parameters no route may answer with a 500."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from edge.config import DashboardConfig, MqttConfig
from edge.dashboard import queries
from edge.dashboard.api import create_app
from edge.dashboard.ingest import Collector, too_deep
from edge.dashboard.store import Store, StoreError, migrate, open_engine
from edge.schema import NoticeMessage
from tests.conftest import REPO, wait_until
from tests.integration.test_dashboard import MONDAY, engine  # noqa: F401  (fixture)
from tests.support.broker import Broker, new_client
from tests.support.dashboard_data import make_report
from tests.support.postgres import postgres_server  # noqa: F401  (fixture)

SITE = "gare"
COUNTS = f"edge/{SITE}/cam/counts"
NOTICE = NoticeMessage(
    schema_version=1, policy="eu-gdpr", policy_sha256="5" * 64,
    notice_url="https://example.org/notice", notice="Counting, no images kept.",
)  # fmt: skip


def settings(broker: Broker) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, site=SITE, reconnect_min_s=1,
                      reconnect_max_s=2, keepalive_s=5)  # fmt: skip


def new_store(url: str) -> Store:
    db = open_engine(url)
    migrate(db)
    return Store(db, raw_retention_days=3650)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return new_store(f"sqlite:///{tmp_path / 'dashboard.sqlite'}")


def running(broker: Broker, store: Store) -> Collector:
    collector = Collector(settings(broker), DashboardConfig(), store)
    collector.start()
    assert wait_until(lambda: collector.counters.connected)
    return collector


def publish(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 and wait until the broker has every one."""
    client = new_client(broker)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        sent = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in sent:
            info.wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()


def report_json(at: int, **changes: Any) -> bytes:
    data = make_report("cam", at, counts={"in": {"pedestrian": 1}}).model_dump(mode="json")
    return json.dumps({**data, **changes}).encode()


def stored_windows(store: Store) -> int:
    rows = queries.counts(store.engine, queries.Selection(0, 4_000_000_000, ZoneInfo("UTC"), "day"))
    return sum(r.counts["in"]["pedestrian"] for r in rows)


def stored_at_least(collector: Collector, n: int) -> bool:
    return collector.counters.stored >= n


def no_redelivery(broker: Broker, store: Store) -> None:
    """A new collector on the same persistent session receives nothing: all was acknowledged."""
    again = running(broker, store)
    try:
        time.sleep(0.5)
        assert again.counters.received == 0, again.counters
    finally:
        again.stop()


# -- crafted messages --------------------------------------------------------------------------

CRAFTED: list[tuple[str, str, bytes, str]] = [
    ("deep nesting", COUNTS, b"[" * 100_000 + b"]" * 100_000, "counts: nested deeper than 16"),
    ("deep nesting in an object", COUNTS, b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
     "counts: nested deeper than 16"),
    ("huge payload", COUNTS, b'{"x": "' + b"a" * 300_000 + b'"}', "payload over 262144 bytes"),
    ("end 1e19", COUNTS, report_json(MONDAY, end=1e19),
     "counts: not a well-formed report: end (less_than_equal)"),
    ("start after end", COUNTS, report_json(MONDAY, start=MONDAY + 600.0),
     "counts: not a well-formed report: start/end (value_error)"),
    ("NaN", COUNTS, report_json(MONDAY, observed_s=math.nan),
     "counts: not a well-formed report: observed_s (finite_number)"),
    ("1e308 seconds observed", COUNTS, report_json(MONDAY, observed_s=1e308),
     "counts: observed_s longer than the window"),
    ("integer of 5,000 digits", COUNTS,
     report_json(MONDAY).replace(b'"frames": 1500', b'"frames": ' + b"9" * 5000),
     "counts: not JSON"),
    ("200-character site", f"edge/{'s' * 200}/cam/counts", report_json(MONDAY),
     "topic: site or camera is not a name"),
    ("wrong types", COUNTS, report_json(MONDAY, frames="1500", partial=0, lines=[]),
     "counts: not a well-formed report: frames (int_type); partial (bool_type); "
     "lines (dict_type)"),
    ("a line name that is not a name", COUNTS,
     report_json(MONDAY, lines={"Personal Name": {"in": {"pedestrian": 1}}}),
     "counts: not a well-formed report: lines.*.[key] (string_pattern_mismatch)"),
    ("audit time not a date", f"edge/{SITE}/audit",
     json.dumps({"schema_version": 1, "site": SITE, "time": "2026-99-99T00:00:00.000Z",
                 "entries": 1, "head": "a" * 64}).encode(),
     "audit: time is not a date"),
    ("UTF-16", COUNTS, report_json(MONDAY + 3600).decode().encode("utf-16"), "counts: not JSON"),
]  # fmt: skip


def test_the_depth_scan_ignores_brackets_in_strings_and_escapes() -> None:
    assert not too_deep(json.dumps({"notice": "[" * 1000 + '\\"{' * 500}).encode())
    assert not too_deep(report_json(MONDAY))
    assert too_deep(b'{"a":' * 17 + b"1" + b"}" * 17)
    assert not too_deep(b'{"a":' * 16 + b"1" + b"}" * 16)
    assert too_deep(b'["\\\\", ' * 20 + b"]" * 20)  # an escaped backslash ends no string


def test_each_crafted_message_is_acknowledged_counted_and_the_next_good_one_stored(
    broker: Broker, sqlite_store: Store
) -> None:
    collector = running(broker, sqlite_store)
    try:
        for k, (what, topic, payload, _) in enumerate(CRAFTED):
            good = report_json(MONDAY + 60 * k)
            publish(broker, [(topic, payload), (COUNTS, good)])
            assert wait_until(partial(stored_at_least, collector, k + 1)), (
                what,
                collector.counters,
            )
        assert collector.counters.rejected == len(CRAFTED), collector.counters
        assert collector.counters.errors == 0 and collector.counters.storing == "ok"
    finally:
        collector.stop()
    expected: dict[str, int] = {}
    for *_, reason in CRAFTED:
        expected[reason] = expected.get(reason, 0) + 1
    assert queries.rejections(sqlite_store.engine) == expected
    assert stored_windows(sqlite_store) == len(CRAFTED)
    no_redelivery(broker, sqlite_store)


def test_an_exception_in_the_collector_is_caught_logged_once_counted_and_acknowledged(
    broker: Broker, sqlite_store: Store, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    collector = running(broker, sqlite_store)
    real = collector._check

    def buggy(message: Any) -> Any:
        if b'"frames": 1500' in message.payload and b"boom" in message.payload:
            raise RecursionError("a bug")
        return real(message)

    monkeypatch.setattr(collector, "_check", buggy)
    try:
        bad = [(COUNTS, report_json(MONDAY + 60 * k, notice_url="https://boom.example/"))
               for k in range(3)]  # fmt: skip
        publish(broker, [*bad, (COUNTS, report_json(MONDAY + 600))])
        assert wait_until(lambda: collector.counters.stored == 1), collector.counters
        assert collector.counters.errors == 3 and collector.counters.rejected == 3
    finally:
        collector.stop()
    assert queries.rejections(sqlite_store.engine) == {"cannot be read (RecursionError)": 3}
    logged = [r for r in caplog.records if r.getMessage().startswith("collector: check")]
    assert len(logged) == 1 and logged[0].exc_info  # once, with its traceback
    no_redelivery(broker, sqlite_store)


# -- what the database refuses, and a database that fails for a while -------------------------


def test_writes_postgresql_refuses_are_acknowledged_and_rejected(
    broker: Broker, request: pytest.FixtureRequest
) -> None:
    store = new_store(request.getfixturevalue("postgres_server").new_database())
    nul_notice = NOTICE.model_copy(update={"notice": "a\x00b"}).model_dump_json().encode()
    # 215 windows of 10,000,000 in one hour overflow the hour's integer column (2**31 - 1).
    crowd = {"lines": {"door": {"in": {"pedestrian": 10_000_000}}}}
    heavy = [report_json(MONDAY + k, **crowd) for k in range(215)]
    collector = running(broker, store)
    try:
        publish(broker, [(f"edge/{SITE}/notice", nul_notice)] * 25 + [(COUNTS, h) for h in heavy])
        publish(broker, [(COUNTS, report_json(MONDAY + 7200)), (f"edge/{SITE}/notice",
                 NOTICE.model_dump_json().encode())])  # fmt: skip
        assert wait_until(lambda: collector.counters.received == 25 + 215 + 2, 30), (
            collector.counters
        )
        assert wait_until(lambda: collector.counters.refused_by_database == 26), collector.counters
        assert wait_until(lambda: collector.counters.stored == 214 + 1), collector.counters
    finally:
        collector.stop()
    reasons = queries.rejections(store.engine)
    assert reasons == {"notice: refused by the database (DataError)": 25,
                       "counts: refused by the database (NumericValueOutOfRange)": 1}  # fmt: skip
    assert queries.notice(store.engine, SITE)["notice"] == NOTICE.notice  # type: ignore[index]
    no_redelivery(broker, store)
    store.engine.dispose()


def test_a_failing_database_is_retried_unacknowledged_and_health_says_so(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = Collector(MqttConfig(site=SITE), DashboardConfig(), sqlite_store)
    client = TestClient(create_app(DashboardConfig(), sqlite_store.engine, collector.counters))
    real, failures = sqlite_store.add_reports, [2]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            gone = OperationalError("INSERT", {}, Exception("database is locked"))
            raise StoreError("dashboard.database: cannot store reports") from gone
        return real(*args, **kwargs)

    monkeypatch.setattr(sqlite_store, "add_reports", flaky)
    worker = threading.Thread(target=collector.handle, args=(COUNTS, report_json(MONDAY)))
    worker.start()
    assert wait_until(lambda: collector.counters.storing == "failing")
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json()["ingest"]["store_errors"] >= 1
    worker.join(10)
    assert collector.counters.stored == 1 and collector.counters.rejected == 0
    assert collector.counters.store_errors == 2
    assert client.get("/healthz").status_code == 200


# -- a burst through the shipped Mosquitto limits -----------------------------------------------


@pytest.fixture
def shipped_limits(broker: Broker) -> Iterator[Broker]:
    """The test broker with the queue limits of deploy/mosquitto/mosquitto.conf."""
    shipped = (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    limits = [line for line in shipped if line.startswith("max_")]
    assert {line.split()[0] for line in limits} >= {"max_queued_messages", "max_inflight_messages"}
    broker.stop()
    with broker.config_file.open("a") as config:
        config.write("\n".join(limits) + "\n")
    broker.start()
    yield broker


BURST = 5000


def test_a_burst_while_the_dashboard_is_down_is_queued_and_stored_whole(
    shipped_limits: Broker, sqlite_store: Store
) -> None:
    running(shipped_limits, sqlite_store).stop()  # the persistent session exists
    publish(shipped_limits, [(COUNTS, report_json(MONDAY + 60 * k)) for k in range(BURST)])
    began = time.monotonic()
    collector = running(shipped_limits, sqlite_store)
    try:
        assert wait_until(lambda: collector.counters.stored == BURST, 60), collector.counters
        seconds = time.monotonic() - began
    finally:
        collector.stop()
    assert stored_windows(sqlite_store) == BURST
    assert "dropped" not in shipped_limits.log_file.read_text().lower()
    print(f"{BURST} messages stored in {seconds:.2f} s: {BURST / seconds:.0f}/s, "
          f"{collector.counters.batches} batches")  # fmt: skip


# -- the API -------------------------------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, str]]] = [
    ("/api/counts", {"tz": "x" * 10_000}),
    ("/api/counts", {"tz": "Europe/Nowhere"}),
    ("/api/counts", {"tz": "../../../etc/passwd"}),
    ("/api/counts", {"tz": "UTC\x00"}),
    ("/api/counts", {"site": "\x00"}),
    ("/api/counts", {"camera": "c" * 10_000}),
    ("/api/counts", {"line": "Door"}),
    ("/api/counts", {"from": "0001-01-01", "to": "0001-01-02"}),
    ("/api/counts", {"from": "9999-12-30", "to": "9999-12-31", "bucket": "day"}),
    ("/api/counts", {"to": "9" * 10_000}),
    ("/api/counts", {"from": "2026-11-20T08:00\x00"}),
    ("/api/counts", {"bucket": "week"}),
    ("/api/counts.csv", {"category": "\x00"}),
    ("/api/summary", {"tz": "x" * 10_000}),
    ("/api/completeness", {"site": "\x00"}),
    ("/api/audit-heads", {"site": "\x00"}),
    ("/api/audit-heads", {"limit": "9" * 5000}),
    ("/api/sites/%00/notice", {}),
    ("/api/sites/" + "s" * 5000 + "/notice", {}),
]


def test_hostile_parameters_are_answered_422(engine: Engine) -> None:  # noqa: F811
    client = TestClient(create_app(DashboardConfig(timezone="Europe/Paris"), engine))
    answers = {
        (path, str(params)[:40]): client.get(path, params=params) for path, params in HOSTILE
    }
    wrong = {case: (r.status_code, r.text[:200]) for case, r in answers.items()
             if r.status_code != 422}  # fmt: skip
    assert wrong == {}
