"""Pure NumPy/OpenCV pre- and post-processing for YOLOv8/YOLO11 detection outputs.

No session, no state: each function takes arrays and returns new ones, so they are tested on
synthetic outputs without a model.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.analytics.detections import COUNTED_CLASS_IDS, Detections

_LAST_COUNTED = int(COUNTED_CLASS_IDS.max())
PAD_VALUE = 114  # Ultralytics' letterbox grey: keeping it keeps scores identical to theirs


@dataclass(frozen=True)
class Letterbox:
    """How a frame was fitted into the model input: ``input = frame * scale + (pad_x, pad_y)``."""

    scale: float
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, frame_size: tuple[int, int], input_size: tuple[int, int]) -> Letterbox:
        """Largest scale fitting frame (w, h) into input (w, h), centred like Ultralytics."""
        (w, h), (iw, ih) = frame_size, input_size
        scale = min(iw / w, ih / h)
        new_w, new_h = round(w * scale), round(h * scale)
        return cls(scale, round((iw - new_w) / 2 - 0.1), round((ih - new_h) / 2 - 0.1))

    def to_frame(self, xyxy: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Boxes from model-input pixels back to frame pixels."""
        offset = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], np.float32)
        return ((xyxy - offset) / np.float32(self.scale)).astype(np.float32)


def letterbox(
    image: npt.NDArray[np.uint8],
    input_size: tuple[int, int],
    out: npt.NDArray[np.float32] | None = None,
) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """BGR uint8 (H, W, 3) -> RGB float32 (1, 3, ih, iw) in [0, 1], padded with grey.

    ``out`` lets a caller reuse one input buffer across frames (the returned array is then
    ``out``). The resize runs in OpenCV; the BGR->RGB swap, scaling and HWC->CHW transpose are one
    strided NumPy pass per channel into the buffer, about 10x faster than
    ``cv2.dnn.blobFromImage`` on a 640x640 input.
    """
    h, w = image.shape[:2]
    iw, ih = input_size
    box = Letterbox.fit((w, h), input_size)
    new_w, new_h = round(w * box.scale), round(h * box.scale)
    resized = image
    if (new_w, new_h) != (w, h):
        resized = np.asarray(cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR))
    blob = np.empty((1, 3, ih, iw), np.float32) if out is None else out
    pad = np.float32(PAD_VALUE / 255.0)
    top, left = box.pad_y, box.pad_x
    bottom, right = top + new_h, left + new_w
    blob[0, :, :top] = pad
    blob[0, :, bottom:] = pad
    blob[0, :, top:bottom, :left] = pad
    blob[0, :, top:bottom, right:] = pad
    for rgb_channel in range(3):
        np.multiply(
            resized[:, :, 2 - rgb_channel],
            np.float32(1 / 255.0),
            out=blob[0, rgb_channel, top:bottom, left:right],
            casting="unsafe",
        )
    return blob, box


def decode(
    output: npt.NDArray[np.float32], confidence: float
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int16]]:
    """One image's raw output (4 + nc, N) -> boxes xyxy (K, 4), scores (K,), COCO ids (K,).

    Only counted classes survive, and a candidate keeps its class only when that class is the
    model's best guess over all nc classes: a train scoring 0.8 and bus 0.5 is a train, dropped,
    not a bus. A cheap pre-filter first: the counted classes are all among COCO 0-7, contiguous
    rows whose maximum bounds the score of any candidate we could keep; the full argmax then runs
    on the few candidates that pass.
    """
    if output.ndim != 2 or output.shape[0] < 5:
        raise ValueError(f"expected a (4 + nc, N) YOLO output, got shape {output.shape}")
    best = output[4 : 5 + _LAST_COUNTED].max(axis=0)
    keep = np.flatnonzero(best > confidence)
    all_scores = output[4:, keep]
    class_id = all_scores.argmax(axis=0).astype(np.int16)
    score = all_scores.max(axis=0)
    counted_mask = np.isin(class_id, COUNTED_CLASS_IDS)
    keep, class_id, score = keep[counted_mask], class_id[counted_mask], score[counted_mask]
    cx, cy, w, h = output[:4, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return xyxy.astype(np.float32), score.astype(np.float32), class_id


def nms(
    xyxy: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    class_id: npt.NDArray[np.int16],
    iou_threshold: float,
    max_detections: int = 300,
) -> npt.NDArray[np.intp]:
    """Class-wise greedy non-maximum suppression; returns kept indices, best score first.

    OpenCV's C++ ``NMSBoxesBatched`` does the greedy loop: a car never suppresses a pedestrian,
    and it is 4-5x faster than the same loop over NumPy rows at street-scene box counts.
    """
    if len(scores) == 0:
        return np.empty(0, np.intp)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    kept = np.asarray(
        cv2.dnn.NMSBoxesBatched(
            xywh,  # type: ignore[arg-type]  # the stubs say Sequence; arrays are what it takes
            scores,  # type: ignore[arg-type]
            class_id.astype(np.int32),  # type: ignore[arg-type]
            0.0,
            iou_threshold,
        ),
        dtype=np.intp,
    ).reshape(-1)
    # OpenCV's own top_k cuts candidates before suppression, not survivors after: cut here.
    return kept[np.argsort(-scores[kept], kind="stable")][:max_detections]


def postprocess(
    output: npt.NDArray[np.float32],
    box: Letterbox,
    frame_size: tuple[int, int],
    confidence: float,
    iou_threshold: float,
    max_detections: int = 300,
) -> Detections:
    """Raw output (4 + nc, N) -> Detections in frame pixels, clipped to the frame.

    Boxes that are not finite or collapse to zero width or height after clipping are dropped
    here, so the tracker never sees them.
    """
    xyxy, score, class_id = decode(output, confidence)
    kept = nms(xyxy, score, class_id, iou_threshold, max_detections)
    w, h = frame_size
    frame_xyxy = box.to_frame(xyxy[kept]).clip(0, np.array([w, h, w, h], np.float32))
    valid = (
        np.isfinite(frame_xyxy).all(axis=1)
        & (frame_xyxy[:, 2] > frame_xyxy[:, 0])
        & (frame_xyxy[:, 3] > frame_xyxy[:, 1])
    )
    return Detections(
        np.ascontiguousarray(frame_xyxy[valid]),
        np.ascontiguousarray(score[kept][valid]),
        np.ascontiguousarray(class_id[kept][valid]),
    )
