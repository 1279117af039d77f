"""One camera's analytics after the detector, and its figures.

    Detections -> ByteTracker -> RiderAssociation -> LineCounter / zone_occupancy
               -> WindowAggregator -> CountReport

Track ids stop at the counters; only ``CountReport``s leave. The runner (``edge.runner``)
feeds it frame by frame; ``edge.app`` builds it from the settings.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge.analytics.aggregate import CountReport, WindowAggregator
from edge.analytics.counting import CountEvent, LineCounter, zone_occupancy
from edge.analytics.detections import CATEGORIES, Detections
from edge.analytics.riders import RiderAssociation
from edge.analytics.track import ByteTracker, Tracks
from edge.config import CameraConfig, Settings
from edge.figures import StageTimes
from edge.vision.frames import Frame
from edge.vision.motion import MotionGate

STAGES = ("decode", "motion", "detect", "track", "riders", "count", "aggregate", "publish")


class CameraPipeline:
    """Everything after the detector for one camera; ``times`` holds every stage's timings,
    the runner's (decode, motion, detect, publish) included."""

    def __init__(self, camera: CameraConfig, settings: Settings) -> None:
        self.camera = camera
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

    def process(self, timestamp: float, detections: Detections) -> list[CountReport]:
        """One frame's detections; returns the reports of any windows that closed."""
        timed = self.times.timed
        tracks = timed("track", self.tracker.update, detections, timestamp)
        tracks = timed("riders", self.riders.update, tracks)
        events, self._occupancy = timed("count", self._count, tracks, timestamp)
        return timed("aggregate", self.aggregator.add, timestamp, events, self._occupancy)

    def needs_detection(self, frame: Frame) -> bool:
        """The motion gate's word, overruled while a new track waits for its confirmation."""
        return self.motion.changed(frame.image, frame.timestamp, force=not self.tracker.settled)

    def unchanged(self, timestamp: float) -> list[CountReport]:
        """A frame the motion gate skipped: the scene is the last detected one, so the zones
        hold what they held and nothing crossed; the tracker never sees it."""
        return self.times.timed("aggregate", self.aggregator.add, timestamp, [], self._occupancy)

    def _count(
        self, tracks: Tracks, timestamp: float
    ) -> tuple[list[CountEvent], dict[str, npt.NDArray[np.int64]]]:
        events = [event for counter in self.lines for event in counter.update(tracks, timestamp)]
        occupancy = {zone.name: zone_occupancy(tracks, zone) for zone in self.camera.zones}
        return events, occupancy

    def close(self) -> list[CountReport]:
        """End of the source: the open window, flagged partial."""
        return self.aggregator.close()

    def reset(self) -> None:
        """Across a gap in the stream: forget every track (ids keep increasing), keep windows."""
        self.tracker.reset()
        self.riders.reset()
        self.motion.reset()
        for counter in self.lines:
            counter.reset()
