"""Disclosure control: what the published figures of one camera could reveal about one person.

The closed schema keeps identities out of every report; this module keeps them out of what
reports say *together*. Its decisions join the start-up gate (``edge policy check`` prints them)
and the egress gate:

- **Windows.** A window's length is one of the policy's (``Policy.windows``: the chain's
  multiples of its minimum), so two runs or two deployments on one camera never difference to
  less than the minimum. A live window watched for less than the minimum is withheld by the
  egress gate, audited (``window_withheld``), never published alone.
- **Zones.** A zone sample holding fewer than ``zone_min_objects`` objects of a category counts
  as 0 (applied in ``CameraPipeline``), so neither the mean nor the peak of a window can show
  one parked car's presence time or one person waiting.
- **Geometry.** Per camera at most ``max_lines`` lines and ``max_zones`` zones; no two lines
  that cross or touch, no two zones that overlap or nest, no line that cuts a zone's edge; and,
  once the frame's size is known (a recording at start, a camera at its first frame), every
  line at least ``min_line_length`` of the frame's diagonal, every zone at least
  ``min_zone_area`` of its area, and every pair at least ``min_separation`` of the diagonal
  apart. Whole-minus-part differencing needs a line that is (nearly) a piece of another, and a
  map of paths needs many small lines: both are refused.

- **Derived counts.** Geometry alone cannot stop differencing: people walk along paths, so a
  half-width line ten metres down a pavement counts a subset of a full-width one. Under a
  suppressing policy, the egress gate therefore reasons on the window's populations: the
  pipeline hands it, with the report, how many passages each pair of line cells (line,
  direction, category) share object by object (``overlap``: counts, never ids), and
  ``hidden_cells`` hides every cell from which a count of 1 to k-1 people could be derived as
  ``whole - (sum of disjoint parts it contains)``, until none is left.

What it does not do: a difference of two cells that do not contain one another (people who
took one way minus people who took another) is not a count of anyone; and a part of a window
counted before a restart has no object-by-object overlap, so its passages are taken as shared
with every other cell (more hiding, never less).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from edge.analytics.geometry import (
    polygon_area,
    polygon_distance,
    segment_distance,
    segment_polygon_distance,
)
from edge.config import CameraConfig
from edge.legal.decisions import Decision
from edge.legal.policy import Policy
from edge.schema import CATEGORY_NAMES, DIRECTIONS, CategoryName, Direction

FrameSize = tuple[int, int]
# One published count: line, direction, category; or movement, None, category.
Cell = tuple[str, Direction | None, CategoryName]
# A cell containing more published cells than this is hidden outright: its subsets are not
# enumerated (2^n), and so many nested figures are an attack rather than a survey.
MAX_NESTED = 6


def cells_of(lines: Iterable[str], movements: Iterable[str] = ()) -> list[Cell]:
    """Every line cell, then every movement cell, in the order ``overlap`` indexes them. A
    movement's objects passed both its lines, so its cells lie inside theirs: the derived-count
    rule sees that in the overlap, as for nested lines."""
    return [(line, d, c) for line in lines for d in DIRECTIONS for c in CATEGORY_NAMES] + [
        (movement, None, c) for movement in movements for c in CATEGORY_NAMES
    ]


def overlap(passages: Iterable[Mapping[int, int]], size: int) -> npt.NDArray[np.int64]:
    """``M[i, j]``: passages of cells i and j made by the same objects, Σ min(n_i, n_j) over
    objects; the diagonal is each cell's count. ``passages``: per object, cell index -> count."""
    m = np.zeros((size, size), np.int64)
    for per_object in passages:
        index = np.fromiter(per_object.keys(), np.intp)
        count = np.fromiter(per_object.values(), np.int64)
        m[np.ix_(index, index)] += np.minimum(count[:, None], count[None, :])
    return m


def hidden_cells(counts: Sequence[int], shared: npt.NDArray[np.int64] | None, k: int) -> set[int]:
    """Cells to hide so that no published count minus a sum of disjoint published cells it
    contains comes to 1..k-1 (counts below k are hidden already by the small-count rule).

    ``shared`` may undercount (passages before a restart, or none at all): a cell's passages it
    does not attribute are taken as shared with every cell, which only hides more.
    """
    n = np.asarray(counts, np.int64)
    m = np.zeros((len(n), len(n)), np.int64) if shared is None else shared.astype(np.int64)
    loose = np.maximum(n - np.diag(m), 0)
    bound = m + np.minimum(loose[:, None], loose[None, :])  # an upper bound on what they share
    shown = {i for i in range(len(n)) if n[i] >= k}
    hidden = {i for i in range(len(n)) if 0 < n[i] < k}
    changed = True
    while changed:
        changed = False
        for whole in sorted(shown):
            inside = [p for p in sorted(shown) if p != whole and bound[whole, p] >= n[p]]
            if len(inside) > MAX_NESTED or any(
                0 < n[whole] - sum(n[p] for p in parts) < k
                for size in range(1, len(inside) + 1)
                for parts in itertools.combinations(inside, size)
                if all(bound[a, b] == 0 for a, b in itertools.combinations(parts, 2))
            ):
                shown.discard(whole)
                hidden.add(whole)
                changed = True
                break
    return hidden


