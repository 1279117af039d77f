"""The composition root: builds the stages from the settings and runs them over a source.

    Source -> Detector -> ByteTracker -> RiderAssociation -> LineCounter / zone_occupancy
           -> WindowAggregator -> CountReport

Frames stop at the detector; track ids stop at the counters; only ``CountReport``s leave.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from edge import __version__
from edge.aggregate import CountReport, WindowAggregator
from edge.audit import AuditLog, JsonValue
from edge.config import CameraConfig, Settings, config_sha256
from edge.counting import DIRECTIONS, CountEvent, LineCounter, zone_occupancy
from edge.detect import OnnxRuntime, YoloDetector
from edge.detections import CATEGORIES, COUNTED_CLASSES, Category, Detections
from edge.errors import EdgeError, PolicyViolation
from edge.frames import Frame
from edge.gate import CategoryName, EgressGate, GateResult, PublishedReport, Sink, startup_gate
from edge.manifest import sha256_file
from edge.motion import MotionGate
from edge.policy import Policy, load_policy
from edge.progress import Progress
from edge.riders import RiderAssociation
from edge.sinks import CollectSink
from edge.sources import open_source, prefetched
from edge.track import ByteTracker, Tracks

T = TypeVar("T")
STAGES = ("decode", "motion", "detect", "track", "riders", "count", "aggregate", "publish")


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """(p50, p95) rounded to 0.01, zeros when there is nothing yet."""
    p50, p95 = np.percentile(np.asarray(values or [0.0]), [50, 95])
    return round(float(p50), 2), round(float(p95), 2)


def build_detector(settings: Settings) -> YoloDetector:
    cfg = settings.detector
    runtime = OnnxRuntime.configured(settings.model_path(), cfg, cfg.threads)
    detector = YoloDetector(runtime, cfg.confidence, cfg.iou, cfg.max_detections)
    detector.warm_up()
    return detector


class CameraPipeline:
    """Everything after the detector for one camera. ``stage_ms`` keeps per-stage timings."""

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
        self.stage_ms: dict[str, list[float]] = {stage: [] for stage in STAGES}

    def timed(self, stage: str, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)``, its duration added to ``stage_ms[stage]``."""
        start = time.perf_counter()
        result = work(*args)
        self.stage_ms[stage].append((time.perf_counter() - start) * 1e3)
        return result

    def process(self, timestamp: float, detections: Detections) -> list[CountReport]:
        """One frame's detections; returns the reports of any windows that closed."""
        tracks = self.timed("track", self.tracker.update, detections, timestamp)
        tracks = self.timed("riders", self.riders.update, tracks)
        events, self._occupancy = self.timed("count", self._count, tracks, timestamp)
        return self.timed("aggregate", self.aggregator.add, timestamp, events, self._occupancy)

    def needs_detection(self, frame: Frame) -> bool:
        """The motion gate's word, overruled while a new track waits for its confirmation."""
        return self.motion.changed(frame.image, frame.timestamp, force=not self.tracker.settled)

    def unchanged(self, timestamp: float) -> list[CountReport]:
        """A frame the motion gate skipped: the scene is the last detected one, so the zones
        hold what they held and nothing crossed; the tracker never sees it."""
        return self.timed("aggregate", self.aggregator.add, timestamp, [], self._occupancy)

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


@dataclass
class ClipResult:
    """What one pass over a recorded clip produced: aggregate figures only."""

    source: str
    camera_id: str
    model: str
    providers: list[str]
    line_names: list[str] = field(default_factory=list)
    zone_names: list[str] = field(default_factory=list)
    frames: int = 0
    skipped: int = 0  # frames the motion gate kept from the detector (included in ``frames``)
    duration_s: float = 0.0
    wall_s: float = 0.0
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    detections: dict[Category, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    classes: dict[str, int] = field(
        default_factory=lambda: {name: 0 for name, _ in COUNTED_CLASSES.values()}
    )
    categories: list[CategoryName] = field(
        default_factory=lambda: ["pedestrian", "bike", "vehicle"]
    )
    windows: list[PublishedReport] = field(default_factory=list)
    interrupted: bool = False
    stopped_by_policy: str = ""
    reports_dropped: int = 0

    def line_totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """Passages over the whole clip, summed over the published windows."""
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
        detect_p50, detect_p95 = percentiles(self.stage_ms.get("detect", []))
        return {
            "source": self.source,
            "camera": self.camera_id,
            "frames": self.frames,
            "frames_detected": self.frames - self.skipped,
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
                "stages_ms_mean": {
                    stage: round(float(np.mean(ms)), 3) if ms else 0.0
                    for stage, ms in self.stage_ms.items()
                },
            },
            "detections": {cat.value: n for cat, n in self.detections.items()},
            "detections_by_class": dict(self.classes),
            "lines": self.line_totals(),
            "zones": self.zone_totals(),
            "windows": [report.model_dump() for report in self.windows],
        }


