"""Cost of everything after the detector: tracking, rider association, counting, aggregation.

Synthetic scene, so the object count is controlled: ``--objects`` boxes walk across a 1280x720
view at different speeds and directions, with box jitter and 5 % missed detections, two lines
and a zone, at 25 fps. Prints the mean and p95 milliseconds per frame of each stage and of
their sum; the target is a mean of at most 3 ms per frame with 20 objects in view.

    python benchmarks/pipeline_speed.py --objects 20 --frames 3000
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from edge.analytics.detections import Detections
from edge.analytics.pipeline import CameraPipeline
from edge.config import CameraConfig, load_settings

W, H, FPS = 1280, 720, 25.0


def scene(objects: int, frames: int, seed: int = 0) -> list[Detections]:
    """Objects crossing the view and wrapping round, each a steady walk plus jitter."""
    rng = np.random.default_rng(seed)
    start = rng.uniform([0, 100], [W, H - 50], (objects, 2))
    velocity = rng.uniform(40, 160, objects) * rng.choice([-1, 1], objects)  # px/s along x
    drift = rng.uniform(-20, 20, objects)  # px/s along y
    size = rng.uniform(30, 120, objects)
    classes = rng.choice(np.array([0, 0, 0, 1, 2, 7], np.int16), objects)
    out = []
    for f in range(frames):
        t = f / FPS
        x = (start[:, 0] + velocity * t) % W
        y = np.clip(start[:, 1] + drift * t, size, H)
        w, h = size * 0.5, size
        xyxy = np.stack([x - w / 2, y - h, x + w / 2, y], axis=1)
        xyxy += rng.normal(0, 1.5, xyxy.shape)
        seen = rng.random(objects) > 0.05
        conf = rng.uniform(0.3, 0.95, objects)
        out.append(
            Detections(xyxy[seen].astype(np.float32), conf[seen].astype(np.float32), classes[seen])
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--frames", type=int, default=3000)
    args = parser.parse_args()

    camera = CameraConfig.model_validate(
        {
            "id": "bench",
            "source": "synthetic",
            "lines": [
                {"name": "vertical", "start": [640, 0], "end": [640, 720]},
                {"name": "diagonal", "start": [100, 700], "end": [1200, 50]},
            ],
            "zones": [
                {"name": "middle", "points": [[300, 200], [980, 200], [980, 600], [300, 600]]}
            ],
        }
    )
    pipeline = CameraPipeline(camera, load_settings(None))
    frames = scene(args.objects, args.frames)
    reports = []
    per_frame = []
    for f, detections in enumerate(frames):
        start = time.perf_counter()
        reports += pipeline.process(f / FPS, detections)
        per_frame.append((time.perf_counter() - start) * 1e3)
    reports += pipeline.close()

    print(f"{args.objects} objects, {args.frames} frames at {FPS:.0f} fps, 2 lines, 1 zone")
    print("| stage | mean ms | p95 ms (last 1024 frames) |")
    print("|---|---|---|")
    for stage, recent in pipeline.times.stages.items():
        if recent.count:
            print(f"| {stage} | {recent.mean:.3f} | {recent.percentiles()[1]:.3f} |")
    mean = statistics.fmean(per_frame)
    print(f"| **all after the detector** | **{mean:.3f}** | {np.percentile(per_frame, 95):.3f} |")
    passages = sum(
        n for r in reports for d in r.lines.values() for c in d.values() for n in c.values()
    )
    print(
        f"{len(reports)} windows, {passages} passages counted; target <= 3 ms: "
        f"{'met' if mean <= 3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
