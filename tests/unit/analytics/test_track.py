"""Tracker lifecycle: birth, identity, occlusion, death, id hygiene, robustness."""

from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.detections import Detections
from edge.analytics.track import ByteTracker, TrackerConfig, Tracks
from tests.conftest import make_detections

Box = tuple[float, float, float, float]
PERSON, BICYCLE, CAR, TRUCK = 0, 1, 2, 7
FPS = 25.0


def person_at(x: float, y: float = 100.0) -> Box:
    """A 40 x 100 px pedestrian box whose top-left corner is (x, y)."""
    return (x, y, x + 40.0, y + 100.0)


def walk(
    tracker: ByteTracker,
    steps: int,
    *,
    x0: float = 0.0,
    speed: float = 50.0,
    fps: float = FPS,
    t0: float = 0.0,
    conf: float = 0.9,
) -> list[Tracks]:
    """One pedestrian walking right at ``speed`` px/s, one detection per frame."""
    return [
        tracker.update(make_detections([person_at(x0 + speed * i / fps)], conf), t0 + i / fps)
        for i in range(steps)
    ]


def ids(tracks: Tracks) -> list[int]:
    return [int(i) for i in tracks.track_id]


def test_birth_only_after_min_hits() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=3))
    outputs = walk(tracker, 4)
    assert [len(t) for t in outputs] == [0, 0, 1, 1]
    assert tracker.track_count == 1


def test_min_hits_one_outputs_on_first_frame() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    out = tracker.update(make_detections([person_at(0)]), 0.0)
    assert ids(out) == [1]


def test_output_is_the_detection_box_with_its_class_and_confidence() -> None:
    tracker = ByteTracker(TrackerConfig(smooth_boxes=False))
    walk(tracker, 5, conf=0.8)
    det = make_detections([person_at(20.0)], 0.77)
    out = tracker.update(det, 5 / FPS)
    np.testing.assert_array_equal(out.xyxy, det.xyxy)
    assert out.confidence[0] == pytest.approx(0.77)
    assert out.class_id.tolist() == [PERSON]
    assert out.xyxy.dtype == np.float32
    assert out.track_id.dtype == np.int64
    assert out.class_id.dtype == np.int16
    assert not out.xyxy.flags.writeable


def test_smoothed_output_damps_a_jump_of_the_detection() -> None:
    """With ``smooth_boxes`` the output is the filter's box: a detection 12 px off the steady
    walk moves the output by less than that, toward the detection."""
    tracker = ByteTracker()
    walk(tracker, 10, speed=50.0)
    expected = 50.0 * 10 / FPS
    out = tracker.update(make_detections([person_at(expected + 12.0)]), 10 / FPS)
    assert expected < float(out.xyxy[0, 0]) < expected + 12.0


def test_id_is_stable_along_a_straight_walk() -> None:
    tracker = ByteTracker()
    outputs = walk(tracker, 100, speed=120.0)
    assert {i for t in outputs[1:] for i in ids(t)} == {1}
    assert all(len(t) == 1 for t in outputs[1:])


def test_occlusion_coasts_and_recovers_with_the_same_id() -> None:
    tracker = ByteTracker(TrackerConfig(lost_seconds=1.0))
    speed = 100.0
    walk(tracker, 10, speed=speed)
    for i in range(10, 20):  # 0.4 s without a detection
        assert len(tracker.update(Detections.empty(), i / FPS)) == 0
    assert tracker.track_count == 1
    out = tracker.update(make_detections([person_at(speed * 20 / FPS)]), 20 / FPS)
    assert ids(out) == [1]


def test_low_confidence_detections_keep_a_track_but_never_start_one() -> None:
    tracker = ByteTracker()
    walk(tracker, 5)
    outputs = walk(tracker, 10, x0=10.0, t0=5 / FPS, conf=0.3)
    assert all(ids(t) == [1] for t in outputs)

    fresh = ByteTracker()
    outputs = walk(fresh, 10, conf=0.3)
    assert all(len(t) == 0 for t in outputs)
    assert fresh.track_count == 0


def test_death_after_lost_seconds_and_ids_never_reused() -> None:
    tracker = ByteTracker(TrackerConfig(lost_seconds=0.5))
    walk(tracker, 5)
    tracker.update(Detections.empty(), 0.5)
    assert tracker.track_count == 1  # within lost_seconds of the last match at 0.16 s
    tracker.update(Detections.empty(), 0.7)
    assert tracker.track_count == 0
    # The same place again: a new object, a new id.
    outputs = walk(tracker, 5, t0=1.0)
    assert ids(outputs[-1]) == [2]


