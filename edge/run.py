"""``edge run``: every configured camera through the pipeline, out to the configured sinks.

Recorded clips are replayed on wall-clock time (the run's start is the clip's first frame), so
windows fall on real minutes and reports carry real times; live cameras arrive with their own
issue and plug in as sources. The run ends when the sources end or on SIGINT/SIGTERM: the open
window is closed as partial, the spool flushed as far as the broker allows, cameras and site
marked ``offline``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from contextlib import ExitStack

import numpy as np

from edge.audit import AuditLog
from edge.config import Settings
from edge.gate import CameraStats, NoticeMessage, Sink, StatsMessage, iso, startup_gate
from edge.mqtt import MqttPublisher, home_assistant_discovery
from edge.notice import render_notice
from edge.pipeline import ClipResult, build_detector, count_clip
from edge.policy import load_policy
from edge.sinks import JsonlSink, StdoutSink
from edge.spool import Spool

log = logging.getLogger(__name__)
FLUSH_TIMEOUT_S = 10.0


def camera_stats(result: ClipResult) -> CameraStats:
    ms = np.asarray(result.stage_ms.get("detect") or [0.0])
    return CameraStats(
        frames_processed=result.frames,
        fps=round(result.frames / result.wall_s, 2) if result.wall_s > 0 else 0.0,
        detector_ms_p50=round(float(np.percentile(ms, 50)), 2),
        detector_ms_p95=round(float(np.percentile(ms, 95)), 2),
        online=not result.interrupted,
    )


def run(settings: Settings) -> list[ClipResult]:
    """Run every camera once; returns their results (what was published is in the sinks)."""
    policy = load_policy(settings.policy.path())
    detector = build_detector(settings)
    startup_gate(
        settings, policy, settings.cameras, detector.info, dt.date.today()
    ).raise_if_refused()
    results: list[ClipResult] = []
    with ExitStack() as stack:
        audit = stack.enter_context(AuditLog(settings.audit.path))  # one writer for the run
        sinks: list[Sink] = []
        if settings.sinks.stdout:
            sinks.append(StdoutSink())
        if settings.sinks.jsonl is not None:
            jsonl = JsonlSink(settings.sinks.jsonl)
            stack.callback(jsonl.close)
            sinks.append(jsonl)
        publisher: MqttPublisher | None = None
        if settings.mqtt.enabled:
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
        stats: dict[str, CameraStats] = {}

        def publish_stats() -> None:
            if publisher is not None:
                publisher.publish_stats(
                    StatsMessage(
                        schema_version=1,
                        time=iso(time.time()),
                        cameras=dict(stats),
                        spool_depth=publisher.spool.depth,
                        reports_published=sum(len(r.windows) for r in results),
                        reports_dropped=sum(r.reports_dropped for r in results),
                    )
                )

        ticking = threading.Event()
        if publisher is not None:
            interval = settings.mqtt.stats_interval_s

            def tick() -> None:
                while not ticking.wait(interval):
                    publish_stats()

            ticker = threading.Thread(target=tick, name="stats", daemon=True)
            ticker.start()
            stack.callback(ticking.set)
        for index, camera in enumerate(settings.cameras):
            result = count_clip(
                camera,
                settings,
                detector,
                f"cameras[{index}]",
                progress=False,
                sinks=sinks,
                origin=time.time(),
                audit=audit,
            )
            results.append(result)
            stats[camera.id] = camera_stats(result)
            if publisher is not None:
                publisher.set_camera_status(camera.id, "offline")
            publish_stats()
            if result.interrupted or result.stopped_by_policy:
                break
    return results
