"""Edge footfall counting: anonymous, time-aggregated counts from street cameras.

The value objects that pass between stages are re-exported here. The package is grouped by
purpose: ``vision`` (frames, sources, motion gate), ``detect`` (detector protocol, ONNX
Runtime, YOLO decoding), ``analytics`` (tracking, counting, windows), ``legal`` (policy, gates,
audit, notice), ``publish`` (sinks, spool, MQTT), ``dashboard``; ``app`` wires them from the
settings and ``runner`` is the one frame loop.
"""

from __future__ import annotations

import os

# ONNX Runtime's Linux builds record usage events under ~/.cache/Microsoft for upload unless this
# is set before onnxruntime is imported: a counting box sends nothing we did not put in the
# closed schema, so it is off before any of our modules can import onnxruntime. Set, not
# defaulted: ORT_DISABLE_TELEMETRY=0 in the environment must not turn it back on
# (edge.detect.runtime also switches ONNX Runtime's events off through its API).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from edge.analytics.aggregate import CountReport, ZoneOccupancy
from edge.analytics.counting import CountEvent
from edge.analytics.detections import Category, Detections
from edge.analytics.track import Tracks
from edge.errors import (
    ConfigError,
    EdgeError,
    ModelError,
    PolicyViolation,
    PublishError,
    SourceError,
)
from edge.vision.frames import Frame, FrameSource

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
