"""Edge footfall counting: anonymous, time-aggregated counts from street cameras.

The value objects that pass between stages are re-exported here; the stages themselves live in
their modules (``edge.detect``, ``edge.track``, ``edge.riders``, ``edge.counting``,
``edge.aggregate``) and are wired together in ``edge.pipeline``.
"""

from __future__ import annotations

import os

# ONNX Runtime's Linux builds record usage events under ~/.cache/Microsoft for upload unless this
# is set before onnxruntime is imported: a counting box sends nothing we did not put in the
# closed schema, so it is off before any of our modules can import onnxruntime.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from edge.aggregate import CountReport, ZoneOccupancy
from edge.counting import CountEvent
from edge.detections import Category, Detections
from edge.errors import (
    ConfigError,
    EdgeError,
    ModelError,
    PolicyViolation,
    PublishError,
    SourceError,
)
from edge.frames import Frame, FrameSource
from edge.track import Tracks

__version__ = "0.1.0"
__all__ = [
    "Category",
    "ConfigError",
    "CountEvent",
    "CountReport",
    "Detections",
    "EdgeError",
    "Frame",
    "FrameSource",
    "ModelError",
    "PolicyViolation",
    "PublishError",
    "SourceError",
    "Tracks",
    "ZoneOccupancy",
    "__version__",
]
