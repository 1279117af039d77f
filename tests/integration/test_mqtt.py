"""Publishing against a real Eclipse Mosquitto broker: layout, outage, restart, auth, TLS, will."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from edge.analytics.aggregate import CountReport, WindowAggregator
from edge.analytics.counting import CountEvent
from edge.analytics.detections import Category
from edge.config import MqttConfig, TlsConfig
from edge.legal.audit import AuditLog
from edge.legal.gate import EgressGate
from edge.legal.policy import DEFAULT_POLICY, load_policy
from edge.publish.mqtt import MqttPublisher
from edge.publish.spool import Spool
from edge.schema import NoticeMessage, PublishedReport
from tests.conftest import EXAMPLE, REPO, edge_argv, wait_until
from tests.support.broker import Broker, Received, subscribe

POLICY = load_policy(REPO / DEFAULT_POLICY)
NOTICE = NoticeMessage(
    schema_version=1,
    policy=POLICY.name,
    policy_sha256=POLICY.sha256,
    notice_url="https://example.org/n",
    notice="# notice",
)
SITE = "t"
TODAY = dt.date(2026, 11, 22)


def mqtt_config(broker: Broker, **changes: Any) -> MqttConfig:
    fields: dict[str, Any] = {
        "enabled": True,
        "host": broker.host,
        "port": broker.port,
        "site": SITE,
        "reconnect_min_s": 1,
        "reconnect_max_s": 2,
        "keepalive_s": 5,
    }
    fields.update(changes)
    return MqttConfig.model_validate(fields)


def windows(first: int, count: int) -> list[CountReport]:
    """One report per 60 s window from ``first``, each with ``index + 1`` vehicles in, each
    window watched throughout (a frame every 2 s), as the egress gate wants of live windows."""
    agg = WindowAggregator("cam", ["door"], [], seconds=60)
    reports = []
    for k in range(first, first + count + 1):
        t = 1_700_000_040 + 60.0 * k  # on the minute
        events = [CountEvent("door", "in", Category.VEHICLE, t)] * (k + 1)
        reports += agg.add(t, events, {})
        for step in range(2, 60, 2):
            reports += agg.add(t + step, [], {})
    return reports


def report_ids(messages: list[Received]) -> list[str]:
    return [json.loads(m.payload)["report_id"] for m in messages]


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.jsonl")


def publisher_for(config: MqttConfig, tmp_path: Path) -> MqttPublisher:
    return MqttPublisher(config, Spool(tmp_path / "spool.sqlite"), ["cam"], NOTICE)


def test_outage_longer_than_two_windows_loses_nothing(
    broker: Broker, tmp_path: Path, audit: AuditLog
) -> None:
    counts = f"edge/{SITE}/cam/counts"
    subscriber = subscribe(broker, [counts], persistent_id="outage-watcher")
    publisher = publisher_for(mqtt_config(broker), tmp_path)
    gate = EgressGate(POLICY, audit, [publisher], NOTICE.notice_url)
    publisher.start()
    try:
        assert wait_until(lambda: publisher.connected)
        reports = windows(0, 9)
        for report in reports[:3]:
            gate.publish(report, TODAY)
        assert subscriber.wait_for(lambda m: len(m) >= 3)
        broker.stop()
        assert wait_until(lambda: not publisher.connected)
        for report in reports[3:6]:  # three windows while the broker is down: spooled
            gate.publish(report, TODAY)
        assert publisher.spool.depth == 3
        broker.start()
        for report in reports[6:]:
            gate.publish(report, TODAY)
        assert publisher.flush(20), broker.log_tail()
        expected = [gate.payload(r)["report_id"] for r in reports]
        assert subscriber.wait_for(lambda m: set(report_ids(m)) >= set(expected), 20)
        received = report_ids(subscriber.messages(counts))
        first_seen = list(dict.fromkeys(received))
        assert first_seen == expected  # every window, in window order, none lost
        assert publisher.spool.depth == 0
    finally:
        publisher.stop(2)
        subscriber.close()


def camera_statuses(broker: Broker) -> dict[str, bytes]:
    """Each camera's retained status as a newcomer reads it."""
    with subscribe(broker, [f"edge/{SITE}/+/status"]) as late:
        late.wait_for(lambda m: False, 0.3)  # the retained messages follow the SUBACK
        return {m.topic.split("/")[2]: m.payload for m in late.messages() if m.retain}


def settles_at(broker: Broker, expected: dict[str, bytes], timeout: float = 15) -> bool:
    """The retained statuses reach ``expected`` and still hold a moment later (no stale resend
    arriving just after)."""
    if not wait_until(lambda: camera_statuses(broker) == expected, timeout):
        return False
    time.sleep(0.5)
    return camera_statuses(broker) == expected


