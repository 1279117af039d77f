"""Letterbox, decode and NMS on synthetic arrays: no model needed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.analytics.detections import COUNTED_CLASSES
from edge.detect.yolo import PAD_VALUE, Letterbox, decode, letterbox, nms, postprocess


@pytest.mark.parametrize(
    ("frame", "size", "scale", "pad"),
    [
        ((960, 540), (640, 640), 2 / 3, (0, 140)),
        ((810, 1080), (640, 640), 640 / 1080, (80, 0)),
        ((640, 640), (640, 640), 1.0, (0, 0)),
        ((320, 240), (640, 640), 2.0, (0, 80)),
        ((1920, 1080), (320, 320), 1 / 6, (0, 70)),
    ],
)
def test_letterbox_fit(
    frame: tuple[int, int], size: tuple[int, int], scale: float, pad: tuple[int, int]
) -> None:
    box = Letterbox.fit(frame, size)
    assert box.scale == pytest.approx(scale)
    assert (box.pad_x, box.pad_y) == pad


def test_letterbox_pads_grey_and_swaps_to_rgb() -> None:
    image = np.zeros((50, 100, 3), np.uint8)
    image[..., 0] = 255  # pure blue in BGR
    blob, box = letterbox(image, (100, 100))
    assert blob.shape == (1, 3, 100, 100)
    assert blob.dtype == np.float32
    assert (box.pad_x, box.pad_y) == (0, 25)
    assert blob[0, :, 0, 0] == pytest.approx([PAD_VALUE / 255] * 3)  # top padding
    assert blob[0, :, 99, 50] == pytest.approx([PAD_VALUE / 255] * 3)  # bottom padding
    assert blob[0, :, 50, 50] == pytest.approx([0.0, 0.0, 1.0])  # blue is the last RGB channel


def test_letterbox_reuses_a_buffer_without_stale_pixels() -> None:
    buffer = np.full((1, 3, 64, 64), 7.0, np.float32)
    wide = np.full((32, 64, 3), 200, np.uint8)
    blob, _ = letterbox(wide, (64, 64), buffer)
    assert blob is buffer
    assert np.all(blob <= 1.0)
    tall = np.full((64, 16, 3), 10, np.uint8)
    blob, _ = letterbox(tall, (64, 64), buffer)
    assert blob[0, 0, 5, 2] == pytest.approx(PAD_VALUE / 255)  # left pad, was image before
    assert blob[0, 0, 5, 32] == pytest.approx(10 / 255)


@given(
    st.integers(16, 2000),
    st.integers(16, 2000),
    st.sampled_from([320, 640]),
    st.floats(0, 0.9),
    st.floats(0, 0.9),
)
def test_boxes_map_back_to_frame_pixels(w: int, h: int, size: int, fx: float, fy: float) -> None:
    box = Letterbox.fit((w, h), (size, size))
    frame_box = np.array([[fx * w, fy * h, fx * w + 10, fy * h + 10]], np.float32)
    offset = np.array([box.pad_x, box.pad_y] * 2, np.float32)
    in_model = frame_box * box.scale + offset
    assert box.to_frame(in_model) == pytest.approx(frame_box, abs=1e-2 * max(w, h) / size + 1e-3)


def synthetic_output(
    rows: list[tuple[float, float, float, float, int, float]], nc: int = 80
) -> np.ndarray:
    """(4 + nc, N) output with one candidate per row: cx, cy, w, h, class, score."""
    out = np.zeros((4 + nc, len(rows)), np.float32)
    for j, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[:4, j] = cx, cy, w, h
        out[4 + cls, j] = score
    return out


def test_decode_keeps_only_counted_classes_above_threshold() -> None:
    rows = [
        (50, 50, 20, 40, 0, 0.9),  # person
        (80, 80, 10, 10, 27, 0.95),  # tie: never counted
        (30, 30, 10, 10, 2, 0.2),  # car below threshold
        (60, 60, 30, 30, 7, 0.6),  # truck
        (10, 10, 4, 4, 16, 0.99),  # dog
    ]
    xyxy, score, cls = decode(synthetic_output(rows), confidence=0.25)
    assert cls.tolist() == [0, 7]
    assert score.tolist() == pytest.approx([0.9, 0.6])
    assert xyxy[0].tolist() == pytest.approx([40, 30, 60, 70])


def test_decode_drops_a_candidate_whose_best_class_is_not_counted() -> None:
    out = synthetic_output([(50, 50, 20, 20, 6, 0.8)])  # train 0.8 ...
    out[4 + 5, 0] = 0.5  # ... and bus 0.5: it is a train, not a bus
    _, _, cls = decode(out, confidence=0.25)
    assert cls.tolist() == []


def test_decode_rejects_a_wrong_layout() -> None:
    with pytest.raises(ValueError, match=r"\(4 \+ nc, N\)"):
        decode(np.zeros((1, 84, 10), np.float32), 0.25)


def test_nms_is_class_wise() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.array([0, 0, 2, 0], np.int16)
    assert sorted(nms(boxes, scores, classes, 0.5).tolist()) == [0, 2, 3]
    assert sorted(nms(boxes, scores, classes, 0.9).tolist()) == [0, 1, 2, 3]
    assert nms(boxes, scores, classes, 0.5, max_detections=2).tolist() == [0, 2]
    assert nms(boxes[:0], scores[:0], classes[:0], 0.5).tolist() == []


def test_postprocess_clips_to_frame_and_drops_degenerate_boxes() -> None:
    rows = [
        (5, 50, 30, 20, 0, 0.9),  # sticks out on the left
        (50, 50, 0, 10, 0, 0.9),  # zero width
        (np.nan, 50, 10, 10, 0, 0.9),  # NaN
    ]
    box = Letterbox.fit((100, 100), (100, 100))
    d = postprocess(synthetic_output(rows), box, (100, 100), 0.25, 0.7)
    assert len(d) == 1
    assert d.xyxy[0].tolist() == pytest.approx([0, 40, 20, 60])


def test_postprocess_output_classes_are_always_counted_ones() -> None:
    rng = np.random.default_rng(1)
    out = rng.random((84, 500), dtype=np.float32)
    out[:2] *= 600
    out[2:4] = out[2:4] * 60 + 2
    d = postprocess(out, Letterbox.fit((640, 640), (640, 640)), (640, 640), 0.25, 0.7)
    assert len(d) > 0
    assert set(d.class_id.tolist()) <= set(COUNTED_CLASSES)
