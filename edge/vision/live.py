"""Live cameras: a reader thread per camera that keeps only the newest frame, and comes back.

OpenCV's FFmpeg backend reads the stream; open and read timeouts bound every call, so a camera
that stalls (connection open, nothing sent) returns from ``read`` after ``stall_s`` instead of
blocking for half a minute; the watchdog is the time since the last frame, since after its
timeout FFmpeg may still hand back an old frame as a success. Whatever ends a stream (end,
error, stall), the capture is released and a new one opened with capped exponential backoff
plus jitter: measured here, a capture whose server died never recovers by itself. Frames are
stamped with the wall-clock time of capture so windows fall on real minutes; the consumer takes
the newest one, older ones are dropped and counted, so processing always sees the present
however slow the detector.

Credentials in URLs are redacted (``redact``) in every log line and status message.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Literal

import cv2
import numpy as np

from edge.memory import return_freed_memory
from edge.vision.frames import FeedHealth, Frame, Thinning

log = logging.getLogger(__name__)

Transport = Literal["tcp", "udp"]
LIVE_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "/dev/video")
# OpenCV reads RTSP options from one process-wide variable when a capture opens: opens are
# serialised so each camera gets its own transport.
_OPEN_LOCK = threading.Lock()


def is_live(source: str) -> bool:
    return source.startswith(LIVE_PREFIXES)


def redact(url: str) -> str:
    """rtsp://user:secret@host/... -> rtsp://***@host/..."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", url)


class LiveSource:
    """One camera's stream, read by its own thread: a ``FrameFeed`` whose ``take`` returns the
    newest frame once, at most ``target_fps`` a second (the others are dropped and counted)."""

    live = True
    fps = 0.0  # whatever the camera sends
    finished = False  # a camera is retried until the run stops

    def __init__(
        self,
        url: str,
        camera_id: str,
        *,
        target_fps: float | None = None,
        transport: Transport = "tcp",
        stall_s: float = 5.0,
        open_timeout_s: float = 10.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 2.0,
        on_status: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.url = url
        self.camera_id = camera_id
        self._thinning = Thinning(target_fps)
        self.transport = transport
        self.stall_s = stall_s
        self.open_timeout_s = open_timeout_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.on_status = on_status
        self.health = FeedHealth(offline_since=time.time())
        self._newest: Frame | None = None
        self._index = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._read_loop, name=f"read-{camera_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 0.5) -> None:
        """Ask the reader to end; a read blocked in FFmpeg ends within its own timeout."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def close(self) -> None:
        self.stop(timeout=0.2)

    def take(self) -> Frame | None:
        """The newest frame not taken yet, or None; one in the same 1/``target_fps`` slot of
        time as the last one taken is dropped (``Thinning``: a jittery camera keeps its rate)."""
        with self._lock:
            frame, self._newest = self._newest, None
            if frame is not None and not self._thinning.keep(frame.timestamp):
                self.health.frames_dropped += 1
                return None
        return frame

    # -- reader thread -------------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture | None:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.stall_s * 1000),
        ]  # fmt: skip
        with _OPEN_LOCK:
            if self.url.startswith(("rtsp://", "rtsps://")):
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{self.transport}"
            if self.url.startswith("/dev/video"):
                capture = cv2.VideoCapture(self.url, cv2.CAP_V4L2)
            else:
                capture = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _set_online(self, online: bool) -> None:
        now = time.time()
        health = self.health
        if online == health.online:
            return
        health.online = online
        if online and health.offline_since is not None:
            health.offline_total_s += now - health.offline_since
            health.offline_since = None
        elif not online:
            health.offline_since = now
        log.info(
            "camera %s %s (%s)", self.camera_id, "online" if online else "offline", redact(self.url)
        )
        if self.on_status is not None:
            self.on_status(self.camera_id, online)

    def _read_loop(self) -> None:
        backoff = self.backoff_min_s
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                log.warning("camera %s: cannot open %s", self.camera_id, redact(self.url))
                self._set_online(False)
            else:
                backoff = self.backoff_min_s
                last_frame = time.monotonic()
                while not self._stop.is_set():
                    ok, image = capture.read()
                    if time.monotonic() - last_frame >= self.stall_s:
                        break  # after its read timeout FFmpeg may still return an old frame
                    if not ok or image is None:
                        break
                    last_frame = time.monotonic()
                    frame = Frame(self.camera_id, self._index, time.time(), np.asarray(image))
                    self._index += 1
                    with self._lock:
                        if self._newest is not None:
                            self.health.frames_dropped += 1
                        self._newest = frame
                    self.health.frames_received += 1
                    self._set_online(True)
                capture.release()
                return_freed_memory()
                if self._stop.is_set():
                    break
                if time.monotonic() - last_frame >= self.stall_s * 0.9:
                    self.health.stalls += 1
                self.health.reconnects += 1
                self._set_online(False)
            delay = backoff * (1 + random.random() * 0.25)  # jitter: cameras do not stampede
            self._stop.wait(delay)
            backoff = min(backoff * 2, self.backoff_max_s)