def audit_start(
    audit: AuditLog,
    settings: Settings,
    policy: Policy,
    detector: YoloDetector,
    cameras: Sequence[CameraConfig],
    decision: GateResult,
) -> None:
    """Record who runs what under which rules; a refusal is recorded, then raised."""
    facts: dict[str, JsonValue] = {
        "software": __version__,
        "policy": policy.name,
        "policy_sha256": policy.sha256,
        "config_sha256": config_sha256(settings),
        "model": detector.info.path.name,
        "model_sha256": sha256_file(detector.info.path),
        "cameras": [camera.id for camera in cameras],
    }
    if not decision.allowed:
        refusals: list[JsonValue] = [f"{d.rule}: {d.detail}" for d in decision.refusals]
        audit.append("start_refused", **facts, refusals=refusals)
        decision.raise_if_refused()
    audit.append("start", **facts, checks=[d.rule for d in decision.decisions])


def count_clip(
    camera: CameraConfig,
    settings: Settings,
    detector: YoloDetector,
    where: str = "camera",
    progress: bool = True,
    today: Callable[[], dt.date] = dt.date.today,
    sinks: Sequence[Sink] = (),
    origin: float = 0.0,
    audit: AuditLog | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
) -> ClipResult:
    """Run the whole pipeline over a recorded clip, under the legal gate, first frame to last.

    Before any frame is read the start-up gate checks configuration, policy and model, and the
    audit log records the decision; a refusal raises ``PolicyViolation``. Every window's report
    leaves through the egress gate only. An interrupt, or the policy running out, stops the run
    early but still closes the open window (partial) and returns everything published so far.
    ``where`` names the camera in error messages (``cameras[0]``); ``sinks`` receive the admitted
    reports besides the result; ``origin`` is the timestamp of the clip's first frame; ``audit``
    is the run's open audit log (one writer per file), else the settings' is opened here.
    ``max_frames`` ends the clip early (a benchmark's sample); ``on_frame`` is called after each
    frame (a benchmark's probe).
    """
    policy = load_policy(settings.policy.path())
    decision = startup_gate(settings, policy, [camera], detector.info, today())
    with ExitStack() as stack:
        if audit is None:
            audit = stack.enter_context(AuditLog(settings.audit.path))
        audit_start(audit, settings, policy, detector, [camera], decision)
        collected = CollectSink()
        notice = camera.notice_url or settings.deployment.notice_url or ""
        gate = EgressGate(policy, audit, [collected, *sinks], notice)
        try:
            result = _run(
                camera,
                settings,
                detector,
                where,
                progress,
                gate,
                today,
                origin,
                max_frames,
                on_frame,
            )
        except EdgeError as err:  # e.g. an unreadable clip: say why the run stopped
            audit.append("stop", error=str(err), frames_persisted=0)
            raise
        result.windows = collected.reports
        result.reports_dropped = gate.dropped
        result.categories = [c for c in result.categories if c in policy.allowed_categories]
        audit.append(
            "stop",
            frames_processed=result.frames,
            frames_persisted=0,  # no code path writes a frame: pixels stop at the detector
            reports_published=gate.published,
            reports_dropped=gate.dropped,
            interrupted=result.interrupted,
            stopped_by_policy=result.stopped_by_policy,
        )
    return result


def _run(
    camera: CameraConfig,
    settings: Settings,
    detector: YoloDetector,
    where: str,
    progress: bool,
    gate: EgressGate,
    today: Callable[[], dt.date],
    origin: float,
    max_frames: int | None,
    on_frame: Callable[[], None] | None,
) -> ClipResult:
    source = open_source(camera.source, camera.id, camera.target_fps, origin)
    camera.check_fits(source.frame_size, where)
    pipeline = CameraPipeline(camera, settings)
    result = ClipResult(
        source=camera.source,
        camera_id=camera.id,
        model=detector.info.path.name,
        providers=detector.runtime.providers,
        line_names=[line.name for line in camera.lines],
        zone_names=[zone.name for zone in camera.zones],
        stage_ms=pipeline.stage_ms,
    )
    total = source.expected_frames
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    bar = Progress(total, camera.id, enabled=progress)
    class_names = {cid: name for cid, (name, _) in COUNTED_CLASSES.items()}

    def publish(reports: list[CountReport]) -> None:
        for report in reports:
            gate.publish(report, today())

    frames = prefetched(source)
    start = time.perf_counter()
    last_timestamp = 0.0
    try:
        while result.frames != max_frames:
            frame = pipeline.timed("decode", next, frames, None)
            if frame is None:
                break
            if pipeline.timed("motion", pipeline.needs_detection, frame):
                (detections,) = pipeline.timed("detect", detector.detect, [frame.image])
                for cat, n in detections.count_by_category().items():
                    result.detections[cat] += n
                for cid, n in zip(*np.unique(detections.class_id, return_counts=True), strict=True):
                    result.classes[class_names[int(cid)]] += int(n)
                reports = pipeline.process(frame.timestamp, detections)
            else:
                result.skipped += 1
                reports = pipeline.unchanged(frame.timestamp)
            pipeline.timed("publish", publish, reports)
            result.frames += 1
            last_timestamp = frame.timestamp
            bar.advance()
            if on_frame is not None:
                on_frame()
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: keep what was counted, close the window
        result.interrupted = True
    except PolicyViolation as stop:  # the policy ran out mid-run: stop processing now
        result.stopped_by_policy = str(stop)
    finally:
        frames.close()  # joins the decoding thread before the capture goes
        source.close()
        bar.close()
    if not result.stopped_by_policy:
        publish(pipeline.close())
    result.wall_s = time.perf_counter() - start
    result.duration_s = last_timestamp - origin + 1 / source.fps if result.frames else 0.0
    return result
