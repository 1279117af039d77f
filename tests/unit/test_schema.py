"""The wire schema (``edge.schema``): written once, importable without the detector runtime."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edge.analytics.counting import DIRECTIONS as COUNTED_DIRECTIONS
from edge.analytics.detections import CATEGORIES, Category
from edge.schema import (
    CATEGORY_NAMES,
    DIRECTIONS,
    NAME_RE,
    ParsedTopic,
    Topics,
    parse_topic,
)

LIGHT_IMPORT = (
    "import edge.dashboard.store, edge.dashboard.ingest, edge.schema, sys; "
    "heavy = sorted({'onnxruntime', 'cv2'} & set(sys.modules)); "
    "assert not heavy, heavy"
)


def test_the_dashboard_and_the_schema_import_without_the_detector_runtime() -> None:
    """Regression: ``edge.dashboard.store`` imported ``edge.gate`` for the message types, which
    pulled ONNX Runtime (via ``edge.detect.runtime``), and ``edge.config`` pulled OpenCV (via
    ``edge.vision.motion``), so the dashboard needed the counting box's runtime installed."""
    done = subprocess.run(
        [sys.executable, "-c", LIGHT_IMPORT], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_the_box_counts_under_the_names_the_schema_publishes() -> None:
    assert tuple(c.value for c in CATEGORIES) == CATEGORY_NAMES == ("pedestrian", "bike", "vehicle")
    assert tuple(Category) == CATEGORIES
    assert COUNTED_DIRECTIONS == DIRECTIONS == ("in", "out")


def test_topics_and_parse_topic_agree() -> None:
    topics = Topics("city/edge", "north-gate")
    assert parse_topic(topics.counts("cam-1"), "city/edge") == ("north-gate", "cam-1", "counts")
    assert parse_topic(topics.camera_status("cam-1"), "city/edge") == ParsedTopic(
        "north-gate", "cam-1", "status"
    )
    for kind in ("status", "stats", "notice", "audit"):
        assert parse_topic(getattr(topics, kind), "city/edge") == ("north-gate", None, kind)


def test_subscription_filters_cover_every_topic_of_a_site() -> None:
    assert Topics("edge", "+").filters() == (
        "edge/+/+/counts",
        "edge/+/+/status",
        "edge/+/status",
        "edge/+/stats",
        "edge/+/notice",
        "edge/+/audit",
    )


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("other/s/c/counts", "topic outside the prefix"),
        ("edge/s/c/stats", "unknown topic"),
        ("edge/s/counts", "unknown topic"),
        ("edge/s/c/d/counts", "unknown topic"),
        ("edge/s/c/", "unknown topic"),
        ("edge/-s/c/counts", "not a name"),
        ("edge/s/c\n/counts", "not a name"),
        ("edge//status", "not a name"),
    ],
)
def test_parse_topic_refuses_what_no_box_publishes(topic: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_topic(topic, "edge")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("cam-1", True), ("a_b-c", True), ("x" * 32, True), ("x" * 33, False), ("-a", False),
     ("a b", False), ("a\n", False), ("", False), ("a.b", False), ("Cam1", False),
     ("caf\u00e9", False)],
)  # fmt: skip
def test_name_pattern(name: str, ok: bool) -> None:
    assert bool(NAME_RE.fullmatch(name)) is ok
