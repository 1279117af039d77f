"""The association and counting rules that make counts survive real tracks: fragments across a
line, a walker hidden behind another, tall boxes near the camera, fast objects at 5 fps.

Detections go through the real stages after the detector (``CameraPipeline.observe``), or
tracks straight into a ``LineCounter`` where the rule is the counter's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from edge.analytics.counting import CountEvent, LineCounter
from edge.analytics.evaluation import thinned
from edge.analytics.pipeline import CameraPipeline
from edge.analytics.track import Tracks
from edge.config import CameraConfig, LineConfig, Settings
from edge.vision.frames import Frame
from tests.conftest import make_detections

Box = tuple[float, float, float, float]
VERTICAL = LineConfig(name="v", start=(320, 0), end=(320, 720))  # in = left to right
HORIZONTAL = LineConfig(name="h", start=(0, 500), end=(1280, 500))  # in = moving up


def pipeline(*lines: LineConfig) -> CameraPipeline:
    camera = CameraConfig(id="cam", location="test", source="test.mp4", lines=list(lines))
    return CameraPipeline(camera, Settings())


def replay(
    lines: Sequence[LineConfig], frames: Sequence[Sequence[Box]], fps: float, cls: int = 0
) -> list[CountEvent]:
    """Detections frame by frame through the pipeline; the passages, then every track forgotten."""
    stages = pipeline(*lines)
    events = []
    for i, boxes in enumerate(frames):
        events += stages.observe(i / fps, make_detections(boxes, cls=cls))[1]
    end = len(frames) / fps
    events += stages.observe(end + 5.0, make_detections([]))[1]  # long after: all forgotten
    assert all(counter.tracked == 0 for counter in stages.lines)
    return events


def tracks(rows: Sequence[tuple[int, Box]]) -> Tracks:
    return Tracks(
        np.array([box for _, box in rows], np.float32).reshape(-1, 4),
        np.array([i for i, _ in rows], np.int64),
        np.zeros(len(rows), np.int16),
        np.full(len(rows), 0.9, np.float32),
    )


def count(line: LineConfig, frames: Sequence[Sequence[tuple[int, Box]]], fps: float) -> list[str]:
    """Tracks frame by frame into one counter; the directions of its passages."""
    counter = LineCounter(line, forget_after_s=1.0)
    events = []
    for i, rows in enumerate(frames):
        events += counter.update(tracks(rows), i / fps)
    events += counter.update(tracks([]), len(frames) / fps + 5.0)
    assert counter.tracked == 0  # nothing about any track is kept once it is gone
    return [e.direction for e in events]


def person(x: float, bottom: float = 400.0, height: float = 160.0) -> Box:
    """A pedestrian box, 0.4 as wide as tall, whose bottom-centre is (x, bottom)."""
    return (x - 0.2 * height, bottom - height, x + 0.2 * height, bottom)


# -- fragments -------------------------------------------------------------------------------


def test_a_track_lost_before_the_line_and_found_after_it_is_one_passage() -> None:
    """Id 1 walks up to the line and is lost; id 2 appears on the other side where id 1 would
    be by then: one passage, not zero (neither track crossed) or two."""
    fps = 10.0
    frames = [[(1, person(200 + 12 * i))] for i in range(9)]  # 200 .. 296, left of 320
    frames += [[] for _ in range(3)]  # lost for 0.3 s: 332 .. 356 would be the positions
    frames += [[(2, person(368 + 12 * i))] for i in range(8)]  # found right of the line
    assert count(VERTICAL, frames, fps) == ["in"]


def test_a_new_track_far_from_where_the_lost_one_would_be_is_not_stitched() -> None:
    """Someone else appearing across the line, a metre away from the lost walker's path,
    does not inherit its side: no passage."""
    fps = 10.0
    frames = [[(1, person(200 + 12 * i))] for i in range(9)]
    frames += [[] for _ in range(3)]
    frames += [[(2, person(368 + 12 * i, bottom=600))] for i in range(8)]  # 200 px lower
    assert count(VERTICAL, frames, fps) == []


def test_a_track_ending_just_past_the_line_counts_its_passage() -> None:
    """Lost for good a few pixels past the line (inside the band): counted when forgotten."""
    frames = [[(1, person(250 + 10 * i))] for i in range(9)]  # 250 .. 330: ends 10 px past
    assert count(VERTICAL, frames, 10.0) == ["in"]


def test_jitter_inside_the_band_counts_at_most_one_side_change() -> None:
    """A track standing on the line with its anchor jittering inside the band (+-12.8 px for
    this 64 px wide box) never settles on either side: nothing while it lasts, and at most
    the one side change between its first and last anchor when it ends."""
    xs = [310, 330, 312, 328, 309, 318, 331, 311]
    assert count(VERTICAL, [[(1, person(x))] for x in xs], 10.0) == []
    assert count(VERTICAL, [[(1, person(x))] for x in [*xs, 321]], 10.0) == ["in"]


# -- tall boxes near the camera --------------------------------------------------------------


def test_a_tall_box_starting_inside_the_band_counts_when_it_crosses() -> None:
    """A walker near the camera (600 px tall) whose track begins 90 px below a horizontal
    line, inside the 0.2 x 600 px band, and walks 300 px up: one passage."""
    frames = [[(1, person(640, bottom=590 - 30 * i, height=600))] for i in range(11)]
    assert count(HORIZONTAL, frames, 10.0) == ["in"]


def test_a_tall_box_that_never_leaves_the_band_counts_nothing() -> None:
    """The same walker standing still 60 px below the line with its feet jittering +-20 px."""
    bottoms = [560, 580, 545, 575, 550, 565, 540, 570]
    frames = [[(1, person(640, bottom=b, height=600))] for b in bottoms]
    assert count(HORIZONTAL, frames, 10.0) == []


# -- occlusion and speed, through the tracker ------------------------------------------------


@pytest.mark.parametrize("fps", [10.0, 5.0])
def test_walker_hidden_behind_another_while_crossing_is_counted_once_each(fps: float) -> None:
    """Two walkers (150 px/s) meet on the line. The one behind is hidden for 0.8 s while it
    crosses and slows down to let the other pass (90 px/s): it reappears 48 px short of where
    its track coasted to, overlapping that prediction by IoU 0.11. Both passages, once each."""
    frames: list[list[Box]] = []
    for i in range(int(4 * fps)):
        t = i / fps
        front_x = 20 + 150 * t
        back_x = (
            620 - 150 * t if t < 1.6 else 380 - 90 * (t - 1.6) if t < 2.4 else 308 - 150 * (t - 2.4)
        )
        boxes = [person(front_x, bottom=420)]
        if not 1.6 <= t < 2.4:
            boxes.append(person(back_x, bottom=400, height=150))
        frames.append(boxes)
    events = replay([VERTICAL], frames, fps)
    assert sorted(e.direction for e in events) == ["in", "out"]


def test_a_fast_car_at_five_fps_is_followed_and_counted() -> None:
    """A car 120 px long at 500 px/s seen at 5 fps: 100 px between detections, consecutive
    boxes overlap with IoU 0.09, below any overlap threshold; motion gating follows it."""
    fps = 5.0
    frames = [[(20 + 100 * i, 300.0, 140 + 100 * i, 360.0)] for i in range(8)]  # x 20 .. 860
    events = replay([VERTICAL], frames, fps, cls=2)
    assert [(e.direction, e.category.value) for e in events] == [("in", "vehicle")]


def test_two_fast_cars_in_opposite_lanes_keep_to_their_lanes() -> None:
    """Motion gating must not swap two fast objects that pass each other between frames."""
    fps = 5.0
    frames = [
        [(20 + 100 * i, 300.0, 140 + 100 * i, 360.0), (860 - 100 * i, 420.0, 980 - 100 * i, 480.0)]
        for i in range(9)
    ]
    events = replay([VERTICAL], frames, fps, cls=2)
    assert sorted(e.direction for e in events) == ["in", "out"]


# -- the detection schedule ------------------------------------------------------------------


def schedule(
    xs: Sequence[float], times: Sequence[float] | None = None, **motion: float | None
) -> list[bool]:
    """A walker at the given anchor x, one frame each (at 25 fps unless ``times`` are given),
    every frame different (so the motion gate always sees a change): which frames the pipeline
    sends to the detector."""
    camera = CameraConfig(id="cam", location="test", source="test.mp4", lines=[VERTICAL])
    stages = CameraPipeline(camera, Settings(motion=motion))
    rng = np.random.default_rng(0)
    detected = []
    for i, x in enumerate(xs):
        t = times[i] if times else i / 25
        image = rng.integers(0, 255, (72, 128, 3), np.uint8)
        go = stages.needs_detection(Frame("cam", i, t, image))
        detected.append(go)
        if go:
            stages.process(t, make_detections([person(x, height=100)]))
        else:
            stages.unchanged(t)
    return detected


def test_far_from_any_line_the_detector_runs_at_the_idle_rate() -> None:
    """Two seconds of a walker 250 px from the line at 25 fps: detected 5 times a second."""
    detected = schedule([20 + 10 * i / 25 for i in range(50)])
    assert 9 <= sum(detected) <= 12  # 10 at 5 fps, plus the confirming second detection


def test_a_track_near_a_line_is_detected_at_the_busy_rate() -> None:
    """The same walker 40 px from the line (less than its 100 px box height): 10 times a
    second (every third frame at 25 fps) once its track is confirmed, on frame 1 (the
    confirming detection comes at the full rate); every frame with ``busy_fps`` null."""
    xs = [280 + 10 * i / 25 for i in range(50)]
    detected = schedule(xs)
    assert [i for i, d in enumerate(detected) if d] == [0, 1, *thinned(50, 25, 10)[1:].tolist()]
    assert all(schedule(xs, busy_fps=None))


def test_a_new_track_is_confirmed_at_the_full_rate() -> None:
    """A new track must be matched on consecutive detections to be confirmed (``min_hits``):
    until it is, every changed frame goes to the detector, so a track first seen on a line is
    confirmed before it has crossed it (and the crossing counted, as with every frame detected).
    With ``min_hits`` 3, the first three frames; then the busy rate: frame 3 (0.12 s) opens the
    next 0.1 s slot, frame 4 shares it."""
    xs = [280 + 10 * i / 25 for i in range(10)]
    camera = CameraConfig(id="cam", location="test", source="test.mp4", lines=[VERTICAL])
    stages = CameraPipeline(camera, Settings(tracker={"min_hits": 3}))
    rng = np.random.default_rng(0)
    detected = []
    for i, x in enumerate(xs):
        image = rng.integers(0, 255, (72, 128, 3), np.uint8)
        detected.append(stages.needs_detection(Frame("cam", i, i / 25, image)))
        if detected[-1]:
            stages.process(i / 25, make_detections([person(x, height=100)]))
        else:
            stages.unchanged(i / 25)
    assert detected[:5] == [True, True, True, True, False]


def test_a_jittery_camera_at_the_busy_rate_is_detected_on_every_frame() -> None:
    """Frames 0.08 then 0.12 s apart (25 fps thinned to 10): each falls in its own 0.1 s slot,
    so every one is detected (a minimum spacing of 0.1 s would skip every other)."""
    xs = [280 + i for i in range(20)]
    times = [i * 0.1 + (0.02 if i % 2 else 0.0) for i in range(20)]
    assert all(schedule(xs, times=times))


def test_the_idle_rate_follows_a_track_into_the_lines_reach() -> None:
    """A walker coming from far away at 200 px/s: sparse while far, at the busy rate once near."""
    xs = [0 + 200 * i / 25 for i in range(40)]  # 0 .. 312
    for busy, most_frames_apart in ((10.0, 3), (None, 1)):
        detected = schedule(xs, busy_fps=busy)
        far = [d for x, d in zip(xs, detected, strict=True) if x < 100]
        near = [i for i, (x, d) in enumerate(zip(xs, detected, strict=True)) if x > 200 and d]
        assert sum(far) < len(far) / 2
        assert max(np.diff(near)) == most_frames_apart


def test_a_busy_rate_below_the_idle_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="busy_fps"):
        Settings(motion={"idle_fps": 5, "busy_fps": 2})


def test_null_rates_detect_every_changed_frame() -> None:
    camera = CameraConfig(id="cam", location="test", source="test.mp4", lines=[VERTICAL])
    stages = CameraPipeline(camera, Settings(motion={"idle_fps": None, "busy_fps": None}))
    rng = np.random.default_rng(0)
    for i in range(20):
        image = rng.integers(0, 255, (72, 128, 3), np.uint8)
        assert stages.needs_detection(Frame("cam", i, i / 25, image))
        stages.process(i / 25, make_detections([person(20 + i)]))
