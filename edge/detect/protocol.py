"""What the runner needs of a detector, apart from any runtime: importing it loads no model
library, so the gate, the schema and the dashboard can name a model without ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge.analytics.detections import Detections


@dataclass(frozen=True)
class ModelInfo:
    """What the detector needs to know about a YOLO ONNX file, read from the file itself."""

    path: Path
    names: dict[int, str]
    input_size: tuple[int, int]  # (width, height)
    batch: int | None  # None when the batch axis is dynamic
    outputs: int  # N candidate boxes per image
    task: str
    metadata: dict[str, str]


class Detector(Protocol):
    """Frames in, one ``Detections`` per frame out (counted classes only); nothing else leaves."""

    @property
    def info(self) -> ModelInfo: ...

    @property
    def providers(self) -> list[str]:
        """The execution providers in use, as the runtime reports them after creation."""
        ...

    def detect(self, images: Sequence[npt.NDArray[np.uint8]]) -> list[Detections]: ...
