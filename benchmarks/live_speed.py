"""Live cameras over RTSP: N cameras on loopback, one shared detector, measured together.

Serves ``--clip`` at 25 fps with the GStreamer RTSP server of the test suite (one shared
stream that all N cameras read, so the server encodes once whatever N) and runs the cameras
through the runner of ``edge run`` (``edge.runner.Runner``: motion gate, detection schedule,
detector, tracking, counting, egress gate) for ``--seconds`` once every camera is online.
Prints per camera, over that interval: processed frames/s (taken from the stream: detected or
skipped by the motion gate and the schedule), detected frames/s, frame age at detection p50/p95
(capture -> detection start), the detector's time per frame (a batched call's time shared
by its frames), frames dropped (the stream outran the loop); and for the process:
CPU % (of one core) and RSS. A dynamic-batch model (``edge models batch``) detects every due
camera in one call.

    .venv/bin/python -m benchmarks.live_speed --model ../shared/models/yolo11n_320.onnx \
        --cameras 1 2 4 8
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from edge.app import build_detector
from edge.config import CameraConfig, load_settings
from edge.legal.audit import AuditLog
from edge.legal.gate import EgressGate
from edge.legal.policy import load_policy
from edge.runner import Runner
from edge.vision.sources import open_feed
from tests.support.rtsp import start_rtsp_server


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(n: int, clip: str, model: Path, seconds: float) -> None:
    # One mount that every camera reads: the server decodes and encodes the clip once (its media
    # is shared), so its own x264 work does not grow with N and eat the cores being measured.
    server = start_rtsp_server({"street": clip})
    settings = load_settings(Path("examples/tud-campus.yaml"), detector={"model": str(model)})
    detector = build_detector(settings)
    cameras = []
    for i in range(n):
        camera = CameraConfig.model_validate(
            {"id": f"cam{i}", "source": server.url("street"),
             "lines": [{"name": "across", "start": [0, 200], "end": [960, 200]}]}
        )  # fmt: skip
        cameras.append((camera, open_feed(camera.source, camera.id)))
    with tempfile.TemporaryDirectory() as tmp, AuditLog(Path(tmp) / "audit.jsonl") as audit:
        gate = EgressGate(load_policy(settings.policy.path()), audit, [], "https://example.org/n")
        runner = Runner(cameras, settings, detector, gate)
        marks: dict[str, Any] = {}

        def counters() -> dict[str, tuple[int, int]]:  # camera -> (frames taken, detected)
            return {r.camera_id: (r.frames, r.frames - r.skipped) for r in runner.results}

        def measure() -> None:  # from the moment every camera is online, for ``seconds``
            while not all(s.online for s in runner.stats().values()):
                time.sleep(0.05)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            marks["start"] = time.monotonic(), usage.ru_utime + usage.ru_stime, counters()
            time.sleep(seconds)
            marks["end"] = time.monotonic(), counters()
            runner.stop()

        threading.Thread(target=measure, daemon=True).start()
        try:
            runner.run()
        finally:
            server.stop()
    (t0, cpu0, before), (t1, after) = marks["start"], marks["end"]
    wall = t1 - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime + usage.ru_stime - cpu0) / wall * 100
    for k, stats in runner.stats().items():
        frames, detected = (a - b for a, b in zip(after[k], before[k], strict=True))
        print(
            f"| {n} | {k} | {frames / wall:.1f} | {detected / wall:.1f} | "
            f"{stats.detector_ms_p50:.1f} | "
            f"{stats.frame_age_ms_p50:.0f} | {stats.frame_age_ms_p95:.0f} | "
            f"{stats.frames_dropped} | {cpu:.0f} | {rss_mb():.0f} MB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clip", default="../shared/clips/degirum_traffic2_intersection_960x540.mp4"
    )
    parser.add_argument("--model", type=Path, default=Path("../shared/models/yolo11n_320.onnx"))
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"{args.model.name}, clip {Path(args.clip).name} served at 25 fps to every camera")
    print(
        "| cameras | camera | processed fps | detected fps | detect ms p50 | age p50 ms | "
        "age p95 ms | dropped | CPU % | RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.cameras:
        run(n, str(Path(args.clip).resolve()), args.model, args.seconds)


if __name__ == "__main__":
    main()
