"""Rider association: cyclists and motorcyclists end up as one vehicle row, pedestrians stay."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from edge.analytics.riders import RiderAssociation, RiderConfig, riding_fit
from edge.analytics.track import Tracks

Box = tuple[float, float, float, float]
Row = tuple[int, int, Box]  # track id, COCO class, xyxy
PERSON, BICYCLE, CAR, MOTORCYCLE, BUS, TRUCK = 0, 1, 2, 3, 5, 7
MIN_FRAMES = RiderConfig().min_frames
RELEASE_FRAMES = RiderConfig().release_frames


def make_tracks(rows: Sequence[Row], conf: float = 0.9) -> Tracks:
    """Tracks from (id, class, box) rows, ordered by id as the tracker outputs them."""
    ordered = sorted(rows)
    n = len(ordered)
    return Tracks(
        np.array([box for _, _, box in ordered], np.float32).reshape(n, 4),
        np.array([i for i, _, _ in ordered], np.int64),
        np.array([c for _, c, _ in ordered], np.int16),
        np.full(n, conf, np.float32),
    )


def bike_at(x: float) -> Box:
    """A 100 x 60 px bicycle box (side-on), top-left corner at (x, 200)."""
    return (x, 200.0, x + 100.0, 260.0)


def rider_at(x: float) -> Box:
    """A 50 x 110 px person box sitting on ``bike_at(x)``: feet at y 240, inside the bike."""
    return (x + 25.0, 130.0, x + 75.0, 240.0)


def rows_of(tracks: Tracks) -> list[tuple[int, int]]:
    return list(zip(tracks.track_id.tolist(), tracks.class_id.tolist(), strict=True))


def ride(
    assoc: RiderAssociation, frames: int, *, x0: float = 0.0, cls: int = BICYCLE
) -> list[Tracks]:
    """Person 1 riding vehicle 2 to the right at 10 px per frame."""
    return [
        assoc.update(
            make_tracks([(1, PERSON, rider_at(x0 + 10 * i)), (2, cls, bike_at(x0 + 10 * i))])
        )
        for i in range(frames)
    ]


def test_cyclist_becomes_one_bike_after_the_evidence_frames() -> None:
    assoc = RiderAssociation()
    outputs = ride(assoc, MIN_FRAMES + 5)
    for out in outputs[: MIN_FRAMES - 1]:
        assert rows_of(out) == [(1, PERSON), (2, BICYCLE)]
    for out in outputs[MIN_FRAMES - 1 :]:
        assert rows_of(out) == [(2, BICYCLE)]
    np.testing.assert_array_equal(outputs[-1].xyxy, [bike_at(10 * (MIN_FRAMES + 4))])


def test_motorcycle_with_two_riders_is_one_vehicle() -> None:
    assoc = RiderAssociation()
    outputs = []
    for i in range(MIN_FRAMES + 3):
        x = 10.0 * i
        moto = (x, 200.0, x + 120.0, 270.0)
        driver = (x + 50.0, 120.0, x + 100.0, 250.0)
        passenger = (x + 15.0, 125.0, x + 65.0, 255.0)
        tracks = make_tracks([(3, PERSON, driver), (4, MOTORCYCLE, moto), (7, PERSON, passenger)])
        outputs.append(assoc.update(tracks))
    assert rows_of(outputs[0]) == [(3, PERSON), (4, MOTORCYCLE), (7, PERSON)]
    assert rows_of(outputs[-1]) == [(4, MOTORCYCLE)]

    # Both riders stand in for the missed motorcycle as one row: its box rebuilt from theirs.
    out = assoc.update(
        make_tracks(
            [(3, PERSON, (100.0, 120.0, 150.0, 250.0)), (7, PERSON, (65.0, 125.0, 115.0, 255.0))]
        )
    )
    assert rows_of(out) == [(4, MOTORCYCLE)]
    np.testing.assert_allclose(out.xyxy, [(50.0, 200.0, 170.0, 270.0)], atol=1e-3)


@pytest.mark.parametrize("overlapping", [[3], [3, 4], [2, 4], [1, 3, 5, 7]])
def test_pedestrian_walking_past_a_bicycle_briefly_stays_a_pedestrian(
    overlapping: list[int],
) -> None:
    """The person fits the parked bicycle only in the listed frames (one or two, or every other
    frame) and is well away from it in the others."""
    assoc = RiderAssociation()
    for i in range(9):
        person = rider_at(300.0) if i in overlapping else rider_at(300.0 + 200.0 * (i - 4.5))
        out = assoc.update(make_tracks([(1, PERSON, person), (2, BICYCLE, bike_at(300.0))]))
        assert rows_of(out) == [(1, PERSON), (2, BICYCLE)], f"frame {i}"
    assert assoc.pair_count == 0


def test_missing_bicycle_is_stood_in_for_by_its_rider() -> None:
    """The stand-in box is the bicycle's, rebuilt from the rider's: the ground anchor (bottom
    centre) must not jump up to the rider's feet, which could fake a line crossing."""
    assoc = RiderAssociation()
    ride(assoc, MIN_FRAMES + 2)
    tracks = make_tracks([(1, PERSON, rider_at(500.0)), (9, PERSON, rider_at(800.0))], conf=0.7)
    out = assoc.update(tracks)
    assert rows_of(out) == [(2, BICYCLE), (9, PERSON)]
    np.testing.assert_allclose(out.xyxy[0], bike_at(500.0), atol=1e-3)
    assert out.confidence[0] == pytest.approx(0.7)
    # The bicycle is detected again: back to its own box.
    out = assoc.update(make_tracks([(1, PERSON, rider_at(510.0)), (2, BICYCLE, bike_at(510.0))]))
    assert rows_of(out) == [(2, BICYCLE)]
    np.testing.assert_array_equal(out.xyxy, [bike_at(510.0)])


