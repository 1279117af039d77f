"""Static INT8 quantisation on the real 320x320 YOLO11n and TUD-Campus frames, and its refusals.

The model is quantised once per module on 4 frames (a few seconds on 2 cores): enough to check
the graph, the metadata and that the detections still match float32.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import pytest

from edge.detect.detector import YoloDetector
from edge.detect.quantize import (
    QUANTIZATION_TAG,
    QuantizeReport,
    box_decoding_nodes,
    quantize_model,
    read_calibration_frames,
)
from edge.detect.runtime import OnnxRuntime
from edge.errors import ModelError, SourceError
from tests.conftest import shared_file
from tests.integration.test_detector import tiny_model

FRAMES = 4


@pytest.fixture(scope="module")
def yolo11n_320() -> Path:
    return shared_file("models/yolo11n_320.onnx")


@pytest.fixture(scope="module")
def tud() -> Path:
    return shared_file("clips/tud_campus/TUD-Campus.mp4")


@pytest.fixture(scope="module")
def quantized(
    yolo11n_320: Path, tud: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[QuantizeReport, list[int]]:
    """The 320x320 model quantised on 4 TUD frames, and the progress ticks it reported."""
    ticks: list[int] = []
    output = tmp_path_factory.mktemp("quantize") / "yolo11n_320_int8.onnx"
    return quantize_model(yolo11n_320, tud, output, frames=FRAMES, progress=ticks.append), ticks


def tud_frame(clip: Path, index: int) -> npt.NDArray[np.uint8]:
    capture = cv2.VideoCapture(str(clip))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    assert ok, f"could not read frame {index} of {clip}"
    return np.asarray(image, np.uint8)


def iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of xyxy boxes: (len(a), len(b))."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return np.asarray(inter / (area_a[:, None] + area_b[None, :] - inter), np.float32)


def test_the_output_is_a_qdq_model_with_the_report_to_match(
    quantized: tuple[QuantizeReport, list[int]], yolo11n_320: Path
) -> None:
    report, ticks = quantized
    graph = onnx.load(str(report.output)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") == report.quantize_nodes > 50
    assert "DequantizeLinear" in ops
    assert report.calibration_frames == FRAMES
    assert sum(ticks) == FRAMES  # one progress tick per calibration frame
    assert report.size_before == yolo11n_320.stat().st_size
    assert report.size_after == report.output.stat().st_size < report.size_before / 2
    assert report.excluded_nodes > 10
    assert report.seconds > 0
    assert not list(report.output.parent.glob(".*.partial"))


def test_the_box_decoding_stays_float32(quantized: tuple[QuantizeReport, list[int]]) -> None:
    graph = onnx.load(str(quantized[0].output)).graph
    producer = {out: node for node in graph.node for out in node.output}
    (last,) = [node for node in graph.node if graph.output[0].name in node.output]
    assert last.op_type == "Concat"
    assert all(producer[name].op_type != "DequantizeLinear" for name in last.input)
    softmax = [node for node in graph.node if node.name.endswith("/dfl/Softmax")]
    assert softmax, "no DFL Softmax left in float32"


def test_the_ultralytics_metadata_is_kept_and_the_calibration_recorded(
    quantized: tuple[QuantizeReport, list[int]], yolo11n_320: Path
) -> None:
    before = {p.key: p.value for p in onnx.load(str(yolo11n_320)).metadata_props}
    after = {p.key: p.value for p in onnx.load(str(quantized[0].output)).metadata_props}
    for key in ("names", "imgsz", "task", "stride", "batch", "author", "license"):
        assert after[key] == before[key], key
    assert after["quantization"] == QUANTIZATION_TAG
    assert after["calibration_frames"] == str(FRAMES)
    assert after["calibration_clip"] == "TUD-Campus.mp4"


def test_int8_finds_the_people_float32_finds(
    quantized: tuple[QuantizeReport, list[int]], yolo11n_320: Path, tud: Path
) -> None:
    image = tud_frame(tud, 40)
    (reference,) = YoloDetector(OnnxRuntime(yolo11n_320)).detect([image])
    runtime = OnnxRuntime(quantized[0].output)
    assert runtime.info.input_size == (320, 320)
    (found,) = YoloDetector(runtime).detect([image])
    people, int8_people = reference.class_id == 0, found.class_id == 0
    assert people.sum() >= 3, "the TUD frame should show several people"
    overlap = iou(reference.xyxy[people], found.xyxy[int8_people])
    matched = (overlap.max(axis=1) >= 0.5).mean() if overlap.size else 0.0
    assert matched >= 0.75, f"only {matched:.0%} of the float32 people found by INT8"
    assert abs(int(int8_people.sum()) - int(people.sum())) <= max(2, people.sum() // 4)


def test_the_box_decoding_rule_finds_the_head_tail_of_each_export() -> None:
    for name, head in (("yolo11n_320.onnx", "/model.23/"), ("yolov8n.onnx", "/model.22/")):
        graph = onnx.load(str(shared_file(f"models/{name}"))).graph
        nodes = box_decoding_nodes(graph)
        ops = {node.op_type for node in graph.node if node.name in nodes}
        assert all(node.startswith(head) for node in nodes), name
        assert {"Softmax", "Sigmoid", "Concat"} <= ops, name
        assert sum(node.op_type == "Conv" and node.name in nodes for node in graph.node) == 1


def test_calibration_frames_are_spread_over_the_clip(tud: Path) -> None:
    frames = read_calibration_frames(tud, 3)
    assert len(frames) == 3
    first, last = tud_frame(tud, 0), tud_frame(tud, 70)
    assert np.array_equal(frames[0], first)
    assert not np.array_equal(frames[-1], first)
    assert (
        np.abs(frames[-1].astype(int) - last).mean() < np.abs(frames[-1].astype(int) - first).mean()
    )
    assert len(read_calibration_frames(tud, 500)) == 71  # a short clip gives all it has


def test_a_missing_model_is_named(tmp_path: Path, tud: Path) -> None:
    with pytest.raises(ModelError, match=r"nope\.onnx: model file not found"):
        quantize_model(tmp_path / "nope.onnx", tud, tmp_path / "out.onnx")


def test_an_unreadable_clip_is_named(tmp_path: Path, yolo11n_320: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not a video" * 100)
    with pytest.raises(SourceError, match=r"clip\.mp4: not a decodable video"):
        quantize_model(yolo11n_320, clip, tmp_path / "out.onnx")
    with pytest.raises(SourceError, match=r"gone\.mp4: clip not found"):
        quantize_model(yolo11n_320, tmp_path / "gone.mp4", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_zero_frames_is_refused(tmp_path: Path, yolo11n_320: Path, tud: Path) -> None:
    with pytest.raises(SourceError, match=r"TUD-Campus\.mp4: calibration needs at least 1 frame"):
        quantize_model(yolo11n_320, tud, tmp_path / "out.onnx", frames=0)


def test_a_missing_output_folder_is_named(tmp_path: Path, yolo11n_320: Path, tud: Path) -> None:
    with pytest.raises(ModelError, match=r"output folder .*missing does not exist"):
        quantize_model(yolo11n_320, tud, tmp_path / "missing" / "out.onnx")


def test_the_float_model_is_never_overwritten(yolo11n_320: Path, tud: Path) -> None:
    with pytest.raises(ModelError, match=r"is the float32 model itself"):
        quantize_model(yolo11n_320, tud, yolo11n_320)


def test_an_already_quantised_model_is_refused(tmp_path: Path, tud: Path) -> None:
    dynamic = shared_file("models/yolo11n_int8_320.onnx")
    with pytest.raises(ModelError, match=r"yolo11n_int8_320\.onnx: already quantised"):
        quantize_model(dynamic, tud, tmp_path / "out.onnx")


def reshape_model(path: Path, task: str) -> Path:
    """A one-Reshape ONNX graph with a YOLO-shaped output: no convolutions, no box decoding."""
    return tiny_model(path, [1, 6, 512], {"task": task, "names": "{0: 'person', 1: 'bicycle'}"})


def test_a_model_that_is_not_a_yolo_detector_is_refused(tmp_path: Path, tud: Path) -> None:
    segment = reshape_model(tmp_path / "seg.onnx", "segment")
    with pytest.raises(ModelError, match=r"seg\.onnx: task is 'segment'"):
        quantize_model(segment, tud, tmp_path / "out.onnx", frames=1)
    no_head = reshape_model(tmp_path / "flat.onnx", "detect")
    with pytest.raises(ModelError, match=r"flat\.onnx: no box decoding .* YOLOv8/YOLO11"):
        quantize_model(no_head, tud, tmp_path / "out.onnx", frames=1)
    assert not (tmp_path / "out.onnx").exists()


def test_without_onnx_the_error_says_what_to_install(
    tmp_path: Path, yolo11n_320: Path, tud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ModelError, match=r"yolo11n_320\.onnx: .*install edge-footfall\[quantize\]"):
        quantize_model(yolo11n_320, tud, tmp_path / "out.onnx")
