"""``edge run``: every configured camera through the pipeline, out to the configured sinks.

Live cameras (RTSP, HTTP MJPEG, USB) are read by one thread each (``edge.live``) and served to
one shared detector round-robin, newest frame first, each at most at its ``target_fps``; one
camera's failure never stops the others, and its tracks are reset across a gap so a reconnect
never inflates counts. Recorded clips are replayed one after the other, their first frame at the
run's start so windows fall on real minutes. The run ends when the clips end, or on SIGINT /
SIGTERM: open windows are closed as partial, the spool flushed as far as the broker allows
within a second, cameras and site marked ``offline``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from edge.aggregate import CountReport
from edge.audit import AuditLog
from edge.config import CameraConfig, Settings
from edge.detect import YoloDetector
from edge.errors import ConfigError, PolicyViolation
from edge.frames import Frame
from edge.gate import CameraStats, EgressGate, NoticeMessage, Sink, StatsMessage, iso, startup_gate
from edge.health import Heartbeat, HeartbeatWriter
from edge.live import LiveSource, is_live, redact
from edge.mqtt import MqttPublisher, home_assistant_discovery
from edge.notice import render_notice
from edge.pipeline import (
    CameraPipeline,
    ClipResult,
    audit_start,
    build_detector,
    count_clip,
    percentiles,
)
from edge.policy import Policy, load_policy
from edge.sinks import JsonlSink, StdoutSink
from edge.spool import Spool

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 1.0  # at stop; what the broker has not taken by then stays spooled
IDLE_SLEEP_S = 0.005


def clip_stats(result: ClipResult) -> CameraStats:
    detect = percentiles(result.stage_ms.get("detect", []))
    return CameraStats(
        frames_received=result.frames,
        frames_processed=result.frames,
        frames_dropped=0,
        fps=round(result.frames / result.wall_s, 2) if result.wall_s > 0 else 0.0,
        detector_ms_p50=detect[0],
        detector_ms_p95=detect[1],
        frame_age_ms_p50=0.0,
        frame_age_ms_p95=0.0,
        reconnects=0,
        stalls=0,
        offline_s=0.0,
        online=not result.interrupted,
    )


def run(settings: Settings, health_file: Path | None = None) -> list[ClipResult]:
    """Run every camera; returns one result per camera (what was published is in the sinks).
    With ``health_file``, a heartbeat is written there every few seconds (``edge.health``)."""
    live = [is_live(camera.source) for camera in settings.cameras]
    if any(live) and not all(live):
        raise ConfigError(["cameras: mix of live streams and recorded clips; run them apart"])
    policy = load_policy(settings.policy.path())
    detector = build_detector(settings)
    decision = startup_gate(settings, policy, settings.cameras, detector.info, dt.date.today())
    decision.raise_if_refused()  # before any connection; recorded in the audit log below
    with ExitStack() as stack:
        audit = stack.enter_context(AuditLog(settings.audit.path))  # one writer for the run
        sinks, publisher = _sinks(settings, policy, audit, stack)
        stats: dict[str, CameraStats] = {}
        results: list[ClipResult] = []
        if publisher is not None:
            _start_stats(settings, publisher, stats, results, stack)
        if health_file is not None:
            _start_heartbeat(health_file, settings, publisher, stats, results, stack)
        if all(live) and settings.cameras:
            audit_start(audit, settings, policy, detector, settings.cameras, decision)
            _run_live(settings, policy, detector, audit, sinks, publisher, stats, results)
        else:
            for index, camera in enumerate(settings.cameras):
                result = count_clip(
                    camera, settings, detector, f"cameras[{index}]", progress=False,
                    sinks=sinks, origin=time.time(), audit=audit,
                )  # fmt: skip
                results.append(result)
                stats[camera.id] = clip_stats(result)
                if publisher is not None:
                    publisher.set_camera_status(camera.id, "offline")
                if result.interrupted or result.stopped_by_policy:
                    break
    return results


def _sinks(
    settings: Settings, policy: Policy, audit: AuditLog, stack: ExitStack
) -> tuple[list[Sink], MqttPublisher | None]:
    sinks: list[Sink] = []
    if settings.sinks.stdout:
        sinks.append(StdoutSink())
    if settings.sinks.jsonl is not None:
        jsonl = JsonlSink(settings.sinks.jsonl)
        stack.callback(jsonl.close)
        sinks.append(jsonl)
    if not settings.mqtt.enabled:
        return sinks, None
    spool = Spool(
        settings.spool.path,
        settings.spool.max_reports,
        policy.retention.spool_days * 86400.0,
        audit,
    )
    stack.callback(spool.close)
    notice = NoticeMessage(
        schema_version=1,
        policy=policy.name,
        policy_sha256=policy.sha256,
        # the start-up gate made sure every camera has a notice, its own or the site's
        notice_url=settings.deployment.notice_url
        or next(c.notice_url for c in settings.cameras if c.notice_url),
        notice=render_notice(settings.deployment, policy, settings.cameras),
    )
    categories = [c.value for c in policy.allowed_categories]
    discovery = (
        home_assistant_discovery(settings.mqtt, settings.cameras, categories)
        if settings.mqtt.home_assistant
        else []
    )
    publisher = MqttPublisher(
        settings.mqtt, spool, [c.id for c in settings.cameras], notice, discovery
    )
    publisher.start()
    stack.callback(publisher.stop, FLUSH_TIMEOUT_S)
    sinks.append(publisher)
    return sinks, publisher


def _start_stats(
    settings: Settings,
    publisher: MqttPublisher,
    stats: dict[str, CameraStats],
    results: list[ClipResult],
    stack: ExitStack,
) -> None:
    """Publish health every ``stats_interval_s`` from what the run keeps up to date."""

    def publish() -> None:
        message = StatsMessage(
            schema_version=1,
            time=iso(time.time()),
            cameras=dict(stats),
            spool_depth=publisher.spool.depth,
            reports_published=sum(len(r.windows) for r in results),
            reports_dropped=sum(r.reports_dropped for r in results),
        )
        log.debug("stats %s", message.model_dump_json())
        publisher.publish_stats(message)

    stopping = threading.Event()

    def tick() -> None:
        while not stopping.wait(settings.mqtt.stats_interval_s):
            publish()

    threading.Thread(target=tick, name="stats", daemon=True).start()
    stack.callback(publish)  # last figures at stop (runs after the ticker is told to stop)
    stack.callback(stopping.set)


def _start_heartbeat(
    path: Path,
    settings: Settings,
    publisher: MqttPublisher | None,
    stats: dict[str, CameraStats],
    results: list[ClipResult],
    stack: ExitStack,
) -> None:
    """Figures for ``edge health`` from what the run keeps up to date (clips: once each ends)."""

    def figures() -> Heartbeat:
        return Heartbeat(
            time=time.time(),
            pid=os.getpid(),
            cameras=len(settings.cameras),
            cameras_online=sum(1 for s in list(stats.values()) if s.online),
            frames_processed=sum(r.frames for r in list(results)),
            spool_depth=publisher.spool.depth if publisher is not None else None,
        )

    writer = HeartbeatWriter(path, figures)
    writer.start()
    stack.callback(writer.stop)  # before the spool closes: callbacks run last-in first-out


class _LiveCamera:
    """One live camera's reader, pipeline and figures, as the scheduler sees it."""

    def __init__(
        self,
        camera: CameraConfig,
        settings: Settings,
        on_status: Callable[[str, bool], None],
    ) -> None:
        self.camera = camera
        self.source = LiveSource(
            camera.source,
            camera.id,
            transport=camera.transport,
            stall_s=camera.stall_seconds,
            on_status=on_status,
        )
        self.pipeline = CameraPipeline(camera, settings)
        self.period = 1.0 / camera.target_fps if camera.target_fps else 0.0
        self.last_processed = -1e18
        self.reconnects_seen = 0
        self.skipped = 0
        self.age_ms: list[float] = []
        self.started = time.monotonic()
        self.result = ClipResult(
            source=redact(camera.source),
            camera_id=camera.id,
            model="",
            providers=[],
            line_names=[line.name for line in camera.lines],
            zone_names=[zone.name for zone in camera.zones],
            stage_ms=self.pipeline.stage_ms,
        )

    def stats(self) -> CameraStats:
        health, result = self.source.health, self.result
        wall = time.monotonic() - self.started
        detect, age = percentiles(result.stage_ms["detect"]), percentiles(self.age_ms[-1000:])
        return CameraStats(
            frames_received=health.frames_received,
            frames_processed=result.frames,
            frames_dropped=health.frames_dropped + self.skipped,
            fps=round(result.frames / wall, 2) if wall > 0 else 0.0,
            detector_ms_p50=detect[0],
            detector_ms_p95=detect[1],
            frame_age_ms_p50=age[0],
            frame_age_ms_p95=age[1],
            reconnects=health.reconnects,
            stalls=health.stalls,
            offline_s=round(health.offline_s(time.time()), 3),
            online=health.online,
        )


