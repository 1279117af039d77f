"""The region of a frame the counters need, and how detections in a crop map back to the frame.

Lines and zones often cover a part of the view: a pavement, a doorway, one lane. Detecting on
that part alone, cropped and then letterboxed, gives the model the region at a higher
resolution than the whole frame would (a 320 model sees a 480-pixel-wide region at 2/3 scale
instead of 1/3), so small, far objects are found as they would be by a larger model, and no
pixel outside the region is ever read by the detector. The region holds every line and zone
with a margin around it, so objects are tracked before they reach a line and settle beyond it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge.analytics.detections import Detections
from edge.config import CameraConfig

# Below this fraction of the frame's area a crop is worth it: a crop almost as large as the frame
# changes the scale by a few per cent and costs a second code path for nothing.
MAX_AREA_FRACTION = 0.6


@dataclass(frozen=True)
class Region:
    """A rectangle of whole pixels ``[x0, x1) x [y0, y1)`` inside the frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def crop(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """The region of ``image`` as a view (no copy)."""
        return image[self.y0 : self.y1, self.x0 : self.x1]

    def to_frame(self, detections: Detections) -> Detections:
        """Detections from crop pixels to frame pixels: an exact shift by the region's corner
        (whole pixels, so float32 boxes shift without rounding)."""
        offset = np.array([self.x0, self.y0, self.x0, self.y0], np.float32)
        return Detections(detections.xyxy + offset, detections.confidence, detections.class_id)


def region_of_interest(
    camera: CameraConfig, frame_size: tuple[int, int], margin: float
) -> Region | None:
    """The bounding rectangle of the camera's lines and zones, grown by ``margin`` x the
    frame's larger side on every side and clipped to the frame; ``None`` (detect on the whole
    frame) when the camera has no figure or the region would cover more than
    ``MAX_AREA_FRACTION`` of the frame."""
    points = [p for line in camera.lines for p in (line.start, line.end)]
    points += [p for zone in camera.zones for p in zone.points]
    if not points:
        return None
    w, h = frame_size
    grow = margin * max(w, h)
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    region = Region(
        max(0, math.floor(min(xs) - grow)),
        max(0, math.floor(min(ys) - grow)),
        min(w, math.ceil(max(xs) + grow)),
        min(h, math.ceil(max(ys) + grow)),
    )
    if region.width <= 0 or region.height <= 0:
        return None
    if region.width * region.height > MAX_AREA_FRACTION * w * h:
        return None
    return region
