"""The detector stage: frames in, ``Detections`` out. Pixels go no further than here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.detect.runtime import ModelInfo, OnnxRuntime, Provider
from edge.detect.yolo import letterbox, postprocess
from edge.detections import Detections

__all__ = ["ModelInfo", "OnnxRuntime", "Provider", "YoloDetector"]


class YoloDetector:
    """YOLOv8/YOLO11 ONNX detector keeping only the counted classes."""

    def __init__(
        self,
        runtime: OnnxRuntime,
        confidence: float = 0.25,
        iou: float = 0.7,
        max_detections: int = 300,
    ) -> None:
        self.runtime = runtime
        self.confidence = confidence
        self.iou = iou
        self.max_detections = max_detections
        w, h = runtime.info.input_size
        self._buffer = np.empty((1, 3, h, w), np.float32)

    @property
    def info(self) -> ModelInfo:
        return self.runtime.info

    def warm_up(self) -> None:
        """First runs allocate memory and pick kernels; keep that out of measured frames."""
        w, h = self.info.input_size
        blob = np.zeros((1, 3, h, w), np.float32)
        for _ in range(2):
            self.runtime.run(blob)

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """BGR frames -> one ``Detections`` per frame, boxes in that frame's pixels.

        A model with a dynamic batch gets all frames in one call; the shared models have a fixed
        batch of 1, so frames run one after the other through one reused input buffer.
        """
        if self.info.batch is None and len(images) > 1:
            prepared = [letterbox(image, self.info.input_size) for image in images]
            outputs = list(self.runtime.run(np.concatenate([blob for blob, _ in prepared])))
            boxes = [box for _, box in prepared]
        else:
            outputs, boxes = [], []  # one reused buffer: run each blob before the next letterbox
            for image in images:
                blob, box = letterbox(image, self.info.input_size, self._buffer)
                outputs.append(self.runtime.run(blob)[0])
                boxes.append(box)
        return [
            postprocess(
                output,
                box,
                (image.shape[1], image.shape[0]),
                self.confidence,
                self.iou,
                self.max_detections,
            )
            for output, box, image in zip(outputs, boxes, images, strict=True)
        ]
