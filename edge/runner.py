"""The one frame loop: recordings and live cameras, for ``edge count``, ``edge run``,
``edge bench`` and the live benchmark alike.

Every camera has a feed (``edge.vision.frames.FrameFeed``) and its own pipeline; one detector serves
them round-robin. Each frame goes through the motion gate, then the detector or the "unchanged"
path, then tracking, counting and aggregation; every closed window leaves through the egress
gate. A model with a dynamic batch gets one frame of every camera that needs detection per call;
the fixed batch-1 models take one frame at a time, each camera's taken just before its turn.

The loop ends when every recording has ended, on SIGINT / SIGTERM (``KeyboardInterrupt``) or
``stop()``, or when the policy runs out (``PolicyViolation`` from the gate). Open windows are
then closed as partial, unless the policy ran out: nothing more may be published under it.

Live cameras of ``edge run`` (a ``store`` is given, the feed is live) never publish a partial
window: their open window is checkpointed about once a second (``edge.publish.state``) and
saved at stop; the next run continues it if it is still the current window, or publishes it
at start-up once it is over. A window left under another policy is withheld (audited): its
counts were made under rules the policy in force cannot vouch for. Another window length or
other lines and zones: the window is closed as its own report under the parameters it was
counted with, and the egress gate judges it like any other. With a ``ledger``, every report
is claimed before the gate sends it: a second, different report of a window is refused.

Everything the loop keeps is bounded: per-stage timings and frame ages in fixed-size rings
(``edge.figures``), counts as integers; ``stats()`` reads them in constant time from any thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.analytics.aggregate import CountReport, WindowAggregator
from edge.analytics.counting import DIRECTIONS
from edge.analytics.detections import CATEGORIES, COUNTED_CLASSES, Category, Detections
from edge.analytics.pipeline import STAGES, CameraPipeline
from edge.camera_lock import normalised_source
from edge.config import CameraConfig, Settings
from edge.detect.protocol import Detector
from edge.detect.roi import Region, region_of_interest
from edge.errors import ConfigError, DisclosureRefused, PolicyViolation, PublishError
from edge.figures import Recent, StageTimes
from edge.legal.gate import EgressGate
from edge.publish.state import ReportLedger, WindowStore
from edge.schema import CATEGORY_NAMES, CameraStats, CategoryName, PublishedReport
from edge.vision.frames import Frame, FrameFeed
from edge.vision.live import redact
from edge.vision.sources import Replay

IDLE_SLEEP_S = 0.005  # no live camera had a new frame: wait this long before asking again
CHECKPOINT_S = 1.0  # a live camera's open window is saved at most this often (and at closes)
log = logging.getLogger(__name__)
CLASS_NAMES = {cid: name for cid, (name, _) in COUNTED_CLASSES.items()}


@dataclass
class CameraResult:
    """What one camera's run produced: aggregate figures only, bounded whatever its length.

    ``windows`` holds the published reports only when the caller collects them (``edge count``);
    a months-long run keeps their number, ``reports_published``.
    """

    source: str  # credentials redacted
    camera_id: str
    model: str
    providers: list[str]
    line_names: list[str] = field(default_factory=list)
    zone_names: list[str] = field(default_factory=list)
    movement_names: list[str] = field(default_factory=list)
    frames: int = 0
    skipped: int = 0  # frames the motion gate kept from the detector (included in ``frames``)
    frames_missing: int = 0  # a damaged clip: frames its header promised and never decoded
    duration_s: float = 0.0  # stream time covered
    wall_s: float = 0.0
    times: StageTimes = field(default_factory=lambda: StageTimes(STAGES))
    age_ms: Recent = field(default_factory=Recent)  # live: capture -> detector, recent frames
    detections: dict[Category, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    classes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CLASS_NAMES.values(), 0))
    categories: list[CategoryName] = field(default_factory=lambda: list(CATEGORY_NAMES))
    windows: list[PublishedReport] = field(default_factory=list)
    reports_published: int = 0
    reports_dropped: int = 0
    interrupted: bool = False
    stopped_by_policy: str = ""

    def count_detections(self, detections: Detections) -> None:
        for cat, n in detections.count_by_category().items():
            self.detections[cat] += n
        for cid in detections.class_id.tolist():
            self.classes[CLASS_NAMES[cid]] += 1

    def line_totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """Passages over the whole run, summed over the collected windows."""
        totals: dict[str, dict[str, dict[str, int]]] = {
            name: {d: dict.fromkeys(self.categories, 0) for d in DIRECTIONS}
            for name in self.line_names
        }
        for report in self.windows:
            for name, counts in report.lines.items():
                for d, per in counts.items():
                    for c, n in per.items():
                        totals[name][d][c] += n
        return totals

    def movement_totals(self) -> dict[str, dict[str, int]]:
        """Objects per turning movement over the whole run, summed over the collected windows."""
        totals: dict[str, dict[str, int]] = {
            name: dict.fromkeys(self.categories, 0) for name in self.movement_names
        }
        for report in self.windows:
            for name, per in report.movement_counts.items():
                for c, n in per.items():
                    totals[name][c] += n
        return totals

    def zone_totals(self) -> dict[str, dict[str, dict[str, float]]]:
        """Mean over all frames (windows weighted by their frames) and maximum."""
        frames = max(sum(r.frames for r in self.windows), 1)
        return {
            name: {
                c: {
                    "mean": round(
                        sum(r.zones[name][c].mean * r.frames for r in self.windows) / frames, 3
                    ),
                    "max": max((r.zones[name][c].max for r in self.windows), default=0),
                }
                for c in self.categories
            }
            for name in self.zone_names
        }

    def to_json(self) -> dict[str, Any]:
        detect_p50, detect_p95 = self.times["detect"].percentiles()
        return {
            "source": self.source,
            "camera": self.camera_id,
            "frames": self.frames,
            "frames_detected": self.frames - self.skipped,
            "frames_missing": self.frames_missing,
            "duration_s": round(self.duration_s, 3),
            "interrupted": self.interrupted,
            "stopped_by_policy": self.stopped_by_policy,
            "model": self.model,
            "providers": self.providers,
            "timing": {
                "wall_s": round(self.wall_s, 3),
                "fps": round(self.frames / self.wall_s, 2) if self.wall_s > 0 else 0.0,
                "detector_ms_p50": detect_p50,
                "detector_ms_p95": detect_p95,
                "stages_ms_mean": self.times.mean_per_call(),
            },
            "detections": {cat.value: n for cat, n in self.detections.items()},
            "detections_by_class": dict(self.classes),
            "lines": self.line_totals(),
            "zones": self.zone_totals(),
            **({"movements": self.movement_totals()} if self.movement_names else {}),
            "windows": [report.model_dump() for report in self.windows],
        }


class _Camera:
    """One camera as the loop sees it: its feed, pipeline, result and where it stands."""

    def __init__(
        self,
        camera: CameraConfig,
        feed: FrameFeed,
        settings: Settings,
        detector: Detector,
        zone_min_objects: int,
        persistent: bool = False,
    ) -> None:
        self.camera = camera
        self.feed = feed
        self.persistent = persistent  # its open window survives a restart (live, with a store)
        self.stream = normalised_source(camera.source) if persistent else ""
        self.saved_at = 0.0  # monotonic time of the last checkpoint
        self.pipeline = CameraPipeline(camera, settings, zone_min_objects)
        self.result = CameraResult(
            source=redact(camera.source),
            camera_id=camera.id,
            model=detector.info.path.name,
            providers=detector.providers,
            line_names=[line.name for line in camera.lines],
            zone_names=[zone.name for zone in camera.zones],
            movement_names=[movement.name for movement in camera.movements],
            times=self.pipeline.times,
        )
        self.margin = settings.detector.region_margin
        self.region: Region | None = None  # what the detector sees, set at the first frame
        self.taken = 0
        self.gaps_seen = 0
        self.first_timestamp: float | None = None
        self.last_timestamp = 0.0

    def stats(self, started: float) -> CameraStats:
        """Health figures, from bounded state only: O(1) in the run's length."""
        health, result = self.feed.health, self.result
        wall = time.monotonic() - started
        detect, age = result.times["detect"].percentiles(), result.age_ms.percentiles()
        return CameraStats(
            frames_received=health.frames_received,
            frames_processed=result.frames,
            frames_dropped=health.frames_dropped,
            fps=min(round(result.frames / wall, 2), 10_000.0) if wall > 0 else 0.0,
            detector_ms_p50=detect[0],
            detector_ms_p95=detect[1],
            frame_age_ms_p50=age[0],
            frame_age_ms_p95=age[1],
            reconnects=health.reconnects,
            stalls=health.stalls,
            offline_s=round(health.offline_s(time.time()), 3),
            online=health.online,
        )


