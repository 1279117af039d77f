from __future__ import annotations

import numpy as np
import pytest

from edge.analytics.detections import Category, Detections
from tests.conftest import make_detections


def test_shapes_are_checked_with_expected_and_actual() -> None:
    with pytest.raises(ValueError, match=r"xyxy must have shape \(2, 4\), got \(2, 3\)"):
        Detections(np.zeros((2, 3), np.float32), np.zeros(2, np.float32), np.zeros(2, np.int16))
    with pytest.raises(ValueError, match="confidence must be float32"):
        Detections(np.zeros((1, 4), np.float32), np.zeros(1, np.float64), np.zeros(1, np.int16))


def test_arrays_are_read_only_so_no_stage_writes_into_another() -> None:
    d = make_detections([[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="read-only"):
        d.xyxy[0, 0] = 5


def test_selection_returns_a_new_object() -> None:
    d = make_detections([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]], conf=[0.1, 0.5, 0.9])
    picked = d[d.confidence > 0.3]
    assert len(picked) == 2
    assert picked.confidence.tolist() == pytest.approx([0.5, 0.9])
    assert len(d) == 3


def test_count_by_category_maps_coco_classes() -> None:
    d = make_detections([[0, 0, 1, 1]] * 6, cls=[0, 1, 2, 3, 5, 7])
    assert d.count_by_category() == {
        Category.PEDESTRIAN: 1,
        Category.BIKE: 1,
        Category.VEHICLE: 4,
    }
    assert Detections.empty().count_by_category() == dict.fromkeys(Category, 0)
