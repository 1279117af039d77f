"""Live cameras check their lines and zones against their first frame, as clips do when they
open (issue 16, item 5): geometry outside the frame counted nothing, silently."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from edge.analytics.detections import Detections
from edge.config import CameraConfig, load_settings
from edge.detect.protocol import ModelInfo
from edge.errors import ConfigError
from edge.legal.audit import AuditLog
from edge.legal.gate import EgressGate
from edge.legal.policy import load_policy
from edge.runner import Runner
from edge.vision.frames import FeedHealth, Frame

W, H = 640, 480
COCO = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}


class LiveFeed:
    """A live camera of ``frames`` black W x H frames stamped with wall-clock time."""

    live = True
    fps = 25.0

    def __init__(self, camera_id: str, frames: int) -> None:
        self.camera_id, self.left = camera_id, frames
        self.health = FeedHealth()
        self.finished = False
        self.index = 0

    def start(self) -> None:
        self.health.online = True

    def take(self) -> Frame | None:
        if self.left == 0:
            self.finished = True
            return None
        self.left -= 1
        self.index += 1
        self.health.frames_received += 1
        image = np.zeros((H, W, 3), np.uint8)
        return Frame(self.camera_id, self.index, time.time(), image)

    def close(self) -> None:
        self.health.online = False


class NoDetector:
    info = ModelInfo(Path("stub.onnx"), COCO, (320, 320), 1, 2100, "detect", {})
    providers = ("stub",)

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        return [
            Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16))
            for _ in images
        ]


def run_live(tmp_path: Path, cameras: list[dict[str, Any]]) -> Runner:
    settings = load_settings(None, model_dir=str(tmp_path))
    configs = [CameraConfig.model_validate({"source": "rtsp://192.0.2.1/s", **c}) for c in cameras]
    audit = AuditLog(tmp_path / "audit.jsonl")
    gate = EgressGate(load_policy(settings.policy.path()), audit, [], "https://example.org/n")
    feeds = [(config, LiveFeed(config.id, 5)) for config in configs]
    runner = Runner(feeds, settings, NoDetector(), gate)  # type: ignore[arg-type]
    runner.run()
    return runner


INSIDE = {"name": "door", "start": [320, 0], "end": [320, 480]}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ({"name": "door", "start": [320, 0], "end": [320, 4800]}, "lines[0].end: (320.0, 4800.0)"),
        ({"name": "door", "start": [-50, 10], "end": [320, 480]}, "lines[0].start: (-50.0, 10.0)"),
        ({"name": "door", "start": [700, 0], "end": [900, 480]}, "lines[0].start: (700.0, 0.0)"),
    ],
)
def test_a_line_outside_a_live_frame_stops_the_run(
    tmp_path: Path, line: dict[str, Any], needle: str
) -> None:
    """Before: accepted, and the run counted nothing on that line for as long as it ran."""
    cameras = [{"id": "hall", "lines": [INSIDE]}, {"id": "door", "lines": [line]}]
    with pytest.raises(ConfigError) as caught:
        run_live(tmp_path, cameras)
    lines = caught.value.lines  # one per point outside
    assert all(line.startswith("cameras[1].") for line in lines), lines
    assert all(line.endswith("is outside the 640x480 frame") for line in lines), lines
    assert needle in lines[0]


def test_a_zone_outside_a_live_frame_stops_the_run(tmp_path: Path) -> None:
    zone = {"name": "square", "points": [[0, 0], [200, 0], [200, 900], [0, 900]]}
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.zones\[0\]\.points: \(200.0, 900.0\)"):
        run_live(tmp_path, [{"id": "hall", "zones": [zone]}])


def test_geometry_inside_a_live_frame_runs(tmp_path: Path) -> None:
    runner = run_live(tmp_path, [{"id": "hall", "lines": [INSIDE]}])
    assert runner.results[0].frames == 5
