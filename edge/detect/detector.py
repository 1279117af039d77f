"""YOLOv8/YOLO11 on ONNX Runtime: the ``Detector`` the product ships."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from edge.analytics.detections import Detections
from edge.detect.protocol import ModelInfo
from edge.detect.runtime import OnnxRuntime
from edge.detect.yolo import Letterbox, letterbox, postprocess


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

    @property
    def info(self) -> ModelInfo:
        return self.runtime.info

    @property
    def providers(self) -> list[str]:
        return list(self.runtime.providers)

    def warm_up(self) -> None:
        """First runs allocate memory and pick kernels; keep that out of measured frames."""
        w, h = self.info.input_size
        blob = np.zeros((1, 3, h, w), np.float32)
        for _ in range(2):
            self.runtime.run(blob)

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]:
        """BGR frames -> one ``Detections`` per frame, boxes in that frame's pixels.

        A model with a dynamic batch gets all frames in one call; the shared models have a fixed
        batch of 1, so frames run one after the other through the runtime's bound buffers.
        """
        size = self.info.input_size
        if self.info.batch is None and len(images) > 1:
            prepared = [letterbox(image, size) for image in images]
            outputs = self.runtime.run(np.concatenate([blob for blob, _ in prepared]))
            return [
                self._postprocess(output, box, image)
                for output, (_, box), image in zip(outputs, prepared, images, strict=True)
            ]
        results = []
        for image in images:
            _, box = letterbox(image, size, self.runtime.input_buffer)
            results.append(self._postprocess(self.runtime.run_buffered()[0], box, image))
        return results

    def _postprocess(
        self, output: npt.NDArray[np.float32], box: Letterbox, image: npt.NDArray[np.uint8]
    ) -> Detections:
        frame_size = (image.shape[1], image.shape[0])
        return postprocess(output, box, frame_size, self.confidence, self.iou, self.max_detections)
