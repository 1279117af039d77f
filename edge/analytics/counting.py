"""Counters: tracks in, anonymous count events and occupancy figures out.

Line rule, for every track and every line: the anchor's signed distance to the line decides a
*settled side* only when it is at least the line's ``hysteresis`` x the box's extent across the
line away from it (box width for a vertical line, height for a horizontal one; never less than
one pixel). Detector jitter, and the jumps of a box that is partly occluded for a moment, scale
with the box's size in each axis, so the band does too; the default 0.3 absorbs +-30 %.

A crossing is counted when a track settles on the side opposite the one it last settled on,
and at least one of its steps in between (from one observed anchor to the next, however far
apart: a fast object may jump over the line between two processed frames) passed through the
segment itself. So:

- a box jittering around the line never settles on the other side, and counts nothing;
- someone who walks back later settles again and is counted again, in the other direction;
- a passage beside the segment's ends is not a crossing of this line.

Tracks begin and end where the detector first or last sees an object, which is often close to
a line (a doorway, the edge of an occluder, the frame border), and a tall box near the camera
has a wide band. So the band is not asked of a track's ends: a new track starts on the side its
first anchor lies on, and a track that has stepped through the segment and is forgotten while
still on the far side, inside the band, counts that crossing when it is forgotten (timestamped
when it was last seen). Only the middle of a track, where jitter would be counted, needs the
band.

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
from edge.analytics.track import MAX_HEIGHT_RATIO, Tracks
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
    side: int  # +1 right-hand side of A->B, -1 left-hand side: settled, or the first anchor's
    through_segment: bool  # a step since the last settling passed through the segment
    raw: int  # the side of the latest anchor, band or not (0 only exactly on the line)
    category: int  # index into CATEGORIES of the latest observation
    point: tuple[float, float]  # last anchor, frame pixels
    seen: float  # timestamp of the last observation
    velocity: tuple[float, float] = (0.0, 0.0)  # of the anchor, pixels per second
    extent: float = 0.0  # the box's height, pixels: the scale of the stitching gate


class LineCounter:
    """Counts directional passages of tracks over one segment A->B."""

    def __init__(
        self, line: LineConfig, forget_after_s: float = 1.0, stitch_gate: float = 0.5
    ) -> None:
        """``forget_after_s``: the tracker's lost-track time; ``stitch_gate``: see ``_stitch``
        (box heights, 0 off)."""
        self.line = line
        self.forget_after_s = forget_after_s
        self.stitch_gate = stitch_gate
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
        self.stitched: list[tuple[int, int]] = []  # the last update's (lost id, new id) pairs

    def update(self, tracks: Tracks, timestamp: float) -> list[CountEvent]:
        anchors = anchor_points(tracks.xyxy, self.line.anchor).astype(np.float64)
        distance = side_of_line(anchors, self._a, self._b) / self._length
        size = tracks.xyxy[:, 2:] - tracks.xyxy[:, :2]
        margin = np.maximum(self.line.hysteresis * (size @ self._normal_weights), 1.0)
        settled = np.where(distance >= margin, 1, np.where(distance <= -margin, -1, 0))
        raw = np.sign(distance).astype(np.int64)
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
        seen_now = set(ids)
        self.passers = []
        self.stitched = []
        events = []
        for row, track_id in enumerate(ids):
            point = (float(anchors[row, 0]), float(anchors[row, 1]))
            side, category = int(settled[row]), int(categories[row])
            state = self._passages.get(track_id)
            if state is None:
                found = self._stitch(point, float(size[row, 1]), category, timestamp, seen_now)
                if found is None:
                    first = side or int(raw[row])
                    self._passages[track_id] = _Passage(
                        first, False, first, category, point, timestamp, extent=float(size[row, 1])
                    )
                    continue
                lost_id, state = found
                self.stitched.append((lost_id, track_id))
                self._passages[track_id] = state  # the lost track's step to here, below
                stepped[row] = segments_intersect(
                    np.asarray([state.point]), np.asarray([point]), self._a, self._b
                )[0]
            state.through_segment |= bool(stepped[row])
            state.raw = int(raw[row]) or state.raw
            if side != 0 and side != state.side:
                if state.side != 0 and state.through_segment:
                    events.append(self._event(track_id, state.side, category, timestamp))
                state.side = side
                state.through_segment = False
            elif side != 0:
                state.through_segment = False  # back on the settled side: start afresh
            dt = timestamp - state.seen
            if dt > 0:
                v = ((point[0] - state.point[0]) / dt, (point[1] - state.point[1]) / dt)
                state.velocity = (
                    0.5 * (state.velocity[0] + v[0]),
                    0.5 * (state.velocity[1] + v[1]),
                )
            state.point, state.seen, state.category = point, timestamp, category
            state.extent = float(size[row, 1])
        return events + self._forget(timestamp)

    def _stitch(
        self, point: tuple[float, float], extent: float, category: int, now: float, seen: set[int]
    ) -> tuple[int, _Passage] | None:
        """The id and state of a track the tracker lost moments ago (unseen now, not yet forgotten)
        whose anchor, carried on at its last velocity, lands within ``stitch_gate`` box heights
        of this new track's first anchor, with a height within the tracker's own
        ``MAX_HEIGHT_RATIO`` and the same category: the same object under a new id. It keeps
        its side, so a track lost on one side and found on the other is one passage, not zero
        or two."""
        if self.stitch_gate <= 0:
            return None
        best, best_distance = None, self.stitch_gate * extent
        for track_id, state in self._passages.items():
            if track_id in seen or state.category != category or state.seen >= now:
                continue
            if not 1 / MAX_HEIGHT_RATIO < extent / max(state.extent, 1.0) < MAX_HEIGHT_RATIO:
                continue
            dt = now - state.seen
            x = state.point[0] + state.velocity[0] * dt
            y = state.point[1] + state.velocity[1] * dt
            distance = float(np.hypot(point[0] - x, point[1] - y))
            if distance < best_distance:
                best, best_distance = track_id, distance
        return None if best is None else (best, self._passages.pop(best))

    def _event(self, track_id: int, side: int, category: int, timestamp: float) -> CountEvent:
        """A passage away from ``side``; its track id stays here, in ``passers``."""
        self.passers.append(track_id)
        direction: Direction = "in" if side > 0 else "out"
        return CountEvent(self.line.name, direction, CATEGORIES[category], timestamp)

    def _forget(self, now: float) -> list[CountEvent]:
        """Drop tracks unseen for ``forget_after_s``; one that ended past the line, inside the
        band, after stepping through the segment, counts that crossing now."""
        stale = [i for i, s in self._passages.items() if now - s.seen > self.forget_after_s]
        events = []
        for track_id in stale:
            state = self._passages.pop(track_id)
            if state.through_segment and state.side != 0 and state.raw == -state.side:
                events.append(self._event(track_id, state.side, state.category, state.seen))
        return events

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
