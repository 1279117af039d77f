"""Detection on a camera's region with the real model: same objects, frame coordinates."""

from __future__ import annotations

from pathlib import Path

import cv2

from edge.analytics.geometry import box_iou
from edge.detect.detector import YoloDetector
from edge.detect.roi import Region
from edge.detect.runtime import OnnxRuntime
from tests.conftest import shared_file


def test_people_in_the_region_are_found_where_the_whole_frame_finds_them(yolo11n: Path) -> None:
    """bus.jpg (810x1080): a region around the people on the left. Every confident person the
    whole-frame pass finds well inside the region comes back from the crop at the same place
    (IoU >= 0.8 after mapping back), and nothing is found outside the region."""
    image = cv2.imread(str(shared_file("images/bus.jpg")))
    detector = YoloDetector(OnnxRuntime(yolo11n), confidence=0.25, iou=0.7)
    region = Region(0, 300, 560, 1000)
    (whole,) = detector.detect([image])
    (cropped,) = detector.detect([region.crop(image)])
    back = region.to_frame(cropped)

    inside = (
        (whole.xyxy[:, 0] >= region.x0 + 5)
        & (whole.xyxy[:, 1] >= region.y0 + 5)
        & (whole.xyxy[:, 2] <= region.x1 - 5)
        & (whole.xyxy[:, 3] <= region.y1 - 5)
        & (whole.class_id == 0)
        & (whole.confidence >= 0.5)
    )
    assert inside.sum() >= 2
    iou = box_iou(whole.xyxy[inside], back.xyxy)
    assert (iou.max(axis=1) >= 0.8).all()
    assert (back.xyxy[:, [0, 1]] >= [region.x0, region.y0]).all()
    assert (back.xyxy[:, [2, 3]] <= [region.x1, region.y1]).all()
