"""A live camera's hand-over to the loop: the newest frame once, at most ``target_fps`` a second
by time slots (``Thinning``), as recordings are thinned."""

from __future__ import annotations

import numpy as np

from edge.vision.frames import Frame
from edge.vision.live import LiveSource

IMAGE = np.zeros((4, 4, 3), np.uint8)


def arrive(source: LiveSource, captured: float) -> None:
    """What the reader thread does when a frame is decoded (the thread is not started here)."""
    source._newest = Frame(source.camera_id, 0, captured, IMAGE)


def test_a_jittery_camera_keeps_its_rate() -> None:
    """Frames 0.08 then 0.12 s apart at a 10 fps limit: each in its own 0.1 s slot, all kept (a
    minimum spacing of 0.1 s dropped every other one)."""
    source = LiveSource("rtsp://camera/stream", "cam", target_fps=10)
    kept = 0
    for i in range(20):
        arrive(source, 1000.0 + i * 0.1 + (0.02 if i % 2 else 0.0))
        kept += source.take() is not None
    assert kept == 20 and source.health.frames_dropped == 0


def test_a_faster_camera_is_thinned_to_the_limit() -> None:
    source = LiveSource("rtsp://camera/stream", "cam", target_fps=10)
    kept = 0
    for i in range(50):  # 2 s at 25 fps
        arrive(source, 1000.0 + i / 25)
        kept += source.take() is not None
    assert kept == 20 and source.health.frames_dropped == 30
