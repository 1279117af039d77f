"""The scene without its passers-by, small enough that nobody in it could be recognised."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import numpy.typing as npt

from edge.errors import SourceError
from edge.vision.frames import Frame, FrameFeed

MAX_WIDTH = 320  # pixels, whatever the source
MAX_SCALE = 1 / 8  # of the source's linear resolution
SAMPLES = 25  # frames in the median
SPREAD_S = 5.0  # seconds of stream they are taken from


def background_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of the picture for a source of ``frame_size``: at most 1/8 of its
    linear resolution and ``MAX_WIDTH`` wide, its aspect ratio kept."""
    width, height = frame_size
    small = max(1, min(int(width * MAX_SCALE), MAX_WIDTH))
    return small, max(1, round(height * small / width))


def median_background(
    frames: Iterator[Frame], frame_size: tuple[int, int]
) -> npt.NDArray[np.uint8]:
    """Each frame shrunk as soon as it is read (the full frame is dropped at once), then the
    per-pixel median of the small copies: anyone who moves is gone from it."""
    size = background_size(frame_size)
    small = [cv2.resize(frame.image, size, interpolation=cv2.INTER_AREA) for frame in frames]
    if not small:
        raise SourceError("no frame to make the background from")
    median: npt.NDArray[np.uint8] = np.median(np.stack(small), axis=0).astype(np.uint8)
    return median


def frames_of(feed: FrameFeed, until: Callable[[], bool]) -> Iterator[Frame]:
    """A started feed's frames until it ends or ``until()``; a live camera is polled."""
    while not until():
        frame = feed.take()
        if frame is not None:
            yield frame
        elif feed.finished:
            return
        else:
            time.sleep(0.01)


def sampled(feed: FrameFeed, timeout_s: float = 30.0) -> Iterator[Frame]:
    """Up to ``SAMPLES`` frames spread over ``SPREAD_S`` seconds of stream time."""
    step = SPREAD_S / SAMPLES
    first: float | None = None
    taken = 0
    deadline = time.monotonic() + timeout_s
    for frame in frames_of(feed, lambda: time.monotonic() > deadline):
        first = frame.timestamp if first is None else first
        if frame.timestamp - first >= taken * step:
            taken += 1
            yield frame
            if taken == SAMPLES:
                return


def png(image: npt.NDArray[np.uint8]) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise SourceError("the background could not be encoded")
    return encoded.tobytes()
