"""Line counters fed synthetic tracks, zone occupancy, and the window aggregator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from edge.analytics.aggregate import WindowAggregator
from edge.analytics.counting import CountEvent, LineCounter, zone_occupancy
from edge.analytics.detections import Category
from edge.analytics.track import Tracks
from edge.config import LineConfig, ZoneConfig

VERTICAL = LineConfig(name="v", start=(240, 0), end=(240, 360))  # in = left-to-right
HORIZONTAL = LineConfig(name="h", start=(0, 200), end=(640, 200))  # in = moving up


def make_tracks(rows: Sequence[tuple[int, float, float]], cls: int = 0, size: float = 40) -> Tracks:
    """Tracks from (id, anchor x, anchor y): boxes of ``size`` whose bottom-centre is the anchor."""
    xyxy = np.array([[x - size / 4, y - size, x + size / 4, y] for _, x, y in rows], np.float32)
    return Tracks(
        xyxy.reshape(-1, 4),
        np.array([i for i, _, _ in rows], np.int64),
        np.full(len(rows), cls, np.int16),
        np.full(len(rows), 0.9, np.float32),
    )


def run(
    line: LineConfig, paths: dict[int, Sequence[tuple[float, float]]], cls: int = 0
) -> list[CountEvent]:
    """Feed one anchor per track per frame (None = not seen that frame)."""
    counter = LineCounter(line, forget_after_s=10)
    events = []
    frames = max(len(p) for p in paths.values())
    for f in range(frames):
        rows = [(i, *p[f]) for i, p in paths.items() if f < len(p) and p[f] is not None]
        events += counter.update(make_tracks(rows, cls), f / 25)
    return events


def directions(events: list[CountEvent]) -> list[str]:
    return [e.direction for e in events]


def walk(
    start: tuple[float, float], end: tuple[float, float], steps: int
) -> list[tuple[float, float]]:
    return [tuple(np.array(start) + (np.array(end) - start) * t) for t in np.linspace(0, 1, steps)]


@pytest.mark.parametrize(
    ("line", "start", "end", "expected"),
    [
        (VERTICAL, (100, 200), (400, 200), ["in"]),  # left to right
        (VERTICAL, (400, 200), (100, 200), ["out"]),
        (HORIZONTAL, (300, 300), (300, 100), ["in"]),  # moving up the image
        (HORIZONTAL, (300, 100), (300, 300), ["out"]),
        (VERTICAL, (100, 400), (400, 400), []),  # passes below the segment's end B=(240, 360)
        (HORIZONTAL, (700, 300), (700, 100), []),  # beyond the end at x=640
        (VERTICAL, (100, 200), (200, 200), []),  # approaches but never crosses
    ],
)
def test_straight_walks(
    line: LineConfig, start: tuple[float, float], end: tuple[float, float], expected: list[str]
) -> None:
    assert directions(run(line, {1: walk(start, end, 30)})) == expected


def test_event_carries_line_category_and_time_but_no_identity() -> None:
    (event,) = run(VERTICAL, {7: walk((100, 200), (400, 200), 30)}, cls=2)
    assert event.line == "v"
    assert event.category is Category.VEHICLE
    assert 0 < event.timestamp < 30 / 25
    assert not hasattr(event, "track_id")


def test_jitter_on_the_line_never_counts() -> None:
    rng = np.random.default_rng(3)
    # approach, then 200 frames of +-3 px jitter astride the line, then back where it came from
    path = walk((150, 200), (240, 200), 10)
    path += [(240 + rng.uniform(-3, 3), 200) for _ in range(200)]
    path += walk((240, 200), (150, 200), 10)
    assert run(VERTICAL, {1: path}) == []


def test_jitter_then_a_real_crossing_counts_once() -> None:
    rng = np.random.default_rng(4)
    path = walk((150, 200), (240, 200), 10)
    path += [(240 + rng.uniform(-3, 3), 200) for _ in range(100)]
    path += walk((240, 200), (330, 200), 10)
    assert directions(run(VERTICAL, {1: path})) == ["in"]


def test_walking_back_later_counts_again() -> None:
    path = walk((100, 200), (400, 200), 20) + walk((400, 200), (100, 200), 20)
    path += walk((100, 200), (400, 200), 20)
    assert directions(run(VERTICAL, {1: path})) == ["in", "out", "in"]


def test_fast_object_jumping_over_the_line_is_counted() -> None:
    # Two observations only, 300 px apart: seen left of the line, then right of it.
    assert directions(run(VERTICAL, {1: [(100, 200), (100, 200), (400, 200)]})) == ["in"]


def test_object_missed_for_frames_while_crossing_is_counted() -> None:
    path: list[tuple[float, float] | None] = list(walk((100, 200), (400, 200), 30))
    for f in range(10, 20):  # occluded right where it crosses
        path[f] = None
    assert directions(run(VERTICAL, {1: path})) == ["in"]  # type: ignore[dict-item]


def test_objects_crossing_together_each_count() -> None:
    paths = {i: walk((100, 50 + 40 * i), (400, 50 + 40 * i), 25) for i in range(1, 7)}
    paths[9] = walk((400, 330), (100, 330), 25)
    events = run(VERTICAL, paths)
    assert sorted(directions(events)) == ["in"] * 6 + ["out"]


def test_a_track_first_seen_on_the_line_is_counted_once_it_settles_only_if_it_crossed() -> None:
    # Born on the line, leaves to the right: it was never settled on the left, so no count.
    assert run(VERTICAL, {1: walk((240, 200), (400, 200), 20)}) == []


def test_state_is_forgotten_when_tracks_go() -> None:
    counter = LineCounter(VERTICAL, forget_after_s=1.0)
    for f in range(500):  # a new object every frame, each seen once
        counter.update(make_tracks([(f, 100, 200)]), f / 25)
    assert counter.tracked <= 26


def test_zone_occupancy_by_category_uses_the_anchor() -> None:
    zone = ZoneConfig(name="z", points=[(0, 0), (100, 0), (100, 100), (0, 100)])
    people = make_tracks([(1, 50, 50), (2, 60, 90), (3, 150, 50)])
    assert zone_occupancy(people, zone).tolist() == [2, 0, 0]
    cars = make_tracks([(4, 50, 50)], cls=7)
    assert zone_occupancy(cars, zone).tolist() == [0, 0, 1]
    assert zone_occupancy(Tracks.empty(), zone).tolist() == [0, 0, 0]


def occupancy(n: int) -> dict[str, np.ndarray]:
    return {"z": np.array([n, 0, 0], np.int64)}


def test_windows_are_aligned_and_the_last_one_is_partial() -> None:
    agg = WindowAggregator("cam", ["v"], ["z"], seconds=10)
    reports = []
    for f in range(25 * 25):  # 25 s at 25 fps
        t = f / 25
        events = [CountEvent("v", "in", Category.PEDESTRIAN, t)] if f % 50 == 0 else []
        reports += agg.add(t, events, occupancy(f % 3))
    reports += agg.close()
    assert [(r.start, r.end, r.partial) for r in reports] == [
        (0, 10, False),
        (10, 20, False),
        (20, 30, True),
    ]
    assert [r.frames for r in reports] == [250, 250, 125]
    assert [r.lines["v"]["in"][Category.PEDESTRIAN] for r in reports] == [5, 5, 3]
    assert reports[0].lines["v"]["out"] == dict.fromkeys(Category, 0)
    assert reports[0].zones["z"].max[Category.PEDESTRIAN] == 2
    assert reports[0].zones["z"].mean[Category.PEDESTRIAN] == pytest.approx(1.0, abs=0.01)
    assert reports[2].observed_s == pytest.approx(5.0)


def test_an_event_on_a_window_boundary_goes_to_the_window_it_starts() -> None:
    agg = WindowAggregator("cam", ["v"], [], seconds=60)
    agg.add(59.96, [CountEvent("v", "out", Category.BIKE, 59.96)], {})
    (first,) = agg.add(60.0, [CountEvent("v", "out", Category.BIKE, 60.0)], {})
    (second,) = agg.close()
    assert first.end == 60 and first.lines["v"]["out"][Category.BIKE] == 1
    assert second.start == 60 and second.lines["v"]["out"][Category.BIKE] == 1


def test_a_window_joined_mid_way_is_partial_and_a_full_clip_window_is_not() -> None:
    agg = WindowAggregator("cam", [], [], seconds=10)
    for f in range(125, 250):  # starts at 5 s
        agg.add(f / 25, [], {})
    (report,) = agg.close()
    assert report.partial
    agg = WindowAggregator("cam", [], [], seconds=10)
    for f in range(250):  # exactly one full window
        agg.add(f / 25, [], {})
    (report,) = agg.close()
    assert not report.partial


def test_report_json_has_no_identity_fields() -> None:
    agg = WindowAggregator("cam", ["v"], ["z"], seconds=60)
    agg.add(0.0, [CountEvent("v", "in", Category.VEHICLE, 0.0)], occupancy(1))
    (report,) = agg.close()
    doc = report.to_json()
    assert set(doc) == {
        "camera",
        "start",
        "end",
        "frames",
        "observed_s",
        "partial",
        "lines",
        "zones",
    }
    assert doc["lines"]["v"]["in"] == {"pedestrian": 0, "bike": 0, "vehicle": 1}
    assert doc["zones"]["z"]["pedestrian"] == {"mean": 1.0, "max": 1}
