"""The one place that builds the program from the settings and runs it.

    settings -> policy + start-up gate -> audit log -> sinks (stdout, JSON Lines, MQTT + spool)
             -> egress gate -> feeds + detector -> runner -> stats, heartbeat

``count`` (``edge count``, ``edge bench``) replays one recording on stream time from 0, keeps
its reports for a summary and sends them nowhere else; ``run`` (``edge run``) serves every
configured camera to the configured sinks, recordings on the wall clock so that windows fall
on real minutes. Both pass the same start-up gate once, audit ``start`` and ``stop`` once, and
run the same loop (``edge.runner``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from edge import __version__
from edge.camera_lock import CameraLocks, FileLocks
from edge.config import CameraConfig, Settings, config_sha256
from edge.detect.detector import YoloDetector
from edge.detect.manifest import load_site_approvals, sha256_file
from edge.detect.runtime import OnnxRuntime
from edge.errors import ConfigError, EdgeError
from edge.health import Heartbeat, HeartbeatWriter
from edge.legal.audit import AuditLog, JsonValue
from edge.legal.gate import EgressGate, startup_gate
from edge.legal.notice import render_notice_for
from edge.legal.policy import Policy, load_policy
from edge.progress import Progress
from edge.publish.sinks import (
    CollectSink,
    GuardedSink,
    JsonlSink,
    Sink,
    StatusSink,
    StdoutSink,
)
from edge.publish.spool import Spool
from edge.publish.state import ReportLedger, WindowStore
from edge.runner import CameraResult, Runner
from edge.schema import AuditHeadMessage, NoticeMessage, StatsMessage, iso
from edge.vision.live import is_live
from edge.vision.sources import Replay, open_feed

if TYPE_CHECKING:  # imported when MQTT is on: paho and ssl cost 8 MB of RSS a count never needs
    from edge.publish.mqtt import MqttPublisher

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 1.0  # at stop; what the broker has not taken by then stays spooled

__all__ = ["build_detector", "count", "run"]


def build_detector(settings: Settings) -> YoloDetector:
    cfg = settings.detector
    runtime = OnnxRuntime.configured(settings.model_path(), cfg, cfg.threads)
    detector = YoloDetector(runtime, cfg.confidence, cfg.iou, cfg.max_detections)
    detector.warm_up()
    return detector


def count(
    settings: Settings,
    camera: CameraConfig,
    where: str = "camera",
    *,
    audit_log: Path,
    detector: YoloDetector | None = None,
    progress: bool = True,
    sinks: Sequence[Sink] = (),
    max_frames: int | None = None,
    on_frame: Callable[[], None] | None = None,
    today: Callable[[], dt.date] = dt.date.today,
) -> CameraResult:
    """One recording, first frame to last, under the legal gate; its reports in the result.

    ``audit_log`` is the installation's audit log (``edge --audit-log``), never a setting, so a
    configuration cannot choose where its refusal lands; it has no default for the same reason.
    ``where`` names the camera in error messages (``cameras[0]``); ``sinks`` receive the admitted
    reports besides the result (a benchmark's JSON Lines file); ``max_frames`` ends the clip
    early and ``on_frame`` is called after each frame (a benchmark's sample and probe).
    """
    if is_live(camera.source):
        raise ConfigError([f"{where}.source: a live stream; 'edge run' reads live cameras"])
    detector = detector or build_detector(settings)
    collected = CollectSink()
    with ExitStack() as stack:
        bar = Progress(max_frames, camera.id, enabled=progress)
        stack.callback(bar.close)

        def advance() -> None:
            bar.advance()
            if on_frame is not None:
                on_frame()

        (result,) = _serve(
            settings, [(camera, where)], detector, lambda policy, audit: [collected, *sinks],
            stack, audit_log=audit_log, origin=0.0, today=today, on_frame=advance,
            max_frames=max_frames, progress=bar,
        )  # fmt: skip
    result.windows = collected.reports
    return result


def run(settings: Settings, audit_log: Path, health_file: Path | None = None) -> list[CameraResult]:
    """Every configured camera to the configured sinks until the recordings end or SIGINT /
    SIGTERM, audited in ``audit_log`` (the installation's, not a setting); with
    ``health_file``, a heartbeat is written there every few seconds."""
    live = [is_live(camera.source) for camera in settings.cameras]
    if any(live) and not all(live):
        raise ConfigError(["cameras: mix of live streams and recorded clips; run them apart"])
    if not settings.cameras:
        raise ConfigError(["cameras: no camera to run"])
    files = [("audit log", audit_log)]
    if settings.mqtt.enabled or all(live):
        files.append(("spool", settings.spool.path))
    cameras = [(camera, f"cameras[{i}]") for i, camera in enumerate(settings.cameras)]
    with ExitStack() as stack:
        # One process per live camera, spool file and audit log on this box (edge.camera_lock),
        # before anything is published: two writers would publish windows twice.
        stack.enter_context(
            CameraLocks([(c.id, c.source) for c in settings.cameras] if all(live) else [])
        )
        stack.enter_context(FileLocks(files))
        detector = build_detector(settings)
        publisher = None
        guards: list[GuardedSink] = []

        def connect(policy: Policy, audit: AuditLog) -> list[Sink]:
            """The configured sinks, opened once the start-up gate let the run start, each
            behind its own retry queue: one failing sink (a full disk) never starves another."""
            nonlocal publisher
            sinks: list[tuple[str, Sink]] = []
            if settings.mqtt.enabled:
                publisher = _publisher(settings, policy, audit, stack)
                sinks.append(("mqtt", publisher))
            if settings.sinks.jsonl is not None:
                jsonl = JsonlSink(settings.sinks.jsonl)
                stack.callback(jsonl.close)
                sinks.append(("jsonl", jsonl))
            if settings.sinks.stdout:
                sinks.append(("stdout", StdoutSink()))
            for name, sink in sinks:
                guards.append(GuardedSink(name, sink, audit).start())
                stack.callback(guards[-1].close)  # before its sink closes (last in, first out)
            return list(guards)

        def monitor(runner: Runner) -> None:
            if publisher is not None:
                _start_stats(settings, publisher, runner, stack, guards)
            if health_file is not None:
                _start_heartbeat(health_file, settings, publisher, runner, stack, guards)

        return _serve(
            settings, cameras, detector, connect, stack, audit_log=audit_log,
            origin=time.time(), monitor=monitor,
            persist=settings.spool.path if all(live) else None,
        )  # fmt: skip


def _serve(
    settings: Settings,
    cameras: Sequence[tuple[CameraConfig, str]],
    detector: YoloDetector,
    make_sinks: Callable[[Policy, AuditLog], Sequence[Sink]],
    stack: ExitStack,
    *,
    audit_log: Path,
    origin: float,
    today: Callable[[], dt.date] = dt.date.today,
    on_frame: Callable[[], None] | None = None,
    max_frames: int | None = None,
    monitor: Callable[[Runner], None] | None = None,
    progress: Progress | None = None,
    persist: Path | None = None,
) -> list[CameraResult]:
    """Gate, audit, sinks, feeds, loop: the part ``count`` and ``run`` share.

    ``make_sinks`` makes the sinks once the policy and audit log are known (the MQTT spool
    audits its drops), only after the start-up gate let the run start. ``persist`` (live
    runs): the SQLite file where open windows and the report ledger live (``edge.publish.state``).
    """
    policy = load_policy(settings.policy.path())
    decision = startup_gate(
        settings, policy, [c for c, _ in cameras], detector.info, today(),
        approved=load_site_approvals(audit_log),
    )  # fmt: skip
    audit = stack.enter_context(AuditLog(audit_log))  # one writer for the run
    facts: dict[str, JsonValue] = {
        "software": __version__,
        "policy": policy.name,
        "policy_sha256": policy.sha256,
        "policy_canonical": policy.canonical,  # the rules themselves, not only their name
        "config_sha256": config_sha256(settings),
        "model": detector.info.path.name,
        "model_sha256": sha256_file(detector.info.path),
        "cameras": [camera.id for camera, _ in cameras],
    }
    if not decision.allowed:  # recorded, then raised: before any connection or frame
        refusals: list[JsonValue] = [f"{d.rule}: {d.detail}" for d in decision.refusals]
        audit.append("start_refused", **facts, refusals=refusals)
        decision.raise_if_refused()
    audit.append("start", **facts, checks=[d.rule for d in decision.decisions])
    try:
        outputs = make_sinks(policy, audit)
        notices = {
            camera.id: camera.notice_url or settings.deployment.notice_url or ""
            for camera, _ in cameras
        }
        recorded = not any(is_live(camera.source) for camera, _ in cameras)
        gate = EgressGate(policy, audit, outputs, notices, recorded=recorded)
        on_status = _status_relay(outputs)
        feeds = []
        for camera, where in cameras:
            feed = open_feed(
                camera.source, camera.id, target_fps=camera.target_fps,
                transport=camera.transport, stall_s=camera.stall_seconds, origin=origin,
                on_status=on_status,
            )  # fmt: skip
            stack.callback(feed.close)
            if isinstance(feed, Replay):  # a recording's size is known before its first frame
                camera.check_fits(feed.frame_size, where)
                if progress is not None:
                    progress.total = progress.total or feed.expected_frames
            feeds.append((camera, feed))
        store = ledger = None
        if persist is not None:  # live: windows survive restarts, one report per window
            store = stack.enter_context(WindowStore(persist, policy.sha256, audit))
            keep = policy.retention.audit_days
            ledger = stack.enter_context(ReportLedger(persist, audit, keep_days=keep))
        runner = Runner(
            feeds, settings, detector, gate, today=today, on_frame=on_frame,
            max_frames=max_frames, store=store, ledger=ledger,
        )  # fmt: skip
        if monitor is not None:
            monitor(runner)
        results = runner.run()
    except EdgeError as err:  # e.g. an unreadable clip: say why the run stopped
        audit.append("stop", error=str(err), frames_persisted=0)
        raise
    categories = [c for c in results[0].categories if c in policy.allowed_categories]
    for result in results:
        result.categories = categories
    audit.append(
        "stop",
        frames_processed=sum(r.frames for r in results),
        frames_not_detected=sum(r.skipped for r in results),  # the motion gate, whole run only
        frames_persisted=0,  # no code path writes a frame: pixels stop at the detector
        reports_published=gate.published,
        reports_dropped=gate.dropped + (ledger.refused if ledger is not None else 0),
        reports_withheld=gate.withheld,
        interrupted=any(r.interrupted for r in results),
        stopped_by_policy=results[0].stopped_by_policy,
    )
    return results


def _status_relay(sinks: Sequence[Sink]) -> Callable[[str, bool], None]:
    """Camera online/offline, told to the MQTT publisher if there is one."""
    unwrapped = [s.sink if isinstance(s, GuardedSink) else s for s in sinks]
    publishers = [s for s in unwrapped if isinstance(s, StatusSink)]

    def relay(camera: str, online: bool) -> None:
        for publisher in publishers:
            publisher.set_camera_status(camera, "online" if online else "offline")

    return relay


def _publisher(
    settings: Settings, policy: Policy, audit: AuditLog, stack: ExitStack
) -> MqttPublisher:
    from edge.publish.mqtt import MqttPublisher, home_assistant_discovery

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
        notice=render_notice_for(settings, policy),
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
    _start_audit_heads(settings, publisher, audit, stack)
    return publisher


def _start_audit_heads(
    settings: Settings, publisher: MqttPublisher, audit: AuditLog, stack: ExitStack
) -> None:
    """Publish the audit log's head now, every ``stats_interval_s`` and at stop (after the
    ``stop`` entry, before the publisher disconnects): the anchor a DPO verifies the log
    against, kept off the box where whoever controls the box cannot rewrite it."""

    def publish() -> None:
        head = audit.head
        if head.entries:
            publisher.publish_audit_head(
                AuditHeadMessage(
                    schema_version=1, site=settings.mqtt.site, time=iso(time.time()),
                    entries=head.entries, head=head.hash,
                )
            )  # fmt: skip

    stopping = threading.Event()

    def tick() -> None:
        while not stopping.wait(settings.mqtt.stats_interval_s):
            try:
                publish()
            except Exception:  # an anchor missed is caught by the next; never stop the run
                log.exception("audit head not published")

    publish()
    threading.Thread(target=tick, name="audit-head", daemon=True).start()
    stack.callback(publish)  # the head with the stop entry (runs after the ticker is told)
    stack.callback(stopping.set)


def _start_stats(
    settings: Settings,
    publisher: MqttPublisher,
    runner: Runner,
    stack: ExitStack,
    guards: Sequence[GuardedSink] = (),
) -> None:
    """Publish health every ``stats_interval_s``, and once more at stop."""

    def publish() -> None:
        results = runner.results
        message = StatsMessage(
            schema_version=1,
            time=iso(time.time()),
            cameras=runner.stats(),
            spool_depth=publisher.spool.depth,
            reports_published=sum(r.reports_published for r in results),
            reports_dropped=sum(r.reports_dropped for r in results),
            delivery="failing" if _delivery_error(publisher, guards) else "ok",
            delivery_errors=publisher.drain_errors + sum(g.failures for g in guards),
        )
        log.debug("stats %s", message.model_dump_json())
        publisher.publish_stats(message)

    stopping = threading.Event()

    def tick() -> None:
        while not stopping.wait(settings.mqtt.stats_interval_s):
            try:
                publish()
            except Exception:  # a health figure must never stop the run
                log.exception("stats not published")

    threading.Thread(target=tick, name="stats", daemon=True).start()
    stack.callback(publish)  # last figures at stop (runs after the ticker is told to stop)
    stack.callback(stopping.set)


def _delivery_error(publisher: MqttPublisher | None, guards: Sequence[GuardedSink]) -> str:
    """Why reports are not going out (the drain thread, a sink holding reports); "" if they are."""
    errors = [publisher.delivery_error] if publisher is not None else []
    return "; ".join(e for e in [*errors, *(g.error for g in guards)] if e)


def _start_heartbeat(
    path: Path,
    settings: Settings,
    publisher: MqttPublisher | None,
    runner: Runner,
    stack: ExitStack,
    guards: Sequence[GuardedSink] = (),
) -> None:
    """Figures for ``edge health``, from what the runner keeps up to date."""

    def figures() -> Heartbeat:
        stats = runner.stats()
        return Heartbeat(
            time=time.time(),
            pid=os.getpid(),
            cameras=len(settings.cameras),
            cameras_online=sum(1 for s in stats.values() if s.online),
            frames_processed=sum(s.frames_processed for s in stats.values()),
            spool_depth=publisher.spool.depth if publisher is not None else None,
            mqtt_connected=publisher.connected if publisher is not None else None,
            delivery_error=_delivery_error(publisher, guards),
        )

    writer = HeartbeatWriter(path, figures)
    writer.start()
    stack.callback(writer.stop)  # before the spool closes: callbacks run last-in first-out