def window_decision(seconds: int, policy: Policy) -> Decision:
    return Decision(
        "window.seconds",
        seconds in policy.windows,
        f"{seconds} s windows; the policy allows {list(policy.windows)} s (a chain of multiples "
        f"of its {policy.min_window_seconds} s minimum: windows of two runs never difference "
        "to a shorter interval)",
    )


def zone_decision(policy: Policy) -> Decision:
    k = policy.disclosure.zone_min_objects
    return Decision(
        "zones.min_objects",
        True,
        f"a zone sample with fewer than {k} objects of a category counts as 0: no zone figure "
        "shows one object's presence or presence time",
    )


def geometry_decisions(
    camera: CameraConfig, policy: Policy, frame_size: FrameSize | None
) -> list[Decision]:
    """Every geometry rule for one camera; the size rules only once ``frame_size`` is known."""
    rules = policy.disclosure
    where = f"camera[{camera.id}]"
    out = [
        Decision(
            f"{where}.geometry.count",
            len(camera.lines) <= rules.max_lines and len(camera.zones) <= rules.max_zones,
            f"{len(camera.lines)} lines and {len(camera.zones)} zones; the policy allows at most "
            f"{rules.max_lines} and {rules.max_zones} per camera (many small lines draw paths)",
        )
    ]
    if not out[0].allowed:
        return out  # too many to be worth comparing pairwise (and quadratic in an attack)
    lines = {line.name: (line.start, line.end) for line in camera.lines}
    zones = {zone.name: zone.points for zone in camera.zones}
    diagonal = math.hypot(*frame_size) if frame_size else None
    gap = rules.min_separation * diagonal if diagonal else 0.0

    def apart(kind: str, a: str, b: str, distance: float) -> None:
        if distance <= gap:
            what = "meet" if distance == 0 else f"are {distance:.1f} px apart, less than {gap:.1f}"
            out.append(
                Decision(
                    f"{where}.geometry.{kind}",
                    False,
                    f"'{a}' and '{b}' {what}: overlapping, nested or near-coincident figures "
                    "difference to a count of a few people",
                )
            )

    for (a, (a0, a1)), (b, (b0, b1)) in itertools.combinations(lines.items(), 2):
        apart("lines", a, b, segment_distance(a0, a1, b0, b1))
    for (a, p), (b, q) in itertools.combinations(zones.items(), 2):
        apart("zones", a, b, polygon_distance(p, q))
    for (a, (a0, a1)), (b, q) in itertools.product(lines.items(), zones.items()):
        apart("line_zone", a, b, segment_polygon_distance(a0, a1, q))
    if frame_size is None:
        out.append(
            Decision(
                f"{where}.geometry.size",
                True,
                "line lengths, zone areas and separations are checked against the frame's size "
                "at the camera's first frame",
            )
        )
        return out
    assert diagonal is not None
    width, height = frame_size
    short = [
        name
        for name, (a0, a1) in lines.items()
        if math.dist(a0, a1) < rules.min_line_length * diagonal
    ]
    small = [
        name
        for name, points in zones.items()
        if abs(polygon_area(points)) < rules.min_zone_area * width * height
    ]
    out.append(
        Decision(
            f"{where}.geometry.size",
            not short and not small,
            f"in a {width}x{height} frame, lines of at least {rules.min_line_length:.0%} of the "
            f"diagonal ({rules.min_line_length * diagonal:.0f} px), zones of at least "
            f"{rules.min_zone_area:.0%} of the area"
            + (f"; too short: {short}" if short else "")
            + (f"; too small: {small}" if small else ""),
        )
    )
    if gap and not any(d.rule.startswith(f"{where}.geometry.") and not d.allowed for d in out):
        out.append(
            Decision(
                f"{where}.geometry.separation",
                True,
                f"lines and zones at least {gap:.0f} px apart, none crossing another",
            )
        )
    return out