class Runner:
    """Runs cameras through one detector until their recordings end or the run is stopped.

    ``on_frame`` is called after each processed frame (a benchmark's probe, a progress bar);
    ``max_frames`` ends each camera after that many frames (a benchmark's sample).
    """

    def __init__(
        self,
        cameras: Sequence[tuple[CameraConfig, FrameFeed]],
        settings: Settings,
        detector: Detector,
        gate: EgressGate,
        *,
        today: Callable[[], dt.date] = dt.date.today,
        on_frame: Callable[[], None] | None = None,
        max_frames: int | None = None,
        store: WindowStore | None = None,
        ledger: ReportLedger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        persist = store is not None
        self.cameras = [
            _Camera(camera, feed, settings, detector, gate.zone_min_objects, persist and feed.live)
            for camera, feed in cameras
        ]
        self.store = store
        self.ledger = ledger
        self.clock = clock  # wall clock: which window is the current one at start-up
        self.detector = detector
        self.gate = gate
        self.today = today
        self.on_frame = on_frame
        self.max_frames = max_frames
        self.started = time.monotonic()
        self._stopping = threading.Event()
        # Dynamic batch: one call for every camera due this round; fixed batch 1: one at a time.
        self._batch = detector.info.batch is None

    @property
    def results(self) -> list[CameraResult]:
        return [cam.result for cam in self.cameras]

    def stats(self) -> dict[str, CameraStats]:
        """Each camera's health figures, safe to call from another thread."""
        return {cam.camera.id: cam.stats(self.started) for cam in self.cameras}

    def stop(self) -> None:
        """End the loop after the current round, as an interrupt would (any thread)."""
        self._stopping.set()

    def run(self) -> list[CameraResult]:
        """Start every feed, loop, close every feed and the open windows; the results."""
        self.started = time.monotonic()
        start = time.perf_counter()
        interrupted, stopped_by_policy = False, ""
        try:
            for cam in self.cameras:
                if cam.persistent:
                    self._restore(cam)
            for cam in self.cameras:
                cam.feed.start()
            self._loop()
            interrupted = self._stopping.is_set()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what was counted, close the windows
            interrupted = True
        except (DisclosureRefused, ConfigError):  # geometry at a first frame: a refused start
            raise
        except PolicyViolation as stop:  # the policy ran out mid-run: stop publishing now
            stopped_by_policy = str(stop)
        finally:
            for cam in self.cameras:
                cam.feed.close()  # joins the reader before the capture goes
        for cam in self.cameras:
            result = cam.result
            if cam.persistent:  # never a partial report: the next run continues the window
                self._checkpoint(cam)
            elif not stopped_by_policy:
                self._publish(cam, cam.pipeline.close())
            result.interrupted, result.stopped_by_policy = interrupted, stopped_by_policy
            if isinstance(cam.feed, Replay):
                result.frames_missing = cam.feed.frames_missing
            result.wall_s = time.perf_counter() - start
            if cam.first_timestamp is not None:
                period = 1.0 / cam.feed.fps if cam.feed.fps else 0.0
                result.duration_s = cam.last_timestamp - cam.first_timestamp + period
        return self.results

    def _loop(self) -> None:
        active = list(self.cameras)
        while active and not self._stopping.is_set():
            due: list[tuple[_Camera, Frame]] = []
            busy = False
            for cam in list(active):  # round-robin over each camera's next frame
                frame = cam.pipeline.times.timed("decode", cam.feed.take)
                if frame is None:
                    if cam.feed.finished:
                        active.remove(cam)
                    continue
                busy = True
                if cam.taken == 0:  # the frame's size is known now: the geometry rules
                    size = (frame.image.shape[1], frame.image.shape[0])
                    if cam.feed.live:  # a recording's was checked when it opened (edge.app)
                        cam.camera.check_fits(size, f"cameras[{self.cameras.index(cam)}]")
                    self.gate.check_frame(cam.camera, size)
                    if cam.margin is not None:
                        cam.region = region_of_interest(cam.camera, size, cam.margin)
                cam.taken += 1
                if cam.taken == self.max_frames:
                    active.remove(cam)
                if cam.feed.health.reconnects != cam.gaps_seen:
                    cam.gaps_seen = cam.feed.health.reconnects
                    cam.pipeline.reset()  # a gap: tracks from before it must not count again
                if cam.pipeline.times.timed("motion", cam.pipeline.needs_detection, frame):
                    due.append((cam, frame))
                    if not self._batch:
                        self._detect(due)
                        due = []
                else:
                    cam.result.skipped += 1
                    self._done(cam, frame, cam.pipeline.unchanged(frame.timestamp))
            if due:
                self._detect(due)
            if not busy:
                time.sleep(IDLE_SLEEP_S)

    def _detect(self, due: list[tuple[_Camera, Frame]]) -> None:
        started = time.time()
        t0 = time.perf_counter()
        images = [cam.region.crop(f.image) if cam.region else f.image for cam, f in due]
        found = self.detector.detect(images)
        per_frame_ms = (time.perf_counter() - t0) * 1e3 / len(due)
        for (cam, frame), detections in zip(due, found, strict=True):
            if cam.region:
                detections = cam.region.to_frame(detections)
            cam.pipeline.times["detect"].add(per_frame_ms)
            if cam.feed.live:
                cam.result.age_ms.add(max(started - frame.timestamp, 0.0) * 1e3)
            cam.result.count_detections(detections)
            self._done(cam, frame, cam.pipeline.process(frame.timestamp, detections))

    def _done(self, cam: _Camera, frame: Frame, reports: list[CountReport]) -> None:
        cam.pipeline.times.timed("publish", self._publish, cam, reports)
        if cam.persistent and (reports or time.monotonic() - cam.saved_at >= CHECKPOINT_S):
            self._checkpoint(cam)
        cam.result.frames += 1
        if cam.first_timestamp is None:
            cam.first_timestamp = frame.timestamp
        cam.last_timestamp = frame.timestamp
        if self.on_frame is not None:
            self.on_frame()

    def _restore(self, cam: _Camera) -> None:
        """Windows an earlier run left open for this camera: continue the current one, publish
        those that are over (or were counted with other lines, zones or window length), and
        withhold, audited, those counted under another policy."""
        assert self.store is not None
        aggregator = cam.pipeline.aggregator
        current = math.floor(self.clock() / aggregator.seconds)
        resumed = False
        for owner, policy, state in self.store.load(cam.camera.id, cam.stream):
            if policy != self.store.policy_sha256:
                self.store.withhold(owner, state, "policy changed between runs")
            elif not resumed and state.index == current and aggregator.fits(state):
                aggregator.resume(state)
                resumed = True
                log.info("%s: window at %s continued from the last run", cam.camera.id, state.start)
                if owner == cam.camera.id:
                    continue  # the checkpoint below replaces the row
            else:
                self._publish(cam, [WindowAggregator.report_of(cam.camera.id, state)])
            self.store.forget(owner)
        if resumed:
            self._checkpoint(cam)

    def _checkpoint(self, cam: _Camera) -> None:
        """Save the open window; a failure is logged and counting goes on (the window is then
        published at its end as usual; only a restart before then would lose it)."""
        assert self.store is not None
        cam.saved_at = time.monotonic()
        state = cam.pipeline.aggregator.snapshot()
        if state is None:
            return
        try:
            self.store.save(cam.camera.id, cam.stream, state)
        except PublishError as err:
            log.warning("%s", err)

    def _publish(self, cam: _Camera, reports: list[CountReport]) -> None:
        for report in reports:
            if self.ledger is not None and self.ledger.claim(self.gate.payload(report)):
                cam.result.reports_dropped += 1  # refused and audited by the ledger
                continue
            if self.gate.publish(report, self.today()) is None:
                cam.result.reports_dropped += 1
            else:
                cam.result.reports_published += 1
