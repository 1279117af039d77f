"""Motion gate: skip the detector on frames where nothing has changed.

A street at night, or a quiet path between passers-by, is the same picture frame after frame;
running a 30 ms inference on it buys nothing. The gate compares a small blurred grey copy of each
frame with the copy of the last frame that went to the detector (not the previous frame, so slow
movement accumulates until it shows) and lets a frame through when enough pixels changed, or when
``max_skip_s`` has passed so that tracks never age out while the scene is still.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

SCALE_WIDTH = 240  # about this many columns in the grey copy: every 4th pixel of a 960-wide frame


class MotionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(default=True, description="Skip detection on unchanged frames.")
    pixel_threshold: int = Field(
        default=18, ge=1, le=255, description="Grey-level change that counts as changed."
    )
    min_changed: float = Field(
        default=0.0005,
        gt=0,
        lt=1,
        description="Fraction of the picture that must change (0.0005 = a 10x25 px walker "
        "in a 960x540 frame).",
    )
    max_skip_s: float = Field(
        default=0.5, gt=0, le=10, description="Detect at least this often, whatever the scene."
    )
    idle_fps: float | None = Field(
        default=5.0,
        gt=0,
        le=120,
        description="Detection rate while no track is near a line or a zone's edge: the "
        "changed frames in between are skipped, and the tracker predicts. Near a line (within "
        "a box height plus the distance the object covers until the next idle detection) "
        "at most busy_fps times a second. null detects every changed frame.",
    )
    busy_fps: float | None = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Detection rate while a track is near a line or a zone's edge: the "
        "tracker predicts between detections (its counts at 10 fps are as good as at 25-30, see "
        "the README). A new track waiting for its confirmation is detected on every changed "
        "frame. null detects every changed frame.",
    )

    @model_validator(mode="after")
    def _busy_not_slower(self) -> MotionConfig:
        if self.idle_fps and self.busy_fps and self.busy_fps < self.idle_fps:
            raise ValueError(
                f"busy_fps ({self.busy_fps:g}) must be at least idle_fps ({self.idle_fps:g})"
            )
        return self


class MotionGate:
    """``changed(image, timestamp)`` says whether a frame must go to the detector."""

    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._reference: npt.NDArray[np.uint8] | None = None
        self._reference_time = float("-inf")

    def _grey(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """Every n-th pixel, grey, blurred: a few microseconds, and the blur absorbs the
        aliasing and the codec's noise that plain subsampling lets through."""
        # OpenCV is imported here, not with the module: ``edge.config`` imports ``MotionConfig``
        # and the dashboard reads ``edge.config`` without OpenCV installed.
        import cv2

        step = max(1, image.shape[1] // SCALE_WIDTH)
        h, w = image.shape[:2]
        # Nearest-neighbour resize: every step-th pixel, as image[::step, ::step] (exactly so
        # when step divides the size, else a pixel off here and there), without NumPy's strided
        # copy: 3-5x cheaper on a 960x540 frame.
        size = (max(1, w // step), max(1, h // step))
        small = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return np.asarray(cv2.GaussianBlur(grey, (5, 5), 0), dtype=np.uint8)

    def changed(self, image: npt.NDArray[np.uint8], timestamp: float, force: bool = False) -> bool:
        """True when the frame differs enough from the last detected one (which it then becomes)
        or when ``force``d (the tracker waits for a confirming detection)."""
        if not self.config.enabled:
            return True
        grey = self._grey(image)
        due = force or timestamp - self._reference_time >= self.config.max_skip_s
        if not due and self._reference is not None and self._reference.shape == grey.shape:
            import cv2  # see _grey

            diff = cv2.absdiff(grey, self._reference)
            changed = np.count_nonzero(diff > self.config.pixel_threshold)
            if changed < self.config.min_changed * grey.size:
                return False
        self._reference, self._reference_time = grey, timestamp
        return True

    def reset(self) -> None:
        """After a gap in the stream the next frame always goes to the detector."""
        self._reference, self._reference_time = None, float("-inf")
