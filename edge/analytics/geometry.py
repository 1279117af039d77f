"""Pure, vectorised plane geometry for lines, zones and boxes.

Every coordinate is in original frame pixels, x to the right and y down (image convention).
Functions take ``(N, 2)`` point arrays or ``(N, 4)`` xyxy box arrays and return one value per
row, so counters never loop over objects in Python. Nothing here keeps state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

Anchor = Literal["bottom_center", "center", "top_center"]
ANCHORS: tuple[str, ...] = get_args(Anchor)
Point = tuple[float, float]


def _points(name: str, array: npt.ArrayLike, width: int) -> npt.NDArray[np.float64]:
    """``array`` as float64 (N, width); float64 so cross products of pixel values are exact."""
    out = np.asarray(array, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != width:
        raise ValueError(f"{name} must have shape (N, {width}), got {out.shape}")
    return out


def _point(name: str, array: npt.ArrayLike) -> npt.NDArray[np.float64]:
    out = np.asarray(array, dtype=np.float64)
    if out.shape != (2,):
        raise ValueError(f"{name} must have shape (2,), got {out.shape}")
    return out


def anchor_points(xyxy: npt.ArrayLike, anchor: Anchor = "bottom_center") -> npt.NDArray[np.float32]:
    """The point of each box that counts as the object's position, float32 (N, 2).

    ``bottom_center`` (the feet, default) is where a pedestrian or a wheel meets the ground, so
    a line drawn on the floor is crossed when the object really crosses it, whatever the
    perspective. ``center`` and ``top_center`` suit top-down cameras and heads above a crowd.
    """
    if anchor not in ANCHORS:
        raise ValueError(f"anchor must be one of {ANCHORS}, got {anchor!r}")
    boxes = _points("xyxy", xyxy, 4)
    x = (boxes[:, 0] + boxes[:, 2]) * 0.5
    if anchor == "bottom_center":
        y = boxes[:, 3]
    elif anchor == "center":
        y = (boxes[:, 1] + boxes[:, 3]) * 0.5
    else:
        y = boxes[:, 1]
    return np.stack([x, y], axis=1).astype(np.float32)


def _cross(
    ox: npt.NDArray[np.float64] | np.float64,
    oy: npt.NDArray[np.float64] | np.float64,
    ux: npt.NDArray[np.float64] | np.float64,
    uy: npt.NDArray[np.float64] | np.float64,
    px: npt.NDArray[np.float64] | np.float64,
    py: npt.NDArray[np.float64] | np.float64,
) -> npt.NDArray[np.float64]:
    """(u - o) x (p - o), z component; broadcasts."""
    return np.asarray((ux - ox) * (py - oy) - (uy - oy) * (px - ox), dtype=np.float64)


def side_of_line(
    points: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Signed side of each point relative to the directed line A -> B, float64 (N,).

    The value is the cross product (B - A) x (P - A) = dx * (py - ay) - dy * (px - ax), i.e. twice
    the signed triangle area, in pixels squared. Because y points down, positive means the
    right-hand side of someone walking from A to B on screen, negative the left-hand side, zero
    on the line. Example: A=(240, 0), B=(240, 360) (walking down) gives positive for x < 240;
    A=(0, 200), B=(640, 200) (walking right) gives positive below the line (y > 200).
    """
    p = _points("points", points, 2)
    pa, pb = _point("a", a), _point("b", b)
    return _cross(pa[0], pa[1], pb[0], pb[1], p[:, 0], p[:, 1])


def _within(
    lo: npt.NDArray[np.float64] | np.float64,
    hi: npt.NDArray[np.float64] | np.float64,
    v: npt.NDArray[np.float64] | np.float64,
) -> npt.NDArray[np.bool_]:
    """v lies in the closed interval spanned by lo and hi (in either order)."""
    return np.asarray((np.minimum(lo, hi) <= v) & (v <= np.maximum(lo, hi)))


