"""Detector speed: bare ``session.run`` against our full detection path, in one run.

(a) ``session.run`` on a pre-made input tensor: the limit ONNX Runtime sets.
(b) ``YoloDetector.detect`` from a decoded frame to ``Detections``: letterbox, inference,
    decode, class filter, NMS, boxes back to frame pixels.
Both use the same session (same threads and providers). (a) and (b) alternate frame by frame so
that machine noise hits both alike; the ratio (b)/(a) of frames per second is the overhead figure.

    python benchmarks/detector_speed.py \
        --clip ../shared/clips/degirum_traffic2_intersection_960x540.mp4 \
        --model ../shared/models/yolo11n.onnx --model ../shared/models/yolo11n_320.onnx
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from edge.detect.detector import YoloDetector
from edge.detect.runtime import OnnxRuntime
from edge.vision.sources import open_source


def measure(model: Path, frames: list[np.ndarray], threads: int, rounds: int) -> dict[str, float]:
    runtime = OnnxRuntime(model, ("cpu",), threads)
    detector = YoloDetector(runtime)
    detector.warm_up()
    w, h = runtime.info.input_size
    blob = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    bare: list[float] = []
    full: list[float] = []
    for _ in range(rounds):
        for frame in frames:  # (a) and (b) alternate frame by frame: noise hits both alike
            t0 = time.perf_counter()
            runtime.run(blob)
            t1 = time.perf_counter()
            detector.detect([frame])
            t2 = time.perf_counter()
            bare.append(t1 - t0)
            full.append(t2 - t1)
    bare_ms, full_ms = statistics.median(bare) * 1e3, statistics.median(full) * 1e3
    return {
        "bare_ms_p50": round(bare_ms, 2),
        "full_ms_p50": round(full_ms, 2),
        "bare_fps": round(1e3 / bare_ms, 1),
        "full_fps": round(1e3 / full_ms, 1),
        "ratio": round(bare_ms / full_ms, 3),
        "bare_fps_mean": round(len(bare) / sum(bare), 1),
        "full_fps_mean": round(len(full) / sum(full), 1),
        "ratio_mean": round(sum(bare) / sum(full), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True)
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--frames", type=int, default=60, help="frames decoded into memory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    source = open_source(args.clip, "bench")
    frames = []
    for frame in source:
        frames.append(frame.image)
        if len(frames) == args.frames:
            break
    source.close()

    results = {}
    print(f"clip {args.clip}, {len(frames)} frames x {args.rounds} rounds, {args.threads} threads")
    print("| model | (a) session.run fps | (b) frame->Detections fps | ratio (b)/(a) p50 | mean |")
    print("|---|---|---|---|---|")
    for model in args.model:
        r = measure(model, frames, args.threads, args.rounds)
        results[model.name] = r
        print(
            f"| {model.name} | {r['bare_fps']} ({r['bare_ms_p50']} ms) | "
            f"{r['full_fps']} ({r['full_ms_p50']} ms) | {r['ratio']} | {r['ratio_mean']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
