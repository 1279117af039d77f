"""The detection region: which part of a frame the detector sees, and the way back."""

from __future__ import annotations

import numpy as np
import pytest

from edge.config import CameraConfig
from edge.detect.roi import Region, region_of_interest
from tests.conftest import make_detections


def camera(lines: list[tuple[tuple[float, float], tuple[float, float]]], zones=()) -> CameraConfig:
    return CameraConfig(
        id="cam",
        location="test",
        source="test.mp4",
        lines=[{"name": f"l{i}", "start": a, "end": b} for i, (a, b) in enumerate(lines)],
        zones=[{"name": f"z{i}", "points": p} for i, p in enumerate(zones)],
    )


def test_the_region_holds_every_figure_with_the_margin_and_stays_in_the_frame() -> None:
    cam = camera([((400, 300), (600, 300))], zones=[[(700, 500), (800, 500), (800, 600)]])
    region = region_of_interest(cam, (1920, 1080), margin=0.05)  # 96 px around
    assert region == Region(304, 204, 896, 696)
    edge = region_of_interest(camera([((10, 10), (200, 10))]), (1920, 1080), margin=0.05)
    assert edge == Region(0, 0, 296, 106)


@pytest.mark.parametrize(
    "lines",
    [
        [],  # no figure: the whole frame
        [((0, 0), (100, 0)), ((1800, 1000), (1900, 1000))],  # two far corners: most of it
        [((100, 100), (1800, 1000))],
    ],
)
def test_no_region_when_it_would_not_help(lines: list) -> None:
    assert region_of_interest(camera(lines), (1920, 1080), margin=0.05) is None


def test_a_crop_is_a_view_of_the_region() -> None:
    image = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    region = Region(5, 2, 25, 12)
    crop = region.crop(image)
    assert crop.shape == (10, 20, 3)
    assert np.shares_memory(crop, image)
    np.testing.assert_array_equal(crop[0, 0], image[2, 5])


def test_boxes_map_back_exactly() -> None:
    region = Region(304, 204, 896, 696)
    found = make_detections([(0.5, 1.25, 100.75, 200.0), (10, 20, 30, 40)], [0.9, 0.6], [0, 2])
    back = region.to_frame(found)
    np.testing.assert_array_equal(back.xyxy, [[304.5, 205.25, 404.75, 404.0], [314, 224, 334, 244]])
    assert back.xyxy.dtype == np.float32
    np.testing.assert_array_equal(back.confidence, found.confidence)
    np.testing.assert_array_equal(back.class_id, found.class_id)