def segments_intersect(
    p0: npt.ArrayLike, p1: npt.ArrayLike, a: npt.ArrayLike, b: npt.ArrayLike
) -> npt.NDArray[np.bool_]:
    """Whether each movement segment p0[i] -> p1[i] meets the segment AB, bool (N,).

    True for a proper crossing and for touching (an endpoint on the other segment, or collinear
    overlap); False when the lines cross outside either segment, for parallel disjoint segments
    and always for a zero-length movement (an object that did not move crossed nothing).
    Orientation signs are compared exactly: inputs are pixel values, and their differences and
    products are exact in float64.
    """
    q0 = _points("p0", p0, 2)
    q1 = _points("p1", p1, 2)
    if q0.shape != q1.shape:
        raise ValueError(f"p0 and p1 must have the same shape, got {q0.shape} and {q1.shape}")
    pa, pb = _point("a", a), _point("b", b)
    x0, y0, x1, y1 = q0[:, 0], q0[:, 1], q1[:, 0], q1[:, 1]
    ax, ay, bx, by = pa[0], pa[1], pb[0], pb[1]

    d1 = np.sign(_cross(x0, y0, x1, y1, ax, ay))  # side of A w.r.t. the movement
    d2 = np.sign(_cross(x0, y0, x1, y1, bx, by))  # side of B w.r.t. the movement
    d3 = np.sign(_cross(ax, ay, bx, by, x0, y0))  # side of p0 w.r.t. AB
    d4 = np.sign(_cross(ax, ay, bx, by, x1, y1))  # side of p1 w.r.t. AB

    proper = (d1 * d2 < 0) & (d3 * d4 < 0)
    # Touching cases: a collinear endpoint lying inside the other segment's bounding box.
    a_on = (d1 == 0) & _within(x0, x1, ax) & _within(y0, y1, ay)
    b_on = (d2 == 0) & _within(x0, x1, bx) & _within(y0, y1, by)
    p0_on = (d3 == 0) & _within(ax, bx, x0) & _within(ay, by, y0)
    p1_on = (d4 == 0) & _within(ax, bx, x1) & _within(ay, by, y1)
    moved = (x0 != x1) | (y0 != y1)
    return np.asarray(moved & (proper | a_on | b_on | p0_on | p1_on))