def test_reconnect_republishes_each_cameras_last_known_status(
    broker: Broker, tmp_path: Path
) -> None:
    """Regression: every reconnect announced every camera "online", and changes made while
    the broker was down were dropped, so the retained statuses lied until the next change."""
    publisher = MqttPublisher(mqtt_config(broker), Spool(tmp_path / "s.sqlite"), ["a", "b"], NOTICE)
    publisher.start()
    try:
        assert wait_until(lambda: publisher.connected)
        publisher.set_camera_status("a", "online")
        publisher.set_camera_status("b", "offline")
        assert settles_at(broker, {"a": b"online", "b": b"offline"}), broker.log_tail()
        broker.stop()
        assert wait_until(lambda: not publisher.connected)
        publisher.set_camera_status("b", "online")
        publisher.set_camera_status("a", "offline")
        broker.start()
        assert wait_until(lambda: publisher.connected, 15)
        assert settles_at(broker, {"a": b"offline", "b": b"online"}), broker.log_tail()
        assert publisher.camera_status == {"a": "offline", "b": "online"}
    finally:
        publisher.stop(2)


def test_a_camera_down_at_a_broker_restart_stays_offline(broker: Broker, tmp_path: Path) -> None:
    """Regression: a camera that was down (or never came up) was announced "online" at the
    first connect and again at every reconnect."""
    spool = Spool(tmp_path / "s.sqlite")
    publisher = MqttPublisher(mqtt_config(broker), spool, ["up", "down", "silent"], NOTICE)
    publisher.start()
    try:
        assert wait_until(lambda: publisher.connected)
        publisher.set_camera_status("up", "online")
        publisher.set_camera_status("down", "online")
        publisher.set_camera_status("down", "offline")  # "silent" never reports at all
        expected = {"up": b"online", "down": b"offline", "silent": b"offline"}
        assert settles_at(broker, expected), broker.log_tail()
        broker.stop()
        # Forget what the broker retained: whatever a newcomer reads now, the reconnect said.
        (broker.workdir / "mosquitto.db").unlink()
        broker.start()
        assert wait_until(lambda: publisher.connected, 15)
        assert settles_at(broker, expected), broker.log_tail()
    finally:
        publisher.stop(2)


def test_a_status_unacknowledged_at_an_outage_does_not_overwrite_a_newer_one(
    broker: Broker, tmp_path: Path
) -> None:
    """Regression: paho resends what the lost connection left unacknowledged after what a
    connect publishes, so an old status sent into a dying connection overwrote the newer one."""
    publisher = MqttPublisher(mqtt_config(broker), Spool(tmp_path / "s.sqlite"), ["a"], NOTICE)
    publisher.start()
    try:
        assert wait_until(lambda: publisher.connected)
        publisher.set_camera_status("a", "online")
        assert settles_at(broker, {"a": b"online"}), broker.log_tail()
        assert broker._process is not None
        pid = broker._process.pid  # our own fixture's process: freeze it, then kill it
        os.kill(pid, signal.SIGSTOP)  # the next PUBLISH is sent but never acknowledged
        publisher.set_camera_status("a", "offline")
        assert publisher.connected
        os.kill(pid, signal.SIGKILL)
        broker.stop()  # reaps it
        assert wait_until(lambda: not publisher.connected)
        publisher.set_camera_status("a", "online")  # the newer status, while disconnected
        broker.start()
        assert wait_until(lambda: publisher.connected, 15)
        assert settles_at(broker, {"a": b"online"}), broker.log_tail()
    finally:
        publisher.stop(2)


