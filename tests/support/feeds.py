"""Stand-ins for a camera and a detector, for tests of the runner: frames scripted by a
generator, pedestrians crossing the frame."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.analytics.detections import Detections
from edge.detect.protocol import ModelInfo
from edge.vision.frames import FeedHealth, Frame

W, H = 640, 480
COCO = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}


class ScriptedFeed:
    """A ``FrameFeed`` that plays the frames a subclass's ``frames()`` yields; ``finished``
    once they are out, as at the end of a recording or a stop."""

    live = False
    fps = 25.0

    def __init__(self, camera_id: str) -> None:
        self.camera_id = camera_id
        self.health = FeedHealth()
        self.finished = False
        self._frames = self.frames()

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def start(self) -> None:
        self.health.online = True

    def take(self) -> Frame | None:
        frame = next(self._frames, None)
        self.finished = frame is None
        return frame

    def close(self) -> None:
        self.health.online = False


class WalkersDetector:
    """Pedestrians crossing the frame left to right, a new one every ``every`` frames, each
    in view for ``span`` frames: track ids grow without end while the scene stays the same."""

    def __init__(self, every: int = 20, span: int = 100) -> None:
        self.every, self.span, self.frame = every, span, 0
        self.info = ModelInfo(Path("stub.onnx"), COCO, (320, 320), 1, 2100, "detect", {})
        self.providers = ["stub"]

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        return [self._one() for _ in images]

    def _one(self) -> Detections:
        f, self.frame = self.frame, self.frame + 1
        born = np.arange(max(0, f - self.span + 1) // self.every * self.every, f + 1, self.every)
        x = (f - born) / self.span * (W + 40) - 20
        y = 200 + (born // self.every % 5) * 50.0
        xyxy = np.stack([x - 10, y - 40, x + 10, y + 40], axis=1).astype(np.float32)
        n = len(born)
        return Detections(xyxy, np.full(n, 0.9, np.float32), np.zeros(n, np.int16))
