"""The composition root: builds the stages from the settings and runs them over a source."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.config import CameraConfig, Settings
from edge.detect import OnnxRuntime, YoloDetector
from edge.detections import CATEGORIES, COUNTED_CLASSES, Category
from edge.progress import Progress
from edge.sources import open_source


def build_detector(settings: Settings) -> YoloDetector:
    cfg = settings.detector
    runtime = OnnxRuntime(settings.model_path(), cfg.providers, cfg.threads)
    detector = YoloDetector(runtime, cfg.confidence, cfg.iou, cfg.max_detections)
    detector.warm_up()
    return detector


@dataclass
class ClipResult:
    """What one pass over a recorded clip produced: aggregate figures only."""

    source: str
    camera_id: str
    model: str
    providers: list[str]
    frames: int = 0
    duration_s: float = 0.0
    wall_s: float = 0.0
    detector_ms: list[float] = field(default_factory=list)
    detections: dict[Category, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    classes: dict[str, int] = field(
        default_factory=lambda: {name: 0 for name, _ in COUNTED_CLASSES.values()}
    )

    def to_json(self) -> dict[str, Any]:
        ms = np.asarray(self.detector_ms or [0.0])
        return {
            "source": self.source,
            "camera": self.camera_id,
            "frames": self.frames,
            "duration_s": round(self.duration_s, 3),
            "model": self.model,
            "providers": self.providers,
            "timing": {
                "wall_s": round(self.wall_s, 3),
                "fps": round(self.frames / self.wall_s, 2) if self.wall_s > 0 else 0.0,
                "detector_ms_p50": round(float(np.percentile(ms, 50)), 2),
                "detector_ms_p95": round(float(np.percentile(ms, 95)), 2),
            },
            "detections": {cat.value: n for cat, n in self.detections.items()},
            "detections_by_class": dict(self.classes),
        }


def count_clip(
    camera: CameraConfig, detector: YoloDetector, where: str = "camera", progress: bool = True
) -> ClipResult:
    """Run the pipeline over a recorded clip from its first frame to its last.

    ``where`` names the camera in error messages (``cameras[0]``).
    """
    source = open_source(camera.source, camera.id, camera.target_fps)
    camera.check_fits(source.frame_size, where)
    result = ClipResult(
        source=camera.source,
        camera_id=camera.id,
        model=detector.info.path.name,
        providers=detector.runtime.providers,
    )
    bar = Progress(source.expected_frames, camera.id, enabled=progress)
    class_names = {cid: name for cid, (name, _) in COUNTED_CLASSES.items()}
    start = time.perf_counter()
    last_timestamp = 0.0
    try:
        for frame in source:
            t0 = time.perf_counter()
            (detections,) = detector.detect([frame.image])
            result.detector_ms.append((time.perf_counter() - t0) * 1000)
            for cat, n in detections.count_by_category().items():
                result.detections[cat] += n
            for cid, n in zip(*np.unique(detections.class_id, return_counts=True), strict=True):
                result.classes[class_names[int(cid)]] += int(n)
            result.frames += 1
            last_timestamp = frame.timestamp
            bar.advance()
    finally:
        source.close()
        bar.close()
    result.wall_s = time.perf_counter() - start
    result.duration_s = last_timestamp + 1 / source.fps if result.frames else 0.0
    return result
