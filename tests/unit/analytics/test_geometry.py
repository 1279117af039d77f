"""Geometry tables: the signs and edge cases every line and zone counter relies on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from edge.analytics.geometry import (
    anchor_points,
    box_iou,
    distance_to_segments,
    points_in_polygon,
    polygon_is_simple,
    segments_intersect,
    side_of_line,
)

VERTICAL = ((240.0, 0.0), (240.0, 360.0))  # walking down the screen
HORIZONTAL = ((0.0, 200.0), (640.0, 200.0))  # walking right


@pytest.mark.parametrize(
    ("anchor", "expected"),
    [("bottom_center", (20.0, 40.0)), ("center", (20.0, 25.0)), ("top_center", (20.0, 10.0))],
)
def test_anchor_points(anchor: str, expected: tuple[float, float]) -> None:
    xyxy = np.array([[10, 10, 30, 40]], np.float32)
    points = anchor_points(xyxy, anchor)  # type: ignore[arg-type]
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points, [expected])


def test_anchor_points_rejects_unknown_anchor() -> None:
    with pytest.raises(ValueError, match="anchor"):
        anchor_points(np.zeros((1, 4), np.float32), "feet")  # type: ignore[arg-type]


def test_anchor_points_empty() -> None:
    assert anchor_points(np.empty((0, 4), np.float32)).shape == (0, 2)


@pytest.mark.parametrize(
    ("line", "point", "sign"),
    [
        (VERTICAL, (100.0, 180.0), 1),  # left of the screen = right hand when walking down
        (VERTICAL, (400.0, 180.0), -1),
        (VERTICAL, (240.0, 500.0), 0),  # on the infinite line, beyond B
        (HORIZONTAL, (320.0, 300.0), 1),  # below = right hand when walking right
        (HORIZONTAL, (320.0, 100.0), -1),
        (HORIZONTAL, (700.0, 200.0), 0),
    ],
)
def test_side_of_line(
    line: tuple[tuple[float, float], tuple[float, float]],
    point: tuple[float, float],
    sign: int,
) -> None:
    side = side_of_line(np.array([point]), line[0], line[1])
    assert side.dtype == np.float64
    assert np.sign(side[0]) == sign


def test_side_of_line_is_vectorised_and_flips_with_direction() -> None:
    points = np.array([[100, 180], [400, 180], [240, 10]], np.float32)
    forward = side_of_line(points, *VERTICAL)
    backward = side_of_line(points, VERTICAL[1], VERTICAL[0])
    np.testing.assert_array_equal(forward, -backward)
    np.testing.assert_array_equal(forward, [140 * 360, -160 * 360, 0])


@pytest.mark.parametrize(
    ("p0", "p1", "expected"),
    [
        ((100, 100), (300, 100), True),  # proper crossing
        ((300, 100), (100, 100), True),  # other direction
        ((100, 400), (300, 400), False),  # crosses the infinite line below B
        ((100, -10), (300, -10), False),  # above A
        ((100, 100), (200, 100), False),  # stops short
        ((100, 100), (240, 100), True),  # touches the line
        ((240, 100), (300, 100), True),  # starts on the line
        ((100, 360), (300, 360), True),  # passes through endpoint B
        ((100, 0), (240, 0), True),  # ends on endpoint A
        ((100, 0), (100, 360), False),  # parallel
        ((240, 400), (240, 500), False),  # collinear, beyond B
        ((240, 100), (240, 200), True),  # collinear, overlapping
        ((240, 100), (240, 100), False),  # zero-length movement on the line
        ((100, 100), (100, 100), False),  # zero-length movement off the line
    ],
)
def test_segments_intersect(
    p0: tuple[float, float], p1: tuple[float, float], expected: bool
) -> None:
    result = segments_intersect(np.array([p0]), np.array([p1]), *VERTICAL)
    assert result.dtype == np.bool_
    assert bool(result[0]) is expected


def test_segments_intersect_vectorised() -> None:
    p0 = np.array([[100, 100], [100, 400], [240, 50]], np.float32)
    p1 = np.array([[300, 100], [300, 400], [240, 50]], np.float32)
    np.testing.assert_array_equal(segments_intersect(p0, p1, *VERTICAL), [True, False, False])


SQUARE = [(0, 0), (10, 0), (10, 10), (0, 10)]
# A "U": the notch between x 4..6 reaches down from y 0 to y 6 and is outside.
CONCAVE = [(0, 0), (4, 0), (4, 6), (6, 6), (6, 0), (10, 0), (10, 10), (0, 10)]


@pytest.mark.parametrize(
    ("polygon", "point", "inside"),
    [
        (SQUARE, (5, 5), True),
        (SQUARE, (15, 5), False),
        (SQUARE, (-1, 5), False),
        (SQUARE, (5, 11), False),
        (CONCAVE, (2, 2), True),
        (CONCAVE, (5, 2), False),  # in the notch
        (CONCAVE, (5, 8), True),  # below the notch
        (CONCAVE, (8, 2), True),
        (CONCAVE, (11, 2), False),
    ],
)
def test_points_in_polygon(
    polygon: list[tuple[int, int]], point: tuple[float, float], inside: bool
) -> None:
    result = points_in_polygon(np.array([point], np.float32), np.array(polygon, np.float32))
    assert result.dtype == np.bool_
    assert bool(result[0]) is inside


def test_points_in_polygon_vectorised_and_empty() -> None:
    poly = np.array(CONCAVE, np.float32)
    points = np.array([[2, 2], [5, 2], [5, 8]], np.float32)
    np.testing.assert_array_equal(points_in_polygon(points, poly), [True, False, True])
    assert points_in_polygon(np.empty((0, 2)), poly).shape == (0,)


def test_points_on_a_shared_edge_belong_to_one_zone() -> None:
    left = np.array([(0, 0), (10, 0), (10, 10), (0, 10)], np.float32)
    right = np.array([(10, 0), (20, 0), (20, 10), (10, 10)], np.float32)
    points = np.array([[10, 5], [10, 2.5]], np.float32)
    both = points_in_polygon(points, left).astype(int) + points_in_polygon(points, right)
    np.testing.assert_array_equal(both, [1, 1])


@pytest.mark.parametrize(
    ("polygon", "simple"),
    [
        (SQUARE, True),
        (CONCAVE, True),
        ([(0, 0), (10, 0), (5, 8)], True),
        ([(0, 0), (10, 10), (10, 0), (0, 10)], False),  # bow-tie
        ([(0, 0), (10, 0)], False),  # too few vertices
        ([(0, 0), (5, 5), (10, 10)], False),  # zero area
        ([(0, 0), (10, 0), (10, 0), (10, 10)], False),  # repeated vertex
        ([(0, 0), (10, 0), (10, 10), (10, 5), (0, 10)], False),  # edge folds back
        ([(0, 0), (10, 0), (10, 10), (5, 0), (0, 10)], False),  # vertex touches an edge
    ],
)
def test_polygon_is_simple(polygon: list[tuple[int, int]], simple: bool) -> None:
    assert polygon_is_simple(np.array(polygon, np.float32)) is simple


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),  # identical
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),  # disjoint
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # sharing an edge
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),  # half overlap
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),  # contained
        ((0, 0, 10, 10), (5, 5, 5, 10), 0.0),  # zero width
        ((0, 0, 10, 10), (8, 8, 2, 2), 0.0),  # inverted
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # both degenerate
        ((0, 0, 10, 10), (np.nan, 0, 10, 10), 0.0),
        ((0, 0, 10, 10), (0, 0, np.inf, 10), 0.0),
    ],
)
def test_box_iou(
    a: tuple[float, float, float, float], b: tuple[float, float, float, float], expected: float
) -> None:
    iou = box_iou(np.array([a], np.float32), np.array([b], np.float32))
    assert iou.dtype == np.float32
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected, abs=1e-6)


def test_box_iou_shapes() -> None:
    a = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 0, 1, 1]], np.float32)
    b = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    assert box_iou(a, b).shape == (3, 2)
    assert box_iou(a, np.empty((0, 4), np.float32)).shape == (3, 0)
    assert box_iou(np.empty((0, 4), np.float32), b).shape == (0, 2)


def _boxes(max_rows: int) -> st.SearchStrategy[np.ndarray]:
    """Random xyxy rows, degenerate and inverted boxes included."""
    coords = st.floats(-1000, 1000, allow_nan=False, width=32)
    return st.integers(0, max_rows).flatmap(lambda n: arrays(np.float32, (n, 4), elements=coords))


@given(_boxes(6), _boxes(6))
def test_box_iou_is_symmetric_and_bounded(a: np.ndarray, b: np.ndarray) -> None:
    ab = box_iou(a, b)
    assert not np.isnan(ab).any()
    assert ((ab >= 0) & (ab <= 1)).all()
    np.testing.assert_allclose(ab, box_iou(b, a).T, rtol=0, atol=1e-7)


@given(_boxes(6))
def test_box_iou_with_itself_is_one_for_valid_boxes(a: np.ndarray) -> None:
    valid = (a[:, 2] > a[:, 0]) & (a[:, 3] > a[:, 1])
    diagonal = np.diag(box_iou(a, a))
    np.testing.assert_allclose(diagonal[valid], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(diagonal[~valid], 0.0)


@given(
    arrays(np.float64, (8, 2), elements=st.floats(-500, 500)),
    arrays(np.float64, (8, 2), elements=st.floats(-500, 500)),
)
def test_a_crossing_movement_changes_side(p0: np.ndarray, p1: np.ndarray) -> None:
    """A movement that crosses the line properly ends on the other side of it."""
    a, b = np.array([240.0, 0.0]), np.array([240.0, 360.0])
    crossed = segments_intersect(p0, p1, a, b)
    before, after = np.sign(side_of_line(p0, a, b)), np.sign(side_of_line(p1, a, b))
    strict = crossed & (before != 0) & (after != 0)
    assert (before[strict] != after[strict]).all()


def test_distance_to_segments_inside_beyond_and_on_the_segments() -> None:
    points = [(240, 100), (100, 100), (240, 400), (300, 500), (240, 0)]
    starts = [VERTICAL[0], HORIZONTAL[0]]
    ends = [VERTICAL[1], HORIZONTAL[1]]
    distance = distance_to_segments(points, starts, ends)
    assert distance.shape == (5, 2)
    np.testing.assert_allclose(
        distance,
        [[0, 100], [140, 100], [40, 200], [np.hypot(60, 140), 300], [0, 200]],
    )