def test_reset_drops_tracks_and_keeps_counting_ids() -> None:
    tracker = ByteTracker()
    walk(tracker, 5)
    tracker.reset()
    assert tracker.track_count == 0
    # After a reset the clock restarts too: an earlier timestamp is fine.
    outputs = walk(tracker, 5)
    assert ids(outputs[-1]) == [2]


def test_two_instances_have_independent_id_counters() -> None:
    first, second = ByteTracker(), ByteTracker()
    walk(first, 3)
    walk(first, 3, x0=500.0, t0=10.0)
    outputs = walk(second, 3)
    assert ids(outputs[-1]) == [1]


def test_two_pedestrians_crossing_paths_keep_their_ids() -> None:
    tracker = ByteTracker()
    history: dict[int, list[float]] = {}
    for i in range(60):
        t = i / FPS
        left_to_right = person_at(100 + 150 * t, 100)
        right_to_left = person_at(400 - 150 * t, 110)
        out = tracker.update(make_detections([left_to_right, right_to_left]), t)
        for track_id, box in zip(out.track_id, out.xyxy, strict=True):
            history.setdefault(int(track_id), []).append(float(box[1]))
    assert set(history) == {1, 2}
    # Each id stays on its own row (y 100 or 110) all the way through the crossing.
    assert sorted({y for ys in history.values() for y in ys}) == [100.0, 110.0]
    assert all(len(set(ys)) == 1 for ys in history.values())


def test_crossing_with_one_hidden_keeps_ids() -> None:
    """The front pedestrian hides the back one while they overlap; both ids survive."""
    tracker = ByteTracker()
    rows: dict[int, set[float]] = {}
    hidden_frames = 0
    for i in range(60):
        t = i / FPS
        front = person_at(100 + 150 * t, 100)
        back = person_at(400 - 150 * t, 104)
        boxes = [front]
        if abs(front[0] - back[0]) > 30:  # the back one is detected only when not behind
            boxes.append(back)
        else:
            hidden_frames += 1
        out = tracker.update(make_detections(boxes), t)
        for track_id, box in zip(out.track_id, out.xyxy, strict=True):
            rows.setdefault(int(track_id), set()).add(float(box[1]))
    assert hidden_frames >= 4
    assert rows == {1: {100.0}, 2: {104.0}}


def test_five_fps_walk_with_large_steps_stays_one_id() -> None:
    tracker = ByteTracker()
    # 100 px/s (a brisk walk for a 100 px tall person) at 5 fps: 20 px steps on a 40 px wide
    # box, IoU 0.33 between consecutive boxes; later steps are matched against the prediction.
    outputs = walk(tracker, 30, speed=100.0, fps=5.0)
    assert {i for t in outputs[1:] for i in ids(t)} == {1}
    assert all(len(t) == 1 for t in outputs[1:])


def test_five_fps_walk_with_jitter_relies_on_the_prediction() -> None:
    """Steps alternate 14 and 34 px (120 px/s plus +-5 px box jitter): a 34 px step leaves raw
    overlap IoU 0.08, below match_iou; the predicted box still overlaps the detection well."""
    tracker = ByteTracker()
    outputs = []
    for i in range(30):
        x = 24.0 * i + (5.0 if i % 2 == 0 else -5.0)
        outputs.append(tracker.update(make_detections([person_at(x)]), i / 5.0))
    assert {i for t in outputs[1:] for i in ids(t)} == {1}
    assert all(len(t) == 1 for t in outputs[1:])


def test_irregular_frame_spacing_stays_one_id() -> None:
    tracker = ByteTracker()
    rng = np.random.default_rng(7)
    times = np.cumsum(rng.uniform(0.02, 0.25, 40))
    for t in times:
        out = tracker.update(make_detections([person_at(100.0 * t)]), float(t))
    assert ids(out) == [1]
    assert tracker.track_count == 1


@pytest.mark.parametrize(
    "bad",
    [
        (np.nan, 100, 40, 200),
        (0, 100, np.inf, 200),
        (10, 100, 10, 200),  # zero width
        (10, 200, 50, 100),  # inverted
    ],
)
def test_nan_and_degenerate_boxes_are_ignored(bad: Box) -> None:
    tracker = ByteTracker()
    for i in range(5):
        x = 10.0 * i
        out = tracker.update(make_detections([person_at(x), bad]), i / FPS)
    assert ids(out) == [1]
    assert tracker.track_count == 1


def test_non_finite_confidence_and_unknown_classes_are_ignored() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    boxes = [person_at(0), person_at(200), person_at(400)]
    out = tracker.update(make_detections(boxes, [np.nan, 0.9, 0.9], [PERSON, PERSON, 15]), 0.0)
    np.testing.assert_array_equal(out.xyxy, [person_at(200)])


