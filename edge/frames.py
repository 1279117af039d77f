"""Frames and the interface every frame source implements. Frames stay inside the process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture.

    timestamp: seconds; stream time for recorded clips (index / fps), monotonic for live ones.
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
