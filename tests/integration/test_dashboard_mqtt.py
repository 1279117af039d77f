"""The dashboard's collector against a real Mosquitto broker, and a real ``edge run`` feeding
a real ``edge dashboard`` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.config import DashboardConfig, MqttConfig
from edge.dashboard import queries
from edge.dashboard.ingest import Collector
from edge.dashboard.store import Store, migrate, open_engine
from edge.publish.mqtt import MqttPublisher
from edge.publish.spool import Spool
from edge.schema import PublishedReport
from tests.conftest import EXAMPLE, REPO, edge_argv, wait_until
from tests.integration.test_dashboard import MONDAY, PARIS
from tests.integration.test_mqtt import NOTICE
from tests.support.broker import Broker, new_client
from tests.support.dashboard_data import make_report
from tests.support.net import HOST, accepts, free_port, wait_serving

SITE = "gare"


def broker_settings(broker: Broker) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, site=SITE, reconnect_min_s=1,
                      reconnect_max_s=2, keepalive_s=5)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = open_engine(f"sqlite:///{tmp_path / 'dashboard.sqlite'}")
    migrate(engine)
    return Store(engine, raw_retention_days=3650)


@pytest.fixture
def collector(broker: Broker, store: Store) -> Iterator[Collector]:
    collector = Collector(broker_settings(broker), DashboardConfig(), store)
    collector.start()
    assert wait_until(lambda: collector.counters.connected)
    yield collector
    collector.stop()


def publish(broker: Broker, messages: list[tuple[str, bytes]]) -> None:
    client = new_client(broker)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def pedestrians_in(store: Store) -> int:
    rows = queries.counts(store.engine, queries.Selection(MONDAY, MONDAY + 86400, PARIS, "day"))
    return sum(r.counts["in"]["pedestrian"] for r in rows)


def test_bad_messages_are_counted_by_reason_and_never_stop_the_collector(
    broker: Broker, collector: Collector, store: Store
) -> None:
    good = make_report("cam", MONDAY, counts={"in": {"pedestrian": 3}})
    payload = good.model_dump(mode="json")
    counts = f"edge/{SITE}/cam/counts"
    publish(broker, [
        (counts, b"\xff not json"),
        (counts, json.dumps({**payload, "track_id": 7}).encode()),  # a field the schema lacks
        (counts, json.dumps({**payload, "frames": -1}).encode()),
        (f"edge/{SITE}/other/counts", good.model_dump_json().encode()),  # topic says another camera
        (counts, b"x" * 300_000),
        (f"edge/{SITE}/cam/status", b"maybe"),
        (f"edge/{SITE}/stats", b"{}"),
        (counts, good.model_dump_json().encode()),
        (f"edge/{SITE}/notice", NOTICE.model_dump_json().encode()),
    ])  # fmt: skip
    assert wait_until(lambda: collector.counters.received == 9), collector.counters
    # Counted as received when its batch is checked, stored once the batch is committed.
    assert wait_until(lambda: (collector.counters.stored, collector.counters.rejected) == (1, 7))
    reasons = queries.rejections(store.engine)
    assert reasons == {
        "counts: not JSON": 1,
        # A field name the schema lacks is the sender's text: shown as "*", never repeated.
        "counts: not a well-formed report: * (extra_forbidden)": 1,
        "counts: not a well-formed report: frames (greater_than_equal)": 1,
        "counts: camera differs from the topic's": 1,
        "payload over 262144 bytes": 1,
        "status: neither 'online' nor 'offline'": 1,
        "stats: not a well-formed report: schema_version (missing); time (missing); "
        "cameras (missing); spool_depth (missing); reports_published (missing) and 1 more": 1,
    }
    assert pedestrians_in(store) == 3
    notice = NOTICE.notice
    assert wait_until(lambda: (queries.notice(store.engine, SITE) or {}).get("notice") == notice)


def test_a_spooled_backlog_arrives_late_out_of_order_and_is_stored_once(
    broker: Broker, collector: Collector, store: Store, tmp_path: Path
) -> None:
    publisher = MqttPublisher(
        broker_settings(broker), Spool(tmp_path / "spool.sqlite"), ["cam"], NOTICE
    )
    reports = [
        make_report("cam", MONDAY + 60 * k, counts={"in": {"pedestrian": k}}) for k in range(8)
    ]
    broker.stop()
    assert wait_until(lambda: not collector.counters.connected)
    publisher.start()
    try:
        for report in reports[4:] + reports[:4]:  # the spool holds the later windows first
            publisher.send(report)
        assert publisher.spool.depth == 8
        broker.start()
        assert publisher.flush(20), broker.log_tail()
        assert wait_until(lambda: collector.counters.stored == 8, 20), collector.counters
        publisher.send(reports[0])  # delivered again: same id, same figures
        assert wait_until(lambda: collector.counters.duplicates == 1)
    finally:
        publisher.stop(2)
    assert pedestrians_in(store) == sum(range(8))


def test_reports_sent_while_the_dashboard_is_down_wait_on_the_broker(
    broker: Broker, store: Store
) -> None:
    first = Collector(broker_settings(broker), DashboardConfig(), store)
    first.start()
    assert wait_until(lambda: first.counters.connected)
    first.stop()
    reports = [
        make_report("cam", MONDAY + 60 * k, counts={"in": {"pedestrian": 1}}) for k in range(5)
    ]
    publish(broker, [(f"edge/{SITE}/cam/counts", r.model_dump_json().encode()) for r in reports])
    second = Collector(broker_settings(broker), DashboardConfig(), store)
    second.start()
    try:
        assert wait_until(lambda: second.counters.stored == 5), second.counters
    finally:
        second.stop()


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_edge_run_on_a_clip_feeds_the_dashboard_through_mosquitto(
    broker: Broker, tmp_path: Path, tud_clip: Path, audit_in_tmp: Path
) -> None:
    port = free_port()
    dashboard_config = tmp_path / "dashboard.yaml"
    dashboard_config.write_text(yaml.safe_dump({
        "mqtt": {"host": broker.host, "port": broker.port},
        "dashboard": {"database": f"sqlite:///{tmp_path / 'dashboard.sqlite'}",
                      "listen_port": port, "timezone": "Europe/Paris"},
    }))  # fmt: skip
    log = (tmp_path / "dashboard.log").open("wb")
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "edge", "dashboard", "-c", str(dashboard_config)],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=os.environ,
    )  # fmt: skip
    try:
        wait_serving(
            dashboard, lambda: accepts(port), "edge dashboard",
            lambda: (tmp_path / "dashboard.log").read_text(), dashboard.kill, 30,
        )  # fmt: skip
        assert wait_until(lambda: get_json(port, "/healthz")["ingest"]["connected"])
        data = yaml.safe_load(EXAMPLE.read_text())
        data["mqtt"] = {"enabled": True, "host": broker.host, "port": broker.port, "site": SITE}
        data["spool"] = {"path": str(tmp_path / "spool.sqlite")}
        data["sinks"] = {"jsonl": str(tmp_path / "reports.jsonl")}
        data["cameras"][0]["source"] = str(tud_clip)
        edge_config = tmp_path / "edge.yaml"
        edge_config.write_text(yaml.safe_dump(data))
        run = subprocess.run(
            edge_argv("run", "-c", str(edge_config)),
            cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        sent = [
            PublishedReport.model_validate_json(line)
            for line in (tmp_path / "reports.jsonl").read_text().splitlines()
        ]
        assert sent and sum(r.lines["centre"]["in"]["pedestrian"] for r in sent) >= 3
        assert wait_until(lambda: get_json(port, "/healthz")["ingest"]["stored"] == len(sent), 20)
        # edge run replays the clip from now: the API's default range (7 days) holds it.
        rows = get_json(port, f"/api/counts?site={SITE}&bucket=15min&line=centre")["rows"]
        for direction in ("in", "out"):
            for category in ("pedestrian", "bike", "vehicle"):
                assert sum(r[direction][category] for r in rows) == sum(
                    r.lines["centre"][direction][category] for r in sent
                )
        (camera,) = get_json(port, f"/api/completeness?site={SITE}")
        assert camera["camera"] == "tud-campus" and camera["received"] == len(sent)
        assert camera["partial"] == sum(r.partial for r in sent)
        assert wait_until(lambda: get_json(port, "/api/sites")[0]["cameras"][0]["online"] is False)
        notice = get_json(port, f"/api/sites/{SITE}/notice")
        assert notice["notice_url"] == data["deployment"]["notice_url"]
        # The audit log's head at stop is kept off the box, and the box's log holds it.
        lines = audit_in_tmp.read_text().splitlines()
        stop = json.loads(lines[-1])
        assert stop["event"] == "stop"
        assert wait_until(
            lambda: get_json(port, f"/api/audit-heads?site={SITE}")[0]["head"] == stop["hash"]
        )
        (latest, *_) = get_json(port, f"/api/audit-heads?site={SITE}")
        assert latest["entries"] == len(lines)
        verify = subprocess.run(
            edge_argv("audit", "verify", str(audit_in_tmp), "--expect-head", latest["head"],
                      "--expect-entries", str(latest["entries"])),
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert verify.returncode == 0, verify.stderr
    finally:
        dashboard.terminate()
        dashboard.wait(10)
        log.close()
    assert dashboard.returncode == 0, (tmp_path / "dashboard.log").read_text()
