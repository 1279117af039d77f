"""Frames and the interface every frame source implements. Frames stay inside the process."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture.

    timestamp: seconds; stream time for recorded clips (origin + index / fps), wall-clock
    capture time for live ones.
    image: uint8 (H, W, 3), BGR as OpenCV decodes it. Only the detector reads it.
    """

    camera_id: str
    index: int
    timestamp: float
    image: npt.NDArray[np.uint8]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.image.shape[1], self.image.shape[0]


def time_slot(timestamp: float, fps: float) -> int:
    """The 1/fps slot of time a timestamp falls in. Frame-rate limits keep the first frame of
    each slot (not frames at least 1/fps apart), so a jittery source (frames 0.08 s then 0.12 s
    apart at 10 fps) keeps its rate; the 1e-9 absorbs timestamps computed as index / fps."""
    return math.floor(timestamp * fps + 1e-9)


class Thinning:
    """Keeps frames so that at most ``target_fps`` per second of stream time pass: recordings
    (``sources``) and live cameras (``live``) alike.

    A frame passes when its timestamp reaches the next slot; slots advance by whole periods so the
    kept rate does not drift on clips whose fps is not a multiple of the target.
    """

    def __init__(self, target_fps: float | None) -> None:
        self.fps = target_fps or 0.0
        self.next_slot = 0.0

    def keep(self, timestamp: float) -> bool:
        if not self.fps:
            return True
        if timestamp + 1e-9 < self.next_slot:
            return False
        self.next_slot = (time_slot(timestamp, self.fps) + 1) / self.fps
        return True


class FrameSource(Protocol):
    """Yields frames in order until the source ends or is closed."""

    camera_id: str
    fps: float  # nominal frames per second of the stream (before any thinning)

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) in pixels, known once the source is open."""
        ...

    @property
    def expected_frames(self) -> int | None:
        """How many frames will be yielded, when the container says (an estimate), else None."""
        ...


@dataclass
class FeedHealth:
    """Figures about a feed's stream, never about the scene."""

    frames_received: int = 0
    frames_dropped: int = 0  # decoded, then replaced by a newer one or thinned before processing
    reconnects: int = 0  # gaps: tracks from before one must not be matched with what follows
    stalls: int = 0
    online: bool = False
    offline_since: float | None = field(default=None, repr=False)
    offline_total_s: float = 0.0

    def offline_s(self, now: float) -> float:
        current = now - self.offline_since if self.offline_since is not None else 0.0
        return self.offline_total_s + current


class FrameFeed(Protocol):
    """What the runner reads, for recordings and live cameras alike (``sources.open_feed``).

    ``take`` returns the next frame to process, or None: a recording blocks for its next frame
    and returns None only once it has ended (``finished``); a live camera never blocks and
    returns None while no new frame has arrived. ``health.reconnects`` counts the gaps so far
    (``health.reconnects``): tracks from before a gap must not be matched with what follows.
    """

    camera_id: str
    live: bool  # frames carry wall-clock capture times; their age is a health figure
    fps: float  # nominal frames per second of the stream, 0 when unknown
    health: FeedHealth

    def start(self) -> None: ...

    def take(self) -> Frame | None: ...

    @property
    def finished(self) -> bool: ...

    def close(self) -> None: ...