def test_empty_frames_are_fine() -> None:
    tracker = ByteTracker()
    for i in range(10):
        assert len(tracker.update(Detections.empty(), i / FPS)) == 0
    assert ids(walk(tracker, 3, t0=1.0)[-1]) == [1]


@pytest.mark.parametrize("timestamps", [[1.0, 1.0, 1.0], [2.0, 1.0, 0.5], [0.0, np.nan, 0.1]])
def test_non_increasing_timestamps_do_not_crash(timestamps: list[float]) -> None:
    tracker = ByteTracker()
    for t in timestamps:
        out = tracker.update(make_detections([person_at(0)]), t)
    assert ids(out) == [1]


def test_input_detections_are_not_mutated() -> None:
    det = make_detections([person_at(0), (np.nan, 0, 1, 1)], [0.9, 0.9])
    before = (det.xyxy.copy(), det.confidence.copy(), det.class_id.copy())
    tracker = ByteTracker()
    tracker.update(det, 0.0)
    tracker.update(det, 0.04)
    np.testing.assert_array_equal(det.xyxy, before[0])
    np.testing.assert_array_equal(det.confidence, before[1])
    np.testing.assert_array_equal(det.class_id, before[2])


def test_a_person_is_not_associated_to_a_bicycle_track() -> None:
    tracker = ByteTracker()
    box = person_at(100)
    for i in range(5):
        out = tracker.update(make_detections([box], cls=BICYCLE), i / FPS)
    assert ids(out) == [1]
    # The bicycle vanishes and a person appears on exactly the same box.
    out = tracker.update(make_detections([box], cls=PERSON), 5 / FPS)
    assert len(out) == 0
    out = tracker.update(make_detections([box], cls=PERSON), 6 / FPS)
    assert ids(out) == [2]
    assert out.class_id.tolist() == [PERSON]


def test_rider_and_bicycle_boxes_are_two_tracks() -> None:
    tracker = ByteTracker()
    for i in range(5):
        x = 100.0 + 8 * i
        rider = (x, 100.0, x + 40, 200.0)
        bike = (x - 5, 150.0, x + 45, 210.0)
        out = tracker.update(make_detections([rider, bike], cls=[PERSON, BICYCLE]), i / FPS)
    assert sorted(zip(ids(out), out.class_id.tolist(), strict=True)) == [(1, PERSON), (2, BICYCLE)]


def test_vehicle_label_flicker_stays_one_track_with_the_majority_class() -> None:
    tracker = ByteTracker()
    labels = [CAR, TRUCK, CAR, CAR, TRUCK, CAR, CAR]
    for i, label in enumerate(labels):
        x = 10.0 * i
        out = tracker.update(make_detections([(x, 0, x + 120, 60)], cls=label), i / FPS)
    assert ids(out) == [1]
    assert out.class_id.tolist() == [CAR]


def test_car_and_truck_boxes_on_one_vehicle_start_one_track() -> None:
    """Per-class NMS leaves a car and a truck box on the same vehicle: one track, not two."""
    tracker = ByteTracker()
    for i in range(5):
        x = 10.0 * i
        boxes = [(x, 0.0, x + 120, 60.0), (x + 2, 1.0, x + 121, 60.0)]
        out = tracker.update(make_detections(boxes, [0.8, 0.7], [CAR, TRUCK]), i / FPS)
    assert ids(out) == [1]
    assert tracker.track_count == 1


def test_many_objects_each_keep_one_id() -> None:
    tracker = ByteTracker()
    seen: set[int] = set()
    for i in range(50):
        t = i / FPS
        boxes = [person_at(100 * k + 30 * t, 50 * (k % 3)) for k in range(20)]
        out = tracker.update(make_detections(boxes), t)
        seen.update(ids(out))
    assert len(out) == 20
    assert seen == set(range(1, 21))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"low_confidence": 0.6, "high_confidence": 0.5},
        {"new_track_confidence": 0.3},  # below high_confidence
        {"match_iou": 0.0},
        {"low_match_iou": 1.5},
        {"lost_seconds": -1.0},
        {"min_hits": 0},
    ],
)
def test_invalid_config_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrackerConfig(**kwargs)  # type: ignore[arg-type]


def test_tracks_value_object() -> None:
    tracks = Tracks.empty()
    assert len(tracks) == 0
    with pytest.raises(ValueError, match="track_id"):
        Tracks(
            np.zeros((1, 4), np.float32),
            np.zeros(1, np.int32),  # wrong dtype
            np.zeros(1, np.int16),
            np.zeros(1, np.float32),
        )