def _run_live(
    settings: Settings,
    policy: Policy,
    detector: YoloDetector,
    audit: AuditLog,
    sinks: list[Sink],
    publisher: MqttPublisher | None,
    stats: dict[str, CameraStats],
    results: list[ClipResult],
) -> None:
    """Serve every live camera until SIGINT/SIGTERM; ``results`` fills in as reports go out."""
    gate = EgressGate(policy, audit, sinks, settings.deployment.notice_url or "")

    def on_status(camera_id: str, online: bool) -> None:
        if publisher is not None:
            publisher.set_camera_status(camera_id, "online" if online else "offline")

    cameras = [_LiveCamera(c, settings, on_status) for c in settings.cameras]
    results.extend(cam.result for cam in cameras)

    def publish(cam: _LiveCamera, report: CountReport) -> None:
        admitted = gate.publish(report, dt.date.today())
        if admitted is not None:
            cam.result.windows.append(admitted)
        cam.result.reports_dropped = gate.dropped

    # A model with a dynamic batch gets one frame of every due camera per call; the fixed
    # batch-1 models take one frame at a time, each camera's taken just before its turn.
    batch = detector.info.batch is None

    def process(due: list[tuple[_LiveCamera, Frame]]) -> None:
        started = time.time()
        t0 = time.perf_counter()
        found = detector.detect([frame.image for _, frame in due])
        per_frame_ms = (time.perf_counter() - t0) * 1e3 / len(due)
        for (cam, frame), detections in zip(due, found, strict=True):
            cam.pipeline.stage_ms["detect"].append(per_frame_ms)
            cam.age_ms.append((started - frame.timestamp) * 1e3)
            for report in cam.pipeline.process(frame.timestamp, detections):
                publish(cam, report)
            cam.result.frames += 1
            stats[cam.camera.id] = cam.stats()

    for cam in cameras:
        cam.source.start()
    interrupted, stopped_by_policy = False, ""
    try:
        while True:
            due, busy = [], False
            for cam in cameras:  # round-robin over the newest frame of each camera
                frame = cam.source.take()
                if frame is None:
                    continue
                if frame.timestamp - cam.last_processed < cam.period:
                    cam.skipped += 1
                    continue
                if cam.source.health.reconnects != cam.reconnects_seen:
                    cam.reconnects_seen = cam.source.health.reconnects
                    cam.pipeline.reset()  # a gap: tracks from before it must not count again
                cam.last_processed = frame.timestamp
                due.append((cam, frame))
                busy = True
                if not batch:  # one frame at a time: the next camera's frame is taken fresh
                    process(due)
                    due = []
            if due:
                process(due)
            if not busy:
                time.sleep(IDLE_SLEEP_S)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM
        interrupted = True
    except PolicyViolation as stop:  # the policy ran out
        stopped_by_policy = str(stop)
    finally:
        for cam in cameras:
            cam.source.stop(timeout=0.2)
    if not stopped_by_policy:
        for cam in cameras:
            for report in cam.pipeline.close():
                publish(cam, report)
    for cam in cameras:
        cam.result.interrupted = interrupted
        cam.result.stopped_by_policy = stopped_by_policy
        stats[cam.camera.id] = cam.stats()
        on_status(cam.camera.id, False)
    audit.append(
        "stop",
        frames_processed=sum(cam.result.frames for cam in cameras),
        frames_persisted=0,
        reports_published=gate.published,
        reports_dropped=gate.dropped,
        interrupted=interrupted,
        stopped_by_policy=stopped_by_policy,
    )
