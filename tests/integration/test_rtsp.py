"""Smoke tests of the RTSP test camera (``tests/support/rtsp.py``) as OpenCV's FFmpeg backend
sees it."""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import numpy as np
import pytest

from tests.conftest import shared_file
from tests.support.rtsp import RtspServer

StartServer = Callable[[dict[str, str]], RtspServer]
CLIP = "clips/degirum_traffic2_intersection_960x540.mp4"
READ_TIMEOUT_S = 3.0


@pytest.fixture(autouse=True)
def rtsp_over_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV reads this when it opens a capture."""
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


def open_capture(url: str, read_timeout: float = READ_TIMEOUT_S) -> cv2.VideoCapture:
    params = [
        *(cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000),
        *(cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout * 1000)),
    ]
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)


def first_frame(url: str, timeout: float = 5.0) -> np.ndarray:
    """A frame from a fresh capture, reopening until ``timeout``; fails without one."""
    deadline = time.monotonic() + timeout
    while True:
        capture = open_capture(url)
        try:
            ok, frame = capture.read() if capture.isOpened() else (False, None)
        finally:
            capture.release()
        if ok:
            return frame
        if time.monotonic() > deadline:
            pytest.fail(f"no frame from {url} within {timeout} s")
        time.sleep(0.2)


def read_fails_within(capture: cv2.VideoCapture, timeout: float) -> float:
    """Seconds until ``capture.read()`` returns False; fails if it still reads after ``timeout``."""
    start = time.monotonic()
    while capture.read()[0]:
        if time.monotonic() - start > timeout:
            pytest.fail(f"still reading frames {timeout} s later")
    return time.monotonic() - start


def test_testsrc_serves_live_frames(rtsp_server: StartServer) -> None:
    server = rtsp_server({"cam": "testsrc"})
    assert first_frame(server.url("cam")).shape == (480, 640, 3)


def test_file_is_served_at_its_size(rtsp_server: StartServer) -> None:
    server = rtsp_server({"clip": str(shared_file(CLIP))})
    assert first_frame(server.url("clip")).shape == (540, 960, 3)


def test_kill_and_restart(rtsp_server: StartServer) -> None:
    server = rtsp_server({"cam": "testsrc"})
    capture = open_capture(server.url("cam"))
    try:
        assert capture.read()[0]
        server.kill()
        assert not server.running
        read_fails_within(capture, READ_TIMEOUT_S + 2)
    finally:
        capture.release()  # a capture never recovers from a dead server: always reopen
    server.start()
    assert server.running
    assert first_frame(server.url("cam"), timeout=5.0).shape == (480, 640, 3)


def test_freeze_stalls_reads_and_resume_recovers(rtsp_server: StartServer) -> None:
    server = rtsp_server({"cam": "testsrc"})
    # A short read timeout keeps this fast: a stall is only seen after ~2 timed-out reads.
    read_timeout = 1.0
    capture = open_capture(server.url("cam"), read_timeout)
    try:
        assert capture.read()[0]
        server.freeze()
        # OpenCV first hands out the ~1 s FFmpeg buffered; then the first two reads that hit
        # the read timeout still return True (frames the decoder held back), then the
        # decoder's remaining delayed frames at once, and only then False.
        read_fails_within(capture, 3 * read_timeout + 2)
    finally:
        capture.release()
    server.resume()
    assert first_frame(server.url("cam"), timeout=5.0).shape == (480, 640, 3)
