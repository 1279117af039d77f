"""Live cameras over RTSP: N streams served on loopback, one shared detector, measured together.

Serves ``--clip`` N times (N from ``--cameras``, default 1 2 4) with the GStreamer RTSP server
of the test suite, reads them with ``edge.live.LiveSource`` and runs the full per-camera
pipeline round-robin, newest frame first, for ``--seconds`` each. Prints per camera: processed
frames/s, frame age at detection p50/p95 (capture -> detection start), frames dropped; and for
the process: CPU% (of one core) and RSS.

    .venv/bin/python -m benchmarks.live_speed --model ../shared/models/yolo11n_320.onnx
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from edge.config import CameraConfig, load_settings
from edge.live import LiveSource
from edge.pipeline import CameraPipeline, build_detector
from tests.rtsp import start_rtsp_server


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
        source = LiveSource(camera.source, camera.id)
        source.start()
        cameras.append((source, CameraPipeline(camera, settings), []))
    try:
        while not all(s.health.online for s, _, _ in cameras):
            time.sleep(0.05)
        usage0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        processed = [0] * n
        while time.monotonic() - t0 < seconds:
            busy = False
            for k, (source, pipeline, ages) in enumerate(cameras):
                frame = source.take()
                if frame is None:
                    continue
                busy = True
                ages.append((time.time() - frame.timestamp) * 1e3)
                (detections,) = detector.detect([frame.image])
                pipeline.process(frame.timestamp, detections)
                processed[k] += 1
            if not busy:
                time.sleep(0.002)
        wall = time.monotonic() - t0
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage.ru_utime - usage0.ru_utime + usage.ru_stime - usage0.ru_stime) / wall * 100
        for k, (source, _, ages) in enumerate(cameras):
            p50, p95 = np.percentile(ages, [50, 95])
            print(
                f"| {n} | cam{k} | {processed[k] / wall:.1f} | {p50:.0f} | {p95:.0f} | "
                f"{source.health.frames_dropped} | {cpu:.0f} | {rss_mb():.0f} MB |"
            )
    finally:
        for source, _, _ in cameras:
            source.stop()
        server.stop()


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
    print("| cameras | camera | processed fps | age p50 ms | age p95 ms | dropped | CPU % | RSS |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.cameras:
        run(n, str(Path(args.clip).resolve()), args.model, args.seconds)


if __name__ == "__main__":
    main()
