"""Window state taken out and put back: a split run adds up to the uninterrupted one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edge.analytics.aggregate import CountReport, WindowAggregator, WindowState
from edge.analytics.counting import CountEvent
from edge.analytics.detections import Category

CATS = list(Category)


def feed(agg: WindowAggregator, times: list[float]) -> list[CountReport]:
    """An event every 7th frame, alternating direction and category; zone occupancy cycling."""
    out = []
    for t in times:
        i = round(t * 10)
        events = [CountEvent("a", ("in", "out")[i % 2], CATS[i % 3], t)] if i % 7 == 0 else []
        occupancy = {z: np.array([i % 4, i % 2, 0], np.int64) for z in agg.zone_names}
        out += agg.add(t, events, occupancy)
    return out


@pytest.mark.parametrize(("seconds", "split"), [(60.0, 13.0), (120.0, 119.5), (300.0, 0.2)])
def test_a_window_split_across_runs_adds_up(seconds: float, split: float) -> None:
    base = 1_000_000 * seconds
    times = [base + i / 10 for i in range(int(seconds * 10) + 5)]
    whole = feed(WindowAggregator("c", ["a"], ["z"], seconds), times)[0]
    first = WindowAggregator("c", ["a"], ["z"], seconds)
    feed(first, [t for t in times if t < base + split])
    state = first.snapshot()
    assert state is not None
    restored = WindowState.from_json(json.loads(json.dumps(state.to_json())))  # via disk
    second = WindowAggregator("c", ["a"], ["z"], seconds)
    assert second.fits(restored)
    second.resume(restored)
    (report,) = feed(second, [t for t in times if t >= base + split])
    assert (report.lines, report.zones, report.frames) == (whole.lines, whole.zones, whole.frames)
    # The time between the runs is a gap, not watched, even when it is short.
    assert report.observed_s == pytest.approx(whole.observed_s - 0.1, abs=1e-6)


def test_a_window_over_is_closed_under_its_own_parameters() -> None:
    agg = WindowAggregator("c", ["a", "b"], [], 120.0)
    feed(agg, [1200.0 + i / 10 for i in range(300)])
    state = agg.snapshot()
    assert state is not None
    assert not WindowAggregator("c", ["a", "b"], [], 60.0).fits(state)
    assert not WindowAggregator("c", ["a"], [], 120.0).fits(state)
    report = WindowAggregator.report_of("renamed", state)
    assert (report.camera_id, report.start, report.end, report.partial) == (
        "renamed", 1200.0, 1320.0, True,
    )  # fmt: skip
    assert report.frames == 300
