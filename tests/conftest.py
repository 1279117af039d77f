"""Shared fixtures: where the real model files and clips are, and small factories.

The real files live in ``../shared`` (or ``EDGE_SHARED_DIR``). On a user's fresh clone without
them, tests that need them skip with the reason; under CI (``CI`` set) a missing file fails.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from edge.analytics.detections import Detections
from tests.support.broker import broker, secure_broker  # noqa: F401  (fixtures)
from tests.support.rtsp import rtsp_server  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_SHARED_DIR", REPO.parent / "shared"))


def shared_file(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        message = f"{path} is missing (the shared models and clips are not beside this checkout)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def yolov8n() -> Path:
    return shared_file("models/yolov8n.onnx")


@pytest.fixture
def yolo11n() -> Path:
    return shared_file("models/yolo11n.onnx")


@pytest.fixture
def tud_clip() -> Path:
    return shared_file("clips/tud_campus/TUD-Campus.mp4")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def make_detections(
    boxes: Sequence[Sequence[float]],
    conf: float | Sequence[float] = 0.9,
    cls: int | Sequence[int] = 0,
) -> Detections:
    """Detections from plain lists, for unit tests."""
    n = len(boxes)
    return Detections(
        np.asarray(boxes, np.float32).reshape(n, 4),
        np.broadcast_to(np.asarray(conf, np.float32), (n,)).copy(),
        np.broadcast_to(np.asarray(cls, np.int16), (n,)).copy(),
    )


AUDIT_LOG_ENV = "TESTS_AUDIT_LOG"  # read by the tests' helpers only, never by edge


@pytest.fixture(autouse=True)
def audit_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test audits into its own temp file: ``edge_argv`` passes it to each ``edge``
    subprocess as ``--audit-log`` (edge itself reads no variable for it), and in-process calls
    pass this path as ``audit_log``."""
    path = tmp_path / "audit" / "audit.jsonl"
    monkeypatch.setenv(AUDIT_LOG_ENV, str(path))
    return path


def edge_argv(*args: str) -> list[str]:
    """``python -m edge --audit-log <this test's audit file> ARGS``, for subprocesses."""
    return [sys.executable, "-m", "edge", "--audit-log", os.environ[AUDIT_LOG_ENV], *args]


EXAMPLE = REPO / "examples" / "tud-campus.yaml"