def distance_to_segments(
    points: npt.ArrayLike, starts: npt.ArrayLike, ends: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Euclidean distance from each point to each segment start[j] -> end[j], float64 (N, M)."""
    p = _points("points", points, 2)[:, None, :]
    a = _points("starts", starts, 2)[None, :, :]
    ab = _points("ends", ends, 2)[None, :, :] - a
    length2 = np.maximum((ab**2).sum(axis=2), 1e-12)
    t = np.clip(((p - a) * ab).sum(axis=2) / length2, 0.0, 1.0)
    closest = a + t[:, :, None] * ab
    return np.asarray(np.hypot(*(p - closest).transpose(2, 0, 1)), dtype=np.float64)


def points_in_polygon(points: npt.ArrayLike, polygon: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Whether each point lies inside the polygon, bool (N,), by even-odd ray casting.

    polygon: (K, 2) vertices in order (either winding, implicitly closed). Works for concave
    polygons. Points exactly on an edge are inside for some edges and outside for others
    (half-open rule), which is consistent: a point on an edge shared by two adjacent zones
    belongs to exactly one of them.
    """
    p = _points("points", points, 2)
    poly = _points("polygon", polygon, 2)
    px, py = p[:, 0], p[:, 1]
    inside = np.zeros(len(p), dtype=bool)
    if len(poly) < 3:
        return inside
    xs, ys = poly[:, 0], poly[:, 1]
    xj, yj = np.roll(xs, 1), np.roll(ys, 1)
    for xi_, yi_, xj_, yj_ in zip(xs, ys, xj, yj, strict=True):
        straddles = (yi_ > py) != (yj_ > py)
        if not straddles.any():
            continue
        # x where the edge meets the horizontal line through the point; the edge is not
        # horizontal wherever ``straddles`` holds, so the division is safe there.
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = xi_ + (py - yi_) * (xj_ - xi_) / (yj_ - yi_)
        inside ^= straddles & (px < x_cross)
    return inside


def polygon_area(polygon: npt.ArrayLike) -> float:
    """Signed area of a (K, 2) polygon by the shoelace formula, pixels squared.

    With y down, positive means the vertices run clockwise on screen.
    """
    poly = _points("polygon", polygon, 2)
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_is_simple(polygon: npt.ArrayLike) -> bool:
    """Whether a (K, 2) polygon is a usable zone: at least 3 finite vertices, non-zero area,
    no repeated consecutive vertex, no edge folding back onto its neighbour and no two
    non-adjacent edges touching (a bow-tie is not simple). Meant for config validation, O(K^2).
    """
    poly = _points("polygon", polygon, 2)
    k = len(poly)
    if k < 3 or not np.isfinite(poly).all() or polygon_area(poly) == 0.0:
        return False
    starts, ends = poly, np.roll(poly, -1, axis=0)
    edge = ends - starts
    if not (edge != 0).any(axis=1).all():
        return False  # repeated consecutive vertex: a zero-length edge
    # Adjacent edges share a vertex; they only overlap when collinear and pointing back.
    nxt = np.roll(edge, -1, axis=0)
    cross = edge[:, 0] * nxt[:, 1] - edge[:, 1] * nxt[:, 0]
    dot = (edge * nxt).sum(axis=1)
    if ((cross == 0) & (dot < 0)).any():
        return False
    for i in range(k):
        # Edges i+2 .. i+k-2 (mod k) are the ones not adjacent to edge i; j > i avoids repeats.
        others = np.array([j for j in range(i + 2, k) if (j + 1) % k != i], dtype=np.intp)
        if len(others) == 0:
            continue
        hits = segments_intersect(starts[others], ends[others], starts[i], ends[i])
        if hits.any():
            return False
    return True


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Intersection over union of every pair of xyxy boxes, float32 (N, M) in [0, 1].

    Boxes with non-positive width or height, or any non-finite coordinate, have IoU 0 with
    everything (never NaN), so a bad box can neither match nor poison an assignment.
    """
    ba = _points("a", a, 4)
    bb = _points("b", b, 4)

    def valid_area(boxes: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        w = boxes[:, 2] - boxes[:, 0]
        h = boxes[:, 3] - boxes[:, 1]
        ok = np.isfinite(boxes).all(axis=1) & (w > 0) & (h > 0)
        return np.where(ok, w * h, 0.0)

    area_a, area_b = valid_area(ba), valid_area(bb)
    both = (area_a[:, None] > 0) & (area_b[None, :] > 0)
    with np.errstate(invalid="ignore", over="ignore"):
        iw = np.minimum(ba[:, None, 2], bb[None, :, 2]) - np.maximum(ba[:, None, 0], bb[None, :, 0])
        ih = np.minimum(ba[:, None, 3], bb[None, :, 3]) - np.maximum(ba[:, None, 1], bb[None, :, 1])
        inter = np.where(both, np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None), 0.0)
        union = area_a[:, None] + area_b[None, :] - inter
    iou = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, union, out=iou, where=both & (union > 0))
    return np.clip(iou, 0.0, 1.0).astype(np.float32)


def _point_segment_distance(
    p: npt.NDArray[np.float64], a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]
) -> float:
    ab = b - a
    t = float(np.clip(np.dot(p - a, ab) / max(float(np.dot(ab, ab)), 1e-12), 0.0, 1.0))
    return float(np.hypot(*(a + t * ab - p)))


def segment_distance(a0: Point, a1: Point, b0: Point, b1: Point) -> float:
    """Shortest distance between segments A and B, pixels; 0 when they touch or cross."""
    pa0, pa1, pb0, pb1 = (np.asarray(p, np.float64) for p in (a0, a1, b0, b1))
    if segments_intersect(pa0[None], pa1[None], pb0, pb1)[0]:
        return 0.0
    return min(
        _point_segment_distance(pa0, pb0, pb1),
        _point_segment_distance(pa1, pb0, pb1),
        _point_segment_distance(pb0, pa0, pa1),
        _point_segment_distance(pb1, pa0, pa1),
    )


def segment_polygon_distance(a: Point, b: Point, polygon: Sequence[Point]) -> float:
    """Shortest distance between segment AB and the boundary of a polygon; 0 if they meet."""
    poly = list(polygon)
    return min(segment_distance(a, b, poly[i], poly[(i + 1) % len(poly)]) for i in range(len(poly)))


def polygon_distance(p: Sequence[Point], q: Sequence[Point]) -> float:
    """Shortest distance between two polygons; 0 when they overlap, touch or one holds the
    other."""
    if points_in_polygon(np.asarray(p[:1]), q)[0] or points_in_polygon(np.asarray(q[:1]), p)[0]:
        return 0.0
    return min(segment_polygon_distance(p[i], p[(i + 1) % len(p)], q) for i in range(len(p)))
