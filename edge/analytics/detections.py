"""The value object that leaves the detector: boxes, scores and classes, never pixels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from edge.schema import CATEGORY_NAMES


class Category(str, Enum):
    """What the product counts. Everything else is dropped inside the detector.

    The values are the published names, ``edge.schema.CategoryName``, in the same order."""

    PEDESTRIAN, BIKE, VEHICLE = CATEGORY_NAMES


CATEGORIES: tuple[Category, ...] = tuple(Category)

# COCO class id -> (COCO name kept as detail, counted category). The only classes that survive.
COUNTED_CLASSES: Mapping[int, tuple[str, Category]] = {
    0: ("person", Category.PEDESTRIAN),
    1: ("bicycle", Category.BIKE),
    2: ("car", Category.VEHICLE),
    3: ("motorcycle", Category.VEHICLE),
    5: ("bus", Category.VEHICLE),
    7: ("truck", Category.VEHICLE),
}
COUNTED_CLASS_IDS: npt.NDArray[np.int16] = np.array(sorted(COUNTED_CLASSES), dtype=np.int16)

# Lookup table COCO id -> index into CATEGORIES (-1 for classes never counted).
_CATEGORY_INDEX = np.full(256, -1, dtype=np.int8)
for _cid, (_, _cat) in COUNTED_CLASSES.items():
    _CATEGORY_INDEX[_cid] = CATEGORIES.index(_cat)

PERSON, BICYCLE, MOTORCYCLE = 0, 1, 3


def check_array(
    name: str, array: npt.NDArray[np.generic], shape: tuple[int, ...], dtype: type
) -> None:
    """Raise ValueError naming the array, the expected and the actual dtype or shape."""
    if array.dtype != dtype:
        raise ValueError(f"{name} must be {np.dtype(dtype).name}, got {array.dtype}")
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")


@dataclass(frozen=True, eq=False)
class Detections:
    """Detections in one frame, column-oriented.

    xyxy: float32 (N, 4), x1, y1, x2, y2 in original frame pixels (x right, y down).
    confidence: float32 (N,), in [0, 1].
    class_id: int16 (N,), COCO class ids, only those in ``COUNTED_CLASSES``.

    Arrays are made read-only on construction so no stage can write into another's input.
    """

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int16]

    def __post_init__(self) -> None:
        n = len(self.confidence)
        check_array("xyxy", self.xyxy, (n, 4), np.float32)
        check_array("confidence", self.confidence, (n,), np.float32)
        check_array("class_id", self.class_id, (n,), np.int16)
        for array in (self.xyxy, self.confidence, self.class_id):
            array.flags.writeable = False

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int16))

    def __len__(self) -> int:
        return len(self.confidence)

    def __getitem__(
        self, index: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice
    ) -> Detections:
        """Rows selected by a boolean mask, an index array or a slice, as a new object."""
        return Detections(
            np.ascontiguousarray(self.xyxy[index]),
            np.ascontiguousarray(self.confidence[index]),
            np.ascontiguousarray(self.class_id[index]),
        )

    @property
    def category_index(self) -> npt.NDArray[np.int8]:
        """Index into ``CATEGORIES`` for each row."""
        return _CATEGORY_INDEX[self.class_id]

    def count_by_category(self) -> dict[Category, int]:
        counts = np.bincount(self.category_index, minlength=len(CATEGORIES))
        return {cat: int(counts[i]) for i, cat in enumerate(CATEGORIES)}
