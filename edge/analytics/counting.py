"""Counters: tracks in, anonymous count events and occupancy figures out.

Line rule, for every track and every line: the anchor's signed distance to the line decides a
*settled side* only when it is at least the line's ``hysteresis`` x the box's extent across the
line away from it (box width for a vertical line, height for a horizontal one; never less than
one pixel). Detector jitter, and the jumps of a box that is partly occluded for a moment, scale
with the box's size in each axis, so the band does too; the default 0.2 absorbs +-20 %.

A crossing is counted when a track settles on the side opposite the one it last settled on,
and at least one of its steps in between (from one observed anchor to the next, however far
apart: a fast object may jump over the line between two processed frames) passed through the
segment itself. So:

- a box jittering around the line never settles on the other side, and counts nothing;
- someone who walks back later settles again and is counted again, in the other direction;
- a passage beside the segment's ends is not a crossing of this line.

Per-track state is dropped once the track has not been seen for ``forget_after_s`` (the tracker's
own lost-track time), so memory does not grow with the number of objects ever seen. Track ids
stay in this module's memory: events carry the line, direction, category and time only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.analytics.detections import CATEGORIES, Category
from edge.analytics.geometry import (
    anchor_points,
    points_in_polygon,
    segments_intersect,
    side_of_line,
)
from edge.analytics.track import Tracks
from edge.config import LineConfig, ZoneConfig
from edge.schema import DIRECTIONS as DIRECTIONS  # re-exported: the published direction names
from edge.schema import Direction as Direction


@dataclass(frozen=True, slots=True)
class CountEvent:
    """One passage over a line. Deliberately holds no id, box or position."""

    line: str
    direction: Direction
    category: Category
    timestamp: float


@dataclass(slots=True)
class _Passage:
    side: int  # +1 right-hand side of A->B, -1 left-hand side, 0 not settled yet
    through_segment: bool  # a step since the last settling passed through the segment
    point: tuple[float, float]  # last anchor, frame pixels
    seen: float  # timestamp of the last observation


class LineCounter:
    """Counts directional passages of tracks over one segment A->B."""

    def __init__(self, line: LineConfig, forget_after_s: float = 1.0) -> None:
        self.line = line
        self.forget_after_s = forget_after_s
        self._a = np.asarray(line.start, np.float64)
        self._b = np.asarray(line.end, np.float64)
        self._length = float(np.hypot(*(self._b - self._a)))
        # |unit normal| per axis: the box's extent across the line is w*|nx| + h*|ny|, so the
        # dead band scales with how much the box (and its jitter) spans in the crossing direction.
        dx, dy = (self._b - self._a) / self._length
        self._normal_weights = np.array([abs(dy), abs(dx)], np.float32)
        self._passages: dict[int, _Passage] = {}
        # The tracks that made the last update's events, in order: for the disclosure check of
        # the pipeline, in memory only (events themselves carry no id).
        self.passers: list[int] = []

    def update(self, tracks: Tracks, timestamp: float) -> list[CountEvent]:
        anchors = anchor_points(tracks.xyxy, self.line.anchor).astype(np.float64)
        distance = side_of_line(anchors, self._a, self._b) / self._length
        size = tracks.xyxy[:, 2:] - tracks.xyxy[:, :2]
        margin = np.maximum(self.line.hysteresis * (size @ self._normal_weights), 1.0)
        settled = np.where(distance >= margin, 1, np.where(distance <= -margin, -1, 0))
        ids = tracks.track_id.tolist()
        previous = np.array(
            [self._passages[i].point if i in self._passages else (np.nan, np.nan) for i in ids],
            np.float64,
        ).reshape(-1, 2)
        known = ~np.isnan(previous[:, 0])
        stepped = np.zeros(len(ids), bool)
        if known.any():
            stepped[known] = segments_intersect(previous[known], anchors[known], self._a, self._b)
        categories = tracks.category_index
        events = []
        self.passers = []
        for row, track_id in enumerate(ids):
            point = (float(anchors[row, 0]), float(anchors[row, 1]))
            side = int(settled[row])
            state = self._passages.get(track_id)
            if state is None:
                self._passages[track_id] = _Passage(side, False, point, timestamp)
                continue
            state.through_segment |= bool(stepped[row])
            if side != 0 and side != state.side:
                if state.side != 0 and state.through_segment:
                    direction: Direction = "in" if state.side > 0 else "out"
                    category = CATEGORIES[int(categories[row])]
                    events.append(CountEvent(self.line.name, direction, category, timestamp))
                    self.passers.append(track_id)
                state.side = side
                state.through_segment = False
            elif side != 0:
                state.through_segment = False  # back on the settled side: start afresh
            state.point, state.seen = point, timestamp
        self._forget(timestamp)
        return events

    def _forget(self, now: float) -> None:
        stale = [i for i, s in self._passages.items() if now - s.seen > self.forget_after_s]
        for track_id in stale:
            del self._passages[track_id]

    def reset(self) -> None:
        self._passages.clear()

    @property
    def tracked(self) -> int:
        """How many tracks this counter holds state for (for tests and health figures)."""
        return len(self._passages)


def zone_occupancy(tracks: Tracks, zone: ZoneConfig) -> npt.NDArray[np.int64]:
    """Objects per category (indexed like ``CATEGORIES``) whose anchor is inside the polygon."""
    inside = points_in_polygon(anchor_points(tracks.xyxy, zone.anchor), zone.points)
    return np.bincount(tracks.category_index[inside], minlength=len(CATEGORIES)).astype(np.int64)