def test_drain_thread_survives_errors_and_delivers_once_they_stop(
    broker: Broker,
    tmp_path: Path,
    audit: AuditLog,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: one exception in a drain pass (paho's "not currently connected" during a
    broker restart, a damaged spool page) ended the drain thread: reports then stayed spooled
    for good while the process looked healthy."""
    counts = f"edge/{SITE}/cam/counts"
    subscriber = subscribe(broker, [counts])
    publisher = publisher_for(mqtt_config(broker), tmp_path)
    monkeypatch.setattr(publisher, "DRAIN_BACKOFF_S", 0.05, raising=False)
    damaged = threading.Event()
    damaged.set()
    failures: list[int] = []
    pending = publisher.spool.pending

    def damaged_pending(limit: int = 100, exclude: frozenset[int] = frozenset()) -> list[Any]:
        if damaged.is_set():
            failures.append(1)
            raise sqlite3.DatabaseError("database disk image is malformed")
        return pending(limit, exclude)

    monkeypatch.setattr(publisher.spool, "pending", damaged_pending)
    gate = EgressGate(POLICY, audit, [publisher], NOTICE.notice_url)
    with caplog.at_level(logging.ERROR, logger="edge.publish.mqtt"):
        publisher.start()
        try:
            assert wait_until(lambda: publisher.connected)
            gate.publish(windows(0, 1)[0], TODAY)
            assert wait_until(lambda: len(failures) >= 3), "the drain thread stopped"
            assert publisher.drain_alive
            assert publisher.drain_errors >= 3
            assert "DatabaseError: database disk image is malformed" in publisher.delivery_error
            assert publisher.spool.depth == 1
            damaged.clear()
            assert publisher.flush(10)
            assert subscriber.wait_for(lambda m: len(m) == 1)
            assert publisher.delivery_error == ""
            assert publisher.drain_alive
        finally:
            publisher.stop(2)
            subscriber.close()
    logged = [r for r in caplog.records if "delivery failed" in r.getMessage()]
    assert len(logged) == 1  # once per distinct error, not once per pass


CHILD = """
import sys, time, datetime
from pathlib import Path
from edge.legal.audit import AuditLog
from edge.config import MqttConfig
from edge.legal.gate import EgressGate
from edge.publish.mqtt import MqttPublisher
from edge.publish.spool import Spool
from tests.integration.test_mqtt import NOTICE, POLICY, windows

config = MqttConfig.model_validate_json(sys.argv[1])
work = Path(sys.argv[2])
publisher = MqttPublisher(config, Spool(work / "spool.sqlite"), ["cam"], NOTICE)
gate = EgressGate(POLICY, AuditLog(work / "audit.jsonl"), [publisher], NOTICE.notice_url)
publisher.start()
mode = sys.argv[3]
if mode == "spool-and-hang":
    for report in windows(0, 4):
        gate.publish(report, datetime.date(2026, 11, 22))
    print("spooled", publisher.spool.depth, flush=True)
elif mode == "connect-and-hang":
    while not publisher.connected:
        time.sleep(0.05)
    print("connected", flush=True)
elif mode == "flush":
    ok = publisher.flush(20)
    publisher.stop(5)
    print("flushed" if ok else "NOT FLUSHED", publisher.spool.depth, flush=True)
    sys.exit(0)
time.sleep(600)
"""


def child(config: MqttConfig, work: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, config.model_dump_json(), str(work), mode],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_reports_spooled_by_a_killed_process_are_delivered_by_the_next(
    broker: Broker, tmp_path: Path
) -> None:
    config = mqtt_config(broker)
    broker.stop()
    first = child(config, tmp_path, "spool-and-hang")
    assert first.stdout is not None
    line = first.stdout.readline()
    assert line.strip() == "spooled 4", first.stderr.read() if first.stderr else ""
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    broker.start()
    subscriber = subscribe(broker, [f"edge/{SITE}/cam/counts"])
    try:
        second = child(config, tmp_path, "flush")
        out, err = second.communicate(timeout=60)
        assert out.strip() == "flushed 0", err
        assert subscriber.wait_for(lambda m: len(set(report_ids(m))) == 4, 10)
    finally:
        subscriber.close()


def test_last_will_says_offline_when_the_process_dies(broker: Broker, tmp_path: Path) -> None:
    status = f"edge/{SITE}/status"
    subscriber = subscribe(broker, [status])
    process = child(mqtt_config(broker), tmp_path, "connect-and-hang")
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "connected"
        assert subscriber.wait_for(lambda m: [x.payload for x in m][-1:] == [b"online"])
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        assert subscriber.wait_for(lambda m: [x.payload for x in m][-1:] == [b"offline"], 10)
    finally:
        process.kill()
        subscriber.close()
    late = subscribe(broker, [status])  # retained: a newcomer learns the box is offline
    try:
        assert late.wait_for(lambda m: m == [Received(status, b"offline", True)])
    finally:
        late.close()


def test_wrong_password_is_a_clear_error_and_reports_stay_spooled(
    secure_broker: Broker, tmp_path: Path, audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    assert secure_broker.ca_file is not None and secure_broker.tls_port is not None
    config = mqtt_config(
        secure_broker,
        port=secure_broker.tls_port,
        username="edge",
        password="not-the-password",
        tls=TlsConfig(ca_file=secure_broker.ca_file),
    )
    publisher = publisher_for(config, tmp_path)
    gate = EgressGate(POLICY, audit, [publisher], NOTICE.notice_url)
    with caplog.at_level(logging.ERROR, logger="edge.publish.mqtt"):
        publisher.start()
        try:
            gate.publish(windows(0, 1)[0], TODAY)
            assert wait_until(lambda: "refused the connection" in publisher.last_error)
            assert not publisher.connected
            assert publisher.spool.depth == 1
        finally:
            publisher.stop(1)
    assert "Not authorized" in caplog.text or "Bad user name or password" in caplog.text
    assert "not-the-password" not in caplog.text


def test_tls_with_the_right_ca_delivers_and_a_wrong_ca_is_refused(
    secure_broker: Broker, tmp_path: Path, audit: AuditLog
) -> None:
    assert secure_broker.ca_file and secure_broker.wrong_ca_file and secure_broker.tls_port
    secure = {
        "port": secure_broker.tls_port,
        "username": secure_broker.username,
        "password": secure_broker.password,
    }
    counts = f"edge/{SITE}/cam/counts"
    subscriber = subscribe(
        secure_broker, [counts], tls=True,
        username=secure_broker.username, password=secure_broker.password,
    )  # fmt: skip
    good = publisher_for(
        mqtt_config(secure_broker, **secure, tls=TlsConfig(ca_file=secure_broker.ca_file)),
        tmp_path / "good",
    )
    gate = EgressGate(POLICY, audit, [good], NOTICE.notice_url)
    good.start()
    try:
        gate.publish(windows(0, 1)[0], TODAY)
        assert good.flush(10)
        assert subscriber.wait_for(lambda m: len(m) == 1)
    finally:
        good.stop(2)
        subscriber.close()
    bad = publisher_for(
        mqtt_config(secure_broker, **secure, tls=TlsConfig(ca_file=secure_broker.wrong_ca_file)),
        tmp_path / "bad",
    )
    bad.start()
    try:
        assert wait_until(lambda: "TLS refused" in bad.last_error)
        assert not bad.connected
    finally:
        bad.stop(1)


@pytest.mark.slow
def test_edge_run_on_a_clip_publishes_counts_status_notice_and_stats(
    broker: Broker, tmp_path: Path, tud_clip: Path
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["mqtt"] = {
        "enabled": True, "host": broker.host, "port": broker.port, "site": "campus",
        "home_assistant": True,
    }  # fmt: skip
    data["spool"] = {"path": str(tmp_path / "spool.sqlite")}
    data["sinks"] = {"jsonl": str(tmp_path / "reports.jsonl")}
    data["cameras"][0]["source"] = str(tud_clip)
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    subscriber = subscribe(broker, ["edge/campus/#", "homeassistant/#"])
    try:
        result = subprocess.run(
            edge_argv("run", "-c", str(config)),
            cwd=REPO, capture_output=True, text=True, timeout=300, env=os.environ,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert subscriber.wait_for(
            lambda m: [x.payload for x in m if x.topic == "edge/campus/status"][-1:] == [b"offline"]
        )
        counts = subscriber.messages("edge/campus/tud-campus/counts")
        # 2.84 s of video replayed from now: one window, or two when it straddles a minute.
        reports = [PublishedReport.model_validate_json(m.payload) for m in counts]
        assert 1 <= len(reports) <= 2 and not any(m.retain for m in counts)
        assert all(r.partial and r.camera == "tud-campus" for r in reports)
        assert all(r.window_start.endswith(":00.000Z") for r in reports)  # on the minute
        assert [r.end for r in reports[:-1]] == [r.start for r in reports[1:]]
        assert sum(r.lines["centre"]["in"]["pedestrian"] for r in reports) >= 3
        statuses = [x.payload for x in subscriber.messages("edge/campus/status")]
        assert statuses[0] == b"online" and statuses[-1] == b"offline"
        camera = [x.payload for x in subscriber.messages("edge/campus/tud-campus/status")]
        # "offline" until the runner says otherwise: the connect may come before the first frame
        assert b"online" in camera and camera[-1] == b"offline"
        (notice,) = subscriber.messages("edge/campus/notice")
        assert json.loads(notice.payload)["policy_sha256"] == POLICY.sha256
        stats = [json.loads(x.payload) for x in subscriber.messages("edge/campus/stats")]
        assert stats and stats[-1]["cameras"]["tud-campus"]["frames_processed"] == 71
        discovery = {x.topic: json.loads(x.payload) for x in subscriber.messages("homeassistant/#")}
        assert len(discovery) == 2 * 3  # line centre x in/out x three categories
        sensor = discovery[
            "homeassistant/sensor/edge_campus_tud_campus_centre_in_pedestrian/config"
        ]
        assert sensor["state_topic"] == "edge/campus/tud-campus/counts"
        assert sensor["value_template"] == "{{ value_json.lines['centre']['in']['pedestrian'] }}"
        lines = (tmp_path / "reports.jsonl").read_text().splitlines()
        assert [json.loads(x)["report_id"] for x in lines] == [r.report_id for r in reports]
        assert Spool(tmp_path / "spool.sqlite").depth == 0
    finally:
        subscriber.close()
    late = subscribe(broker, ["edge/campus/notice"])
    try:
        assert late.wait_for(lambda m: len(m) == 1 and m[0].retain)
    finally:
        late.close()


def test_every_spool_entry_is_a_gated_report(tmp_path: Path, audit: AuditLog) -> None:
    """Payloads reach the spool only through the egress gate: a drop never reaches it."""
    spool = Spool(tmp_path / "spool.sqlite")
    publisher = MqttPublisher(
        MqttConfig(enabled=True, port=1, site=SITE), spool, ["cam"], NOTICE
    )  # never started: sending only spools
    gate = EgressGate(POLICY, audit, [publisher], NOTICE.notice_url)
    good = gate.payload(windows(0, 1)[0])
    assert gate.admit({**good, "track_id": 3}) is None
    assert gate.admit(good) is not None
    (row,) = spool.pending()
    assert PublishedReport.model_validate_json(row.payload).report_id == good["report_id"]
    assert np.isclose(row.window_start, good["start"])


@pytest.mark.slow
def test_edge_run_stops_cleanly_on_sigterm(broker: Broker, tmp_path: Path) -> None:
    """SIGTERM mid-clip: the open window goes out as partial, status offline, exit 0."""
    from tests.conftest import shared_file

    data = yaml.safe_load(EXAMPLE.read_text())
    data["mqtt"] = {"enabled": True, "host": broker.host, "port": broker.port, "site": "s"}
    data["spool"] = {"path": str(tmp_path / "spool.sqlite")}
    data["cameras"][0]["source"] = str(
        shared_file("clips/degirum_traffic2_intersection_960x540.mp4")
    )
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    subscriber = subscribe(broker, ["edge/s/#"])
    try:
        process = subprocess.Popen(
            edge_argv("run", "-c", str(config)),
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert subscriber.wait_for(lambda m: any(x.topic == "edge/s/status" for x in m), 60)
        time.sleep(3)  # some frames in, far from the clip's end (~12 s of processing)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert "interrupted" in err
        assert subscriber.wait_for(
            lambda m: [x.payload for x in m if x.topic == "edge/s/status"][-1:] == [b"offline"]
        )
        counts = subscriber.messages("edge/s/tud-campus/counts")
        assert 1 <= len(counts) <= 2  # one window, or two if the run straddles a minute
        assert PublishedReport.model_validate_json(counts[-1].payload).partial
    finally:
        subscriber.close()


@pytest.mark.parametrize("restarts", [6, 10])
def test_a_flapping_broker_never_stops_delivery(
    broker: Broker, tmp_path: Path, audit: AuditLog, restarts: int
) -> None:
    """Regression: with many reports spooled and the broker restarted again and again,
    the drain thread died at the second restart ("The client is not currently connected") and
    the spool stayed full while the box looked healthy. Every report arrives, the thread lives."""
    counts = f"edge/{SITE}/cam/counts"
    subscriber = subscribe(broker, [counts], persistent_id=f"flap-watcher-{restarts}")
    broker.stop()
    publisher = publisher_for(mqtt_config(broker), tmp_path)
    gate = EgressGate(POLICY, audit, [publisher], NOTICE.notice_url)
    # Under the test broker's default queue of 1000 messages for a subscriber that is away
    # during a restart: more would be the broker's drop, not ours.
    reports = windows(0, 800)
    for report in reports:  # spooled while the broker is down
        gate.publish(report, TODAY)
    assert publisher.spool.depth == len(reports)
    publisher.start()
    try:
        for _ in range(restarts):  # up and down while the backlog drains
            broker.start()
            time.sleep(0.4)
            broker.stop()
            time.sleep(0.2)
        broker.start()
        assert publisher.flush(60), broker.log_tail()
        assert publisher.drain_alive and publisher.spool.depth == 0
        expected = {gate.payload(r)["report_id"] for r in reports}
        assert subscriber.wait_for(lambda m: set(report_ids(m)) >= expected, 60)
        assert not publisher.delivery_error
    finally:
        publisher.stop(2)
        subscriber.close()
