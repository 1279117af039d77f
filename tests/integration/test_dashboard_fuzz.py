"""Fuzzing the collector's message handler and the API's parameters (hypothesis).

Neither may let an exception escape, the collector may never need its last-resort handler
(every bad message is refused by a check, counted under a reason) and the API never answers
500. ``EDGE_FUZZ_EXAMPLES`` sets the number of examples (default: a quick run for the suite).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import available_timezones

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from edge.config import DashboardConfig, MqttConfig
from edge.dashboard.api import create_app
from edge.dashboard.ingest import Collector
from edge.dashboard.store import Store, migrate, open_engine
from edge.schema import AuditHeadMessage, NoticeMessage, Topics
from tests.integration.test_dashboard import MONDAY, engine  # noqa: F401  (fixture)
from tests.support.dashboard_data import make_report
from tests.support.postgres import postgres_server  # noqa: F401  (fixture)

EXAMPLES = int(os.environ.get("EDGE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip
SITE = "gare"
TOPICS = Topics("edge", SITE)

# -- messages ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.text(max_size=40)
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([1e19, -1.0, 2**63, 2**31, 1e308, "", "\x00", "a" * 300]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


def valid_messages(start: int, count: int) -> dict[str, dict[str, Any]]:
    """One well-formed payload of every kind, to be mutated."""
    report = make_report("cam", start, counts={"in": {"pedestrian": count}}, zone="hall")
    stats = {"schema_version": 1, "time": "2026-11-16T00:00:00.000Z", "spool_depth": 0,
             "reports_published": 1, "reports_dropped": 0,
             "cameras": {"cam": {"frames_received": 1, "frames_processed": 1,
                                 "frames_dropped": 0, "fps": 5.0, "detector_ms_p50": 1.0,
                                 "detector_ms_p95": 2.0, "frame_age_ms_p50": 1.0,
                                 "frame_age_ms_p95": 1.0, "reconnects": 0, "stalls": 0,
                                 "offline_s": 0.0, "online": True}}}  # fmt: skip
    notice = NoticeMessage(schema_version=1, policy="eu-gdpr", policy_sha256="5" * 64,
                           notice_url="https://example.org/n", notice="Counting.")  # fmt: skip
    head = AuditHeadMessage(schema_version=1, site=SITE, time="2026-11-16T00:00:00.000Z",
                            entries=3, head="a" * 64)  # fmt: skip
    return {
        TOPICS.counts("cam"): report.model_dump(mode="json"),
        TOPICS.stats: stats,
        TOPICS.notice: notice.model_dump(mode="json"),
        TOPICS.audit: head.model_dump(mode="json"),
    }


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A well-formed message with one value, deep or shallow, replaced, dropped or added."""
    start = draw(st.integers(0, 253_402_000_000))  # up to the end of year 9999
    count = draw(st.integers(0, 10_000_000))
    messages = valid_messages(start, count)
    topic = draw(st.sampled_from(sorted(messages)))
    payload: Any = messages[topic]
    node = payload
    while isinstance(node, dict) and node and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(node)))
        if not isinstance(node[key], dict) or not node[key]:
            break
        node = node[key]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node)))
        action = draw(st.sampled_from(["replace", "drop", "add"]))
        if action == "replace":
            node[key] = draw(json_values)
        elif action == "drop":
            del node[key]
        else:
            node[draw(st.text(max_size=12))] = draw(json_values)
    return topic, json.dumps(payload).encode()


topics = st.sampled_from(
    [TOPICS.counts("cam"), TOPICS.camera_status("cam"), TOPICS.status, TOPICS.stats,
     TOPICS.notice, TOPICS.audit, TOPICS.counts("+"), f"edge/{'s' * 200}/cam/counts",
     "edge/gare/cam/counts/x", "other/gare/stats", "", "edge/\x00/stats"]
) | st.text(max_size=60)  # fmt: skip

payloads = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(0, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(0, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.sampled_from([b"online", b"offline", b" online\n", b"\xff", b"NaN", b"9" * 5000]),
)

messages = mutated() | st.tuples(topics, payloads)


def test_fuzz_the_collectors_message_handler(tmp_path: Path) -> None:
    db = open_engine(f"sqlite:///{tmp_path / 'fuzz.sqlite'}")
    migrate(db)
    collector = Collector(MqttConfig(site=SITE), DashboardConfig(), Store(db, 36500))

    @FUZZ
    @given(messages)
    def handled(message: tuple[str, bytes]) -> None:
        before = collector.counters.received
        collector.handle(*message)
        assert collector.counters.received == before + 1
        assert collector.counters.errors == 0, collector.counters.last_error
        assert collector.counters.storing == "ok"

    handled()
    # Whatever was stored reads back: no value the API cannot answer with.
    client = TestClient(create_app(DashboardConfig(), db))
    wide = {"from": "1970-01-02", "to": "8999-12-01", "bucket": "day"}
    for path in ("/api/sites", "/api/rejections", "/api/audit-heads"):
        assert client.get(path).status_code == 200
    for path in ("/api/counts", "/api/counts.csv", "/api/summary", "/api/completeness"):
        response = client.get(path, params=wide)
        assert response.status_code in (200, 422), response.text[:200]
    db.dispose()


# -- API parameters ----------------------------------------------------------------------------

PATHS = ["/api/counts", "/api/counts.json", "/api/counts.csv", "/api/summary",
         "/api/completeness", "/api/audit-heads", "/api/sites/gare/notice",
         "/api/rejections"]  # fmt: skip
NAMES = ["site", "camera", "line", "from", "to", "bucket", "category", "direction", "tz",
         "limit", "token"]  # fmt: skip
ZONES = sorted(available_timezones())[::20]

moments = st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(dt.datetime.isoformat)
values = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.builds(lambda c, n: c * n, st.characters(), st.integers(1, 12_000)),
    st.tuples(moments, st.sampled_from(["", "Z", "+14:00", "-12:00", "\x00"])).map("".join),
    st.sampled_from([*ZONES, "15min", "hour", "day", "pedestrian", "in", "gare", "cam", "door",
                             "\x00", "%00", "Europe/Nowhere", "../etc/passwd", "-1", "0",
                             "9" * 5000, "2026-11-16", "1970-01-01T00:00Z"]),
    st.integers().map(str),
)  # fmt: skip
queries_ = st.lists(st.tuples(st.sampled_from(NAMES) | st.text(max_size=8), values), max_size=5)
paths = st.sampled_from(PATHS) | st.builds(
    lambda s: f"/api/sites/{quote(s, safe='')}/notice", st.text(min_size=1, max_size=40)
)


def test_fuzz_the_api_parameters(engine: Engine) -> None:  # noqa: F811
    store = Store(engine)
    store.add_reports(SITE, [make_report("cam", MONDAY + 60 * k, zone="hall") for k in range(30)],
                      now=MONDAY + 3600)  # fmt: skip
    client = TestClient(create_app(DashboardConfig(timezone="Europe/Paris"), engine))
    examples = EXAMPLES if engine.dialect.name == "sqlite" else max(EXAMPLES // 2, 20)

    @settings(FUZZ, max_examples=examples)
    @given(paths, queries_)
    def answered(path: str, params: list[tuple[str, str]]) -> None:
        assume(len(urlencode(params)) < 60_000)  # the HTTP client's own limit
        response = client.get(path, params=params)
        assert response.status_code in (200, 404, 422), (response.status_code, response.text[:200])

    answered()
