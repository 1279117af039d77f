"""Live cameras over RTSP: N streams served on loopback, one shared detector, measured together.

Serves ``--clip`` N times (N from ``--cameras``, default 1 2 4) with the GStreamer RTSP server
of the test suite and runs them through the runner of ``edge run`` (``edge.runner.Runner``:
motion gate, detector, tracking, counting, egress gate) for ``--seconds`` each. Prints per
camera: processed frames/s, frames the motion gate kept from the detector, frame age at
detection p50/p95 (capture -> detection start), frames dropped; and for the process: CPU% (of
one core) and RSS.

    .venv/bin/python -m benchmarks.live_speed --model ../shared/models/yolo11n_320.onnx
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

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
    server = start_rtsp_server({f"cam{i}": clip for i in range(n)})
    settings = load_settings(Path("examples/tud-campus.yaml"), detector={"model": str(model)})
    detector = build_detector(settings)
    cameras = []
    for i in range(n):
        camera = CameraConfig.model_validate(
            {"id": f"cam{i}", "source": server.url(f"cam{i}"),
             "lines": [{"name": "across", "start": [0, 200], "end": [960, 200]}]}
        )  # fmt: skip
        cameras.append((camera, open_feed(camera.source, camera.id)))
    with tempfile.TemporaryDirectory() as tmp, AuditLog(Path(tmp) / "audit.jsonl") as audit:
        gate = EgressGate(load_policy(settings.policy.path()), audit, [], "https://example.org/n")
        runner = Runner(cameras, settings, detector, gate)
        clock: dict[str, float] = {}

        def measure() -> None:  # from the moment every camera is online, for ``seconds``
            while not all(s.online for s in runner.stats().values()):
                time.sleep(0.05)
            usage, clock["t0"] = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
            clock["cpu0"] = usage.ru_utime + usage.ru_stime
            clock["frames0"] = sum(s.frames_processed for s in runner.stats().values())
            time.sleep(seconds)
            runner.stop()

        threading.Thread(target=measure, daemon=True).start()
        try:
            runner.run()
        finally:
            server.stop()
    wall = time.monotonic() - clock["t0"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage.ru_utime + usage.ru_stime - clock["cpu0"]) / wall * 100
    for k, (result, stats) in enumerate(zip(runner.results, runner.stats().values(), strict=True)):
        print(
            f"| {n} | cam{k} | {result.frames / result.wall_s:.1f} | {result.skipped} | "
            f"{stats.frame_age_ms_p50:.0f} | {stats.frame_age_ms_p95:.0f} | "
            f"{stats.frames_dropped} | {cpu:.0f} | {rss_mb():.0f} MB |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clip", default="../shared/clips/degirum_traffic2_intersection_960x540.mp4"
    )
    parser.add_argument("--model", type=Path, default=Path("../shared/models/yolo11n_320.onnx"))
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"{args.model.name}, clip {Path(args.clip).name} served at 25 fps per camera")
    print(
        "| cameras | camera | processed fps | unchanged (not detected) | age p50 ms | "
        "age p95 ms | dropped | CPU % | RSS |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.cameras:
        run(n, str(Path(args.clip).resolve()), args.model, args.seconds)


if __name__ == "__main__":
    main()
