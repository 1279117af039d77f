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
from edge.analytics.riders import RiderAssociation
from edge.analytics.track import ByteTracker, Tracks
from edge.config import CameraConfig, Settings
from edge.figures import StageTimes
from edge.legal.disclosure import cells_of, overlap
from edge.legal.policy import FLOOR
from edge.vision.frames import Frame
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
        self.lines = [LineCounter(line, settings.tracker.lost_seconds) for line in camera.lines]
        self.aggregator = WindowAggregator(
            camera.id,
            [line.name for line in camera.lines],
            [zone.name for zone in camera.zones],
            settings.window.seconds,
        )
        self.motion = MotionGate(settings.motion)
        self._occupancy = {zone.name: np.zeros(len(CATEGORIES), np.int64) for zone in camera.zones}
        self.times = StageTimes(STAGES)
        # The open window's passages object by object (track id -> cell -> passages), only to
        # hand the egress gate their overlap when the window closes; forgotten then.
        self._cells = {cell: i for i, cell in enumerate(cells_of(self.aggregator.line_names))}
        self._passed: dict[int, dict[int, int]] = {}
        self._passers: list[int] = []  # this frame's, in the order of its events
        self._window: int | None = None

    def process(self, timestamp: float, detections: Detections) -> list[CountReport]:
        """One frame's detections; returns the reports of any windows that closed."""
        timed = self.times.timed
        tracks = timed("track", self.tracker.update, detections, timestamp)
        tracks = timed("riders", self.riders.update, tracks)
        events, self._occupancy = timed("count", self._count, tracks, timestamp)
        return timed("aggregate", self._aggregate, timestamp, events)

    def needs_detection(self, frame: Frame) -> bool:
        """The motion gate's word, overruled while a new track waits for its confirmation."""
        return self.motion.changed(frame.image, frame.timestamp, force=not self.tracker.settled)

    def unchanged(self, timestamp: float) -> list[CountReport]:
        """A frame the motion gate skipped: the scene is the last detected one, so the zones
        hold what they held and nothing crossed; the tracker never sees it."""
        return self.times.timed("aggregate", self._aggregate, timestamp, [])

    def _aggregate(self, timestamp: float, events: list[CountEvent]) -> list[CountReport]:
        window = math.floor(timestamp / self.aggregator.seconds)
        shared = None
        if window != self._window:
            shared, self._window = self._overlap(), window
        for event, track_id in zip(events, self._passers, strict=True):
            cell = self._cells[(event.line, event.direction, event.category.value)]
            per_object = self._passed.setdefault(track_id, {})
            per_object[cell] = per_object.get(cell, 0) + 1
        self._passers = []
        reports = self.aggregator.add(timestamp, events, self._occupancy)
        return [replace(report, overlap=shared) for report in reports]

    def _overlap(self) -> npt.NDArray[np.int64]:
        shared = overlap(self._passed.values(), len(self._cells))
        self._passed = {}
        return shared

    def _count(
        self, tracks: Tracks, timestamp: float
    ) -> tuple[list[CountEvent], dict[str, npt.NDArray[np.int64]]]:
        events = []
        for counter in self.lines:
            passages = counter.update(tracks, timestamp)
            self._passers += counter.passers
            events += passages
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
        self.tracker.reset()
        self.riders.reset()
        self.motion.reset()
        for counter in self.lines:
            counter.reset()