@pytest.mark.parametrize(
    "person_of",
    [
        pytest.param(lambda x: (x + 110.0, 150.0, x + 160.0, 260.0), id="beside"),
        pytest.param(lambda x: (x + 25.0, 200.0, x + 75.0, 330.0), id="in-front"),
        pytest.param(lambda x: (x + 40.0, 185.0, x + 55.0, 210.0), id="far-behind-small"),
    ],
)
def test_person_next_to_a_bicycle_stays_a_pedestrian(person_of: Callable[[float], Box]) -> None:
    assoc = RiderAssociation()
    for i in range(20):
        x = 10.0 * i
        out = assoc.update(make_tracks([(1, PERSON, person_of(x)), (2, BICYCLE, bike_at(x))]))
        assert rows_of(out) == [(1, PERSON), (2, BICYCLE)]
    assert assoc.pair_count == 0


@pytest.mark.parametrize("cls", [CAR, BUS, TRUCK])
def test_person_overlapping_a_car_never_associates(cls: int) -> None:
    assoc = RiderAssociation()
    outputs = ride(assoc, 20, cls=cls)
    assert all(rows_of(out) == [(1, PERSON), (2, cls)] for out in outputs)
    assert assoc.pair_count == 0


def test_association_dissolves_after_the_pair_separates() -> None:
    assoc = RiderAssociation()
    ride(assoc, MIN_FRAMES + 2)
    for k in range(1, RELEASE_FRAMES + 2):
        # The person walks off to the side of the bicycle, both still visible.
        out = assoc.update(
            make_tracks([(1, PERSON, rider_at(300.0 + 60 * k)), (2, BICYCLE, bike_at(200.0))])
        )
        expected = [(1, PERSON), (2, BICYCLE)] if k >= RELEASE_FRAMES else [(2, BICYCLE)]
        assert rows_of(out) == expected, f"frame {k} after separating"
    assert assoc.pair_count == 0


def test_a_rider_keeps_its_bicycle_through_a_frame_of_bad_boxes() -> None:
    assoc = RiderAssociation()
    ride(assoc, MIN_FRAMES + 2)
    bad = make_tracks([(1, PERSON, rider_at(300.0)), (2, BICYCLE, bike_at(150.0))])
    assert rows_of(assoc.update(bad)) == [(2, BICYCLE)]
    assert rows_of(ride(assoc, 1, x0=160.0)[0]) == [(2, BICYCLE)]


