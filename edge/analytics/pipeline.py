"""One camera's analytics after the detector, and its figures.

    Detections -> ByteTracker -> RiderAssociation -> LineCounter / zone_occupancy
               -> WindowAggregator -> CountReport

Track ids stop at the counters; only ``CountReport``s leave. A zone sample holding fewer than
the policy's ``zone_min_objects`` of a category counts as 0 here, before anything is summed.
The runner (``edge.runner``) feeds it frame by frame; ``edge.app`` builds it from the settings.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from edge.analytics.aggregate import CountReport, WindowAggregator
from edge.analytics.counting import CountEvent, LineCounter, zone_occupancy
from edge.analytics.detections import CATEGORIES, Detections
from edge.analytics.geometry import anchor_points, distance_to_segments
from edge.analytics.movements import MovementCounter, MovementEvent
from edge.analytics.riders import RiderAssociation
from edge.analytics.track import ByteTracker, Tracks
from edge.config import CameraConfig, Settings
from edge.figures import StageTimes
from edge.legal.disclosure import cells_of, overlap
from edge.legal.policy import FLOOR
from edge.vision.frames import Frame, time_slot
from edge.vision.motion import MotionGate

STAGES = ("decode", "motion", "detect", "track", "riders", "count", "aggregate", "publish")


class CameraPipeline:
    """Everything after the detector for one camera; ``times`` holds every stage's timings,
    the runner's (decode, motion, detect, publish) included."""

    def __init__(
        self,
        camera: CameraConfig,
        settings: Settings,
        zone_min_objects: int = FLOOR.zone_min_objects,
    ) -> None:
        """``zone_min_objects``: the policy's smallest group a zone sample may show."""
        self.camera = camera
        self.zone_min_objects = zone_min_objects
        self.tracker = ByteTracker(settings.tracker)
        self.riders = RiderAssociation(settings.riders)
        lost, gate = settings.tracker.lost_seconds, settings.tracker.stitch_gate
        self.lines = [LineCounter(line, lost, gate) for line in camera.lines]
        self.movements = MovementCounter(camera.movements)
        self.aggregator = WindowAggregator(
            camera.id,
            [line.name for line in camera.lines],
            [zone.name for zone in camera.zones],
            settings.window.seconds,
            movements={m.name: (m.from_line, m.to_line) for m in camera.movements},
        )
        self.motion = MotionGate(settings.motion)
        motion = settings.motion
        self._idle_fps = motion.idle_fps if motion.enabled else None
        self._busy_fps = motion.busy_fps if motion.enabled else None
        self._detected_at: float | None = None
        self._edges = _edges(camera)
        self._occupancy = {zone.name: np.zeros(len(CATEGORIES), np.int64) for zone in camera.zones}
        self.times = StageTimes(STAGES)
        # The open window's passages object by object (track id -> cell -> passages), only to
        # hand the egress gate their overlap when the window closes; forgotten then.
        cells = cells_of(self.aggregator.line_names, self.aggregator.movement_names)
        self._cells = {cell: i for i, cell in enumerate(cells)}
        self._passed: dict[int, dict[int, int]] = {}
        self._passers: list[int] = []  # this frame's, in the order of its events
        self.moved: list[MovementEvent] = []  # this frame's movements
        self._movers: list[int] = []  # and their objects, in the same order
        self._window: int | None = None

    def process(self, timestamp: float, detections: Detections) -> list[CountReport]:
        """One frame's detections; returns the reports of any windows that closed."""
        _, events = self.observe(timestamp, detections)
        return self.times.timed("aggregate", self._aggregate, timestamp, events)

    def observe(self, timestamp: float, detections: Detections) -> tuple[Tracks, list[CountEvent]]:
        """Track, pair riders and count one frame: the tracks (ids in memory only) and the
        passages. ``process`` is this plus the windows; the tracking evaluation replays this."""
        timed = self.times.timed
        tracks = timed("track", self.tracker.update, detections, timestamp)
        tracks = timed("riders", self.riders.update, tracks)
        events, self._occupancy = timed("count", self._count, tracks, timestamp)
        return tracks, events

    def needs_detection(self, frame: Frame) -> bool:
        """Whether this frame goes to the detector: every frame while a new track waits for its
        confirmation (it must be matched on consecutive detections, and a track first seen on a
        line would cross it unconfirmed), at most ``motion.busy_fps`` times a second while a
        track is near a line or a zone's edge, else at most ``motion.idle_fps``; and only when
        the motion gate sees a change (or a confirmation is due). A frame inside the busy period
        costs nothing."""
        t = frame.timestamp
        confirming = not self.tracker.settled
        if not confirming and self._same_slot(t, self._busy_fps):
            return False
        if self._same_slot(t, self._idle_fps) and not confirming and not self._near_a_figure(t):
            return False
        detect = self.motion.changed(frame.image, t, force=confirming)
        if detect:
            self._detected_at = t
        return detect

    def _same_slot(self, timestamp: float, fps: float | None) -> bool:
        """Whether the last detection fell in the same 1/fps slot of time (``time_slot``: the
        frame-rate limiter's rule, so a camera's jitter does not halve the rate)."""
        last = self._detected_at
        if not fps or last is None:
            return False
        return time_slot(timestamp, fps) == time_slot(last, fps)

    def _near_a_figure(self, timestamp: float) -> bool:
        """A confirmed track whose predicted anchor lies within its box height, plus the way it
        covers in one idle period, of a line or a zone's edge."""
        if len(self._edges[0]) == 0:
            return False
        box, speed = self.tracker.predicted(timestamp)
        if len(box) == 0:
            return False
        idle_period = 1.0 / self._idle_fps if self._idle_fps else 0.0
        margin = (box[:, 3] - box[:, 1]) + speed * idle_period
        anchors = anchor_points(box, "bottom_center")
        distance = distance_to_segments(anchors, *self._edges)
        return bool((distance.min(axis=1) <= margin).any())

    def unchanged(self, timestamp: float) -> list[CountReport]:
        """A frame the motion gate skipped: the scene is the last detected one, so the zones
        hold what they held and nothing crossed; the tracker never sees it."""
        return self.times.timed("aggregate", self._aggregate, timestamp, [])

    def _aggregate(self, timestamp: float, events: list[CountEvent]) -> list[CountReport]:
        window = math.floor(timestamp / self.aggregator.seconds)
        shared = None
        if window != self._window:
            shared, self._window = self._overlap(), window
        cells = [(e.line, e.direction, e.category.value) for e in events] + [
            (m.movement, None, m.category.value) for m in self.moved
        ]
        for cell, track_id in zip(cells, self._passers + self._movers, strict=True):
            per_object = self._passed.setdefault(track_id, {})
            per_object[self._cells[cell]] = per_object.get(self._cells[cell], 0) + 1
        reports = self.aggregator.add(timestamp, events, self._occupancy, self.moved)
        self._passers, self.moved, self._movers = [], [], []
        return [replace(report, overlap=shared) for report in reports]

    def _overlap(self) -> npt.NDArray[np.int64]:
        shared = overlap(self._passed.values(), len(self._cells))
        self._passed = {}
        return shared

    def _count(
        self, tracks: Tracks, timestamp: float
    ) -> tuple[list[CountEvent], dict[str, npt.NDArray[np.int64]]]:
        events = []
        self._passers = []
        stitched = []
        for counter in self.lines:
            events += counter.update(tracks, timestamp)
            self._passers += counter.passers
            stitched += counter.stitched
        self.moved = self.movements.update(events, self._passers, timestamp, stitched)
        self._movers = self.movements.movers
        k = self.zone_min_objects
        occupancy = {}
        for zone in self.camera.zones:
            sample = zone_occupancy(tracks, zone)
            occupancy[zone.name] = np.where(sample < k, 0, sample)  # no figure shows 1 or 2
        return events, occupancy

    def close(self) -> list[CountReport]:
        """End of the source: the open window, flagged partial."""
        shared = self._overlap()
        return [replace(report, overlap=shared) for report in self.aggregator.close()]

    def reset(self) -> None:
        """Across a gap in the stream: forget every track (ids keep increasing), keep windows."""
        self._detected_at = None
        self.tracker.reset()
        self.riders.reset()
        self.motion.reset()
        self.movements.reset()
        for counter in self.lines:
            counter.reset()


def _edges(camera: CameraConfig) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(starts, ends) of every line and every zone edge of a camera, (M, 2) each."""
    segments = [(line.start, line.end) for line in camera.lines]
    for zone in camera.zones:
        points = zone.points
        segments += list(zip(points, points[1:] + points[:1], strict=True))
    starts = np.array([a for a, _ in segments], np.float64).reshape(-1, 2)
    ends = np.array([b for _, b in segments], np.float64).reshape(-1, 2)
    return starts, ends
