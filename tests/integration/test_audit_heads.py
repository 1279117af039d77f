"""The audit log's head leaves the box (retained MQTT topic ``P/S/audit``) and the dashboard
keeps every distinct one: the anchor against which a cut or re-chained log fails. Real
Mosquitto, real collector and database; the full ``edge run`` on a clip is in
``test_dashboard_mqtt.py``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edge.app import _start_audit_heads
from edge.config import DashboardConfig, Settings
from edge.dashboard import queries
from edge.dashboard.api import create_app
from edge.dashboard.ingest import Collector
from edge.dashboard.store import Store, migrate, open_engine
from edge.legal.audit import AuditLog, verify_audit
from edge.publish.mqtt import MqttPublisher
from edge.publish.spool import Spool
from edge.schema import AuditHeadMessage, Topics, iso
from tests.conftest import wait_until
from tests.integration.test_mqtt import NOTICE, mqtt_config
from tests.support.broker import Broker, subscribe

SITE = "t"
DAY = 86400


@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = open_engine(f"sqlite:///{tmp_path / 'dashboard.sqlite'}")
    migrate(engine)
    return Store(engine, raw_retention_days=30)


@pytest.fixture
def collector(broker: Broker, store: Store) -> Iterator[Collector]:
    collector = Collector(mqtt_config(broker), DashboardConfig(sites=[SITE]), store)
    collector.start()
    assert wait_until(lambda: collector.counters.connected)
    yield collector
    collector.stop()


def head_message(
    entries: int, head: str, time: str = "2026-11-22T10:00:00.000Z"
) -> AuditHeadMessage:
    return AuditHeadMessage(schema_version=1, site=SITE, time=time, entries=entries, head=head)


def latest_is(store: Store, head: str) -> bool:
    stored = queries.audit_heads(store.engine, SITE)
    return bool(stored) and stored[0]["head"] == head


@pytest.mark.parametrize("appended", [0, 3, 12])
def test_a_running_edge_publishes_its_audit_head_and_the_dashboard_keeps_each_one(
    broker: Broker, collector: Collector, store: Store, tmp_path: Path, appended: int
) -> None:
    """At start, periodically and at stop: the last stored head is the log's own, and
    ``verify_audit`` holds against it, so a DPO can check the box's file with it."""
    settings = Settings(mqtt=mqtt_config(broker, stats_interval_s=1))
    audit_path = tmp_path / "audit.jsonl"
    with ExitStack() as stack:
        audit = stack.enter_context(AuditLog(audit_path))
        audit.append("start", cameras=["cam"])
        spool = Spool(tmp_path / "spool.sqlite")
        stack.callback(spool.close)
        publisher = MqttPublisher(settings.mqtt, spool, ["cam"], NOTICE)
        publisher.start()
        stack.callback(publisher.stop, 2.0)
        _start_audit_heads(settings, publisher, audit, stack)  # as edge run does
        assert wait_until(lambda: bool(queries.audit_heads(store.engine, SITE)))
        for i in range(appended):
            audit.append("egress_drop", reason=f"r{i}")
            if i == appended // 2:  # the periodic publication catches the head meanwhile
                middle = audit.head.hash
                assert wait_until(partial(latest_is, store, middle))
        audit.append("stop", frames_persisted=0)
        final = audit.head
    # The stop head went out before the publisher disconnected, retained.
    assert wait_until(lambda: queries.audit_heads(store.engine, SITE)[0]["head"] == final.hash)
    latest = queries.audit_heads(store.engine, SITE)[0]
    assert latest["entries"] == final.entries == appended + 2
    late = subscribe(broker, [Topics("edge", SITE).audit])  # after the box has stopped
    try:
        assert late.wait_for(lambda m: any(x.retain for x in m))
        (retained,) = [AuditHeadMessage.model_validate_json(m.payload) for m in late.messages()]
    finally:
        late.close()
    assert (retained.entries, retained.head) == (final.entries, final.hash)
    assert verify_audit(audit_path, expect_hash=latest["head"], expect_entries=latest["entries"]).ok
    entries = [row["entries"] for row in queries.audit_heads(store.engine, SITE)]
    assert entries[-1] == 1 and len(set(entries)) == len(entries)  # the start's head, no repeats
    assert len(entries) >= (3 if appended else 2)  # start, periodic (if it changed), stop


def test_a_retained_head_delivered_again_is_kept_once_and_a_lying_site_is_refused(
    broker: Broker, collector: Collector, store: Store
) -> None:
    heads = [head_message(n, f"{n:064x}", f"2026-11-22T10:0{n}:00.000Z") for n in (1, 2, 5)]
    for message in [*heads, heads[0], heads[2]]:
        collector.handle(Topics("edge", SITE).audit, message.model_dump_json().encode())
    other = head_message(9, "f" * 64).model_copy(update={"site": "other"})
    collector.handle(Topics("edge", SITE).audit, other.model_dump_json().encode())
    collector.handle(Topics("edge", SITE).audit, b'{"schema_version":1,"head":"x"}')
    stored = queries.audit_heads(store.engine, SITE)
    assert [(row["entries"], row["head"]) for row in stored] == [(5, heads[2].head),
        (2, heads[1].head), (1, heads[0].head)]  # fmt: skip
    assert queries.rejections(store.engine) == {
        "audit: site differs from the topic's": 1,
        "audit: not a well-formed report: site (missing); time (missing); entries (missing); "
        "head (string_pattern_mismatch)": 1,
    }


@pytest.mark.parametrize("age_days", [31, 90, 400])
def test_retention_drops_old_heads_but_keeps_each_sites_latest(store: Store, age_days: int) -> None:
    now = 1_800_000_000
    old = now - age_days * DAY
    for n, at in ((1, old - 60), (2, old), (3, now - DAY)):
        message = head_message(n, f"{n:064x}", iso(at))
        store.add_audit_head(SITE, message, at)
    quiet = head_message(7, "e" * 64, iso(old)).model_copy(update={"site": "quiet"})
    store.add_audit_head("quiet", quiet, old)
    deleted = store.prune(None, now=now)
    assert deleted["audit_heads"] == 2
    assert [row["entries"] for row in queries.audit_heads(store.engine, SITE)] == [3]
    assert [row["entries"] for row in queries.audit_heads(store.engine, "quiet")] == [7]


def test_the_api_and_the_page_show_the_anchors(store: Store) -> None:
    for n in (1, 4):
        store.add_audit_head(SITE, head_message(n, f"{n:064x}", f"2026-11-22T1{n}:00:00.000Z"), 0)
    store.add_audit_head("b", head_message(2, "b" * 64).model_copy(update={"site": "b"}), 0)
    client = TestClient(create_app(DashboardConfig(), store.engine))
    heads = client.get("/api/audit-heads", params={"site": SITE}).json()
    assert heads == [
        {"site": SITE, "entries": 4, "head": f"{4:064x}", "time": "2026-11-22T14:00:00+00:00",
         "received": "1970-01-01T00:00:00+00:00"},
        {"site": SITE, "entries": 1, "head": f"{1:064x}", "time": "2026-11-22T11:00:00+00:00",
         "received": "1970-01-01T00:00:00+00:00"},
    ]  # fmt: skip
    assert {h["site"] for h in client.get("/api/audit-heads").json()} == {SITE, "b"}
    assert client.get("/api/audit-heads", params={"limit": 0}).status_code == 422
    page = client.get("/").text
    assert "Audit log anchors" in page and 'id="audit-heads"' in page
    assert "drawAuditHeads" in client.get("/static/app.js").text