def test_a_rider_sticks_to_its_bicycle_next_to_another_one() -> None:
    """Two bicycles side by side both fit the rider; the established one keeps it even when the
    other overlaps the rider slightly more."""
    assoc = RiderAssociation()
    ride(assoc, MIN_FRAMES + 1)
    for _ in range(10):
        rider = (40.0, 130.0, 90.0, 240.0)
        tracks = make_tracks(
            [
                (1, PERSON, rider),
                (2, BICYCLE, (0.0, 200.0, 80.0, 260.0)),
                (5, BICYCLE, bike_at(30.0)),
            ]
        )
        assert rows_of(assoc.update(tracks)) == [(2, BICYCLE), (5, BICYCLE)]
    # Still the rider of 2: when 2 is missed, the rider stands in for it.
    tracks = make_tracks([(1, PERSON, rider), (5, BICYCLE, bike_at(30.0))])
    assert rows_of(assoc.update(tracks)) == [(2, BICYCLE), (5, BICYCLE)]


def test_state_is_pruned_when_tracks_disappear() -> None:
    """Every 5 frames a new cyclist (fresh ids) passes, and sometimes a pedestrian brushes a
    bicycle; pairs of tracks gone for longer than ``forget_frames`` must not accumulate."""
    config = RiderConfig(forget_frames=10)
    assoc = RiderAssociation(config)
    for i in range(2000):
        cyclist = i // 5
        x = 10.0 * (i % 5)
        rows: list[Row] = [
            (4 * cyclist + 1, PERSON, rider_at(x)),
            (4 * cyclist + 2, BICYCLE, bike_at(x)),
        ]
        if i % 7 == 0:
            rows += [
                (4 * cyclist + 3, PERSON, rider_at(400.0)),
                (4 * cyclist + 4, BICYCLE, bike_at(400.0)),
            ]
        assoc.update(make_tracks(rows))
        assert assoc.pair_count <= 2 * (config.forget_frames // 5 + 2)
    for _ in range(config.forget_frames + 1):
        assoc.update(Tracks.empty())
    assert assoc.pair_count == 0


def test_input_tracks_are_not_mutated() -> None:
    assoc = RiderAssociation()
    frames = [
        make_tracks([(1, PERSON, rider_at(10.0 * i)), (2, BICYCLE, bike_at(10.0 * i))])
        for i in range(MIN_FRAMES + 2)
    ] + [make_tracks([(1, PERSON, rider_at(100.0))])]
    copies = [
        (t.xyxy.copy(), t.track_id.copy(), t.class_id.copy(), t.confidence.copy()) for t in frames
    ]
    for tracks in frames:
        out = assoc.update(tracks)
        assert not out.xyxy.flags.writeable
    for tracks, (xyxy, track_id, class_id, confidence) in zip(frames, copies, strict=True):
        np.testing.assert_array_equal(tracks.xyxy, xyxy)
        np.testing.assert_array_equal(tracks.track_id, track_id)
        np.testing.assert_array_equal(tracks.class_id, class_id)
        np.testing.assert_array_equal(tracks.confidence, confidence)


def test_output_rows_are_ordered_by_track_id() -> None:
    assoc = RiderAssociation()
    for i in range(MIN_FRAMES + 1):
        assoc.update(
            make_tracks([(1, PERSON, rider_at(10.0 * i)), (8, BICYCLE, bike_at(10.0 * i))])
        )
    out = assoc.update(
        make_tracks(
            [
                (1, PERSON, rider_at(50.0)),
                (3, CAR, (0.0, 0.0, 9.0, 9.0)),
                (12, PERSON, (500.0, 0.0, 540.0, 100.0)),
            ]
        )
    )
    assert rows_of(out) == [(3, CAR), (8, BICYCLE), (12, PERSON)]
    assert out.track_id.dtype == np.int64
    assert out.class_id.dtype == np.int16
    assert out.xyxy.dtype == np.float32
    assert out.confidence.dtype == np.float32


def test_empty_input() -> None:
    assoc = RiderAssociation()
    out = assoc.update(Tracks.empty())
    assert len(out) == 0
    ride(assoc, MIN_FRAMES + 1)
    assert len(assoc.update(Tracks.empty())) == 0


def test_reset_clears_every_association() -> None:
    assoc = RiderAssociation()
    ride(assoc, MIN_FRAMES + 1)
    assert assoc.pair_count == 1
    assoc.reset()
    assert assoc.pair_count == 0
    out = ride(assoc, 1)[0]
    assert rows_of(out) == [(1, PERSON), (2, BICYCLE)]


@pytest.mark.parametrize(
    ("person", "fits"),
    [
        pytest.param(rider_at(0.0), True, id="seated"),
        pytest.param((75.0, 130.0, 125.0, 240.0), True, id="half-overlap"),
        pytest.param((80.0, 130.0, 130.0, 240.0), False, id="too-little-overlap"),
        pytest.param((25.0, 160.0, 75.0, 270.0), True, id="feet-just-below-bike"),
        pytest.param((25.0, 170.0, 75.0, 280.0), False, id="feet-well-below-bike"),
        pytest.param((25.0, 220.0, 75.0, 258.0), False, id="centre-below-bike-centre"),
        pytest.param((40.0, 185.0, 55.0, 210.0), False, id="too-small"),
        pytest.param((0.0, 0.0, 100.0, 250.0), False, id="too-tall"),
        pytest.param((np.nan, 130.0, 75.0, 240.0), False, id="nan"),
        pytest.param((75.0, 130.0, 25.0, 240.0), False, id="inverted"),
    ],
)
def test_riding_fit(person: Box, fits: bool) -> None:
    """Against ``bike_at(0)``: (0, 200, 100, 260), default config, and the same scaled up."""
    config = RiderConfig()
    persons = np.array([person], np.float32)
    vehicles = np.array([bike_at(0.0)], np.float32)
    for scale in (1.0, 3.5):
        fit = riding_fit(persons * scale + 7.0, vehicles * scale + 7.0, config)
        assert fit.shape == (1, 1)
        assert fit.dtype == np.float32
        assert (0.0 < fit[0, 0] <= 1.0) if fits else fit[0, 0] == 0.0


def test_riding_fit_shapes() -> None:
    boxes = np.array([rider_at(0.0), rider_at(500.0)], np.float32)
    vehicles = np.array([bike_at(500.0), bike_at(0.0), bike_at(0.0)], np.float32)
    fit = riding_fit(boxes, vehicles, RiderConfig())
    assert (fit > 0).tolist() == [[False, True, True], [True, False, False]]
    assert riding_fit(boxes[:0], vehicles, RiderConfig()).shape == (0, 3)


def test_a_rider_rides_one_vehicle_at_a_time() -> None:
    """The tracker lost the bicycle and started a new track on it: the rider moves to the new
    track and no longer stands in for the old one."""
    assoc = RiderAssociation()
    ride(assoc, MIN_FRAMES + 1)
    for i in range(MIN_FRAMES):
        out = assoc.update(
            make_tracks([(1, PERSON, rider_at(50.0 + i)), (6, BICYCLE, bike_at(50.0 + i))])
        )
        assert rows_of(out) == (
            [(2, BICYCLE), (6, BICYCLE)] if i < MIN_FRAMES - 1 else [(6, BICYCLE)]
        )
    out = assoc.update(make_tracks([(1, PERSON, rider_at(60.0))]))
    assert rows_of(out) == [(6, BICYCLE)]
    assert assoc.pair_count == 1


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        RiderConfig(min_height_ratio=2.0, max_height_ratio=1.0)
    with pytest.raises(ValidationError):
        RiderConfig(min_frames=0)
    with pytest.raises(ValidationError):
        RiderConfig.model_validate({"min_frame": 3})
