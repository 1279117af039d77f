"""The detector on the real ONNX files from ../shared, and its refusals of bad models."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edge.detect import OnnxRuntime, YoloDetector
from edge.detect.runtime import resolve_providers
from edge.detections import COUNTED_CLASSES
from edge.errors import ModelError
from tests.conftest import shared_file

# ../shared/models/README.md, yolov8n.onnx on bus.jpg: class, confidence, box in image pixels.
BUS_EXPECTED = [
    (0, 0.91, (672, 375, 810, 879)),
    (0, 0.90, (221, 408, 343, 857)),
    (0, 0.90, (50, 397, 244, 904)),
    (5, 0.83, (34, 230, 800, 770)),
    (0, 0.37, (-3, 550, 57, 871)),  # partly outside the image: we clip x1 to 0
]


def test_bus_parity_with_the_reference_detections(yolov8n: Path) -> None:
    image = cv2.imread(str(shared_file("images/bus.jpg")))
    detector = YoloDetector(OnnxRuntime(yolov8n), confidence=0.25, iou=0.7)
    (found,) = detector.detect([image])
    assert len(found) == len(BUS_EXPECTED)
    for cls, conf, box in BUS_EXPECTED:
        expected = np.clip(np.array(box, np.float32), 0, [810, 1080, 810, 1080])
        distance = np.abs(found.xyxy - expected).max(axis=1)
        best = int(distance.argmin())
        assert distance[best] <= 3, f"no box within 3 px of {box}"
        assert found.class_id[best] == cls
        assert found.confidence[best] == pytest.approx(conf, abs=0.02)


def test_only_the_six_counted_classes_leave_the_detector(yolov8n: Path) -> None:
    # zidane.jpg: the README lists two persons and a tie (COCO 27) for this model.
    image = cv2.imread(str(shared_file("images/zidane.jpg")))
    detector = YoloDetector(OnnxRuntime(yolov8n), confidence=0.25, iou=0.7)
    (found,) = detector.detect([image])
    assert found.class_id.tolist() == [0, 0]
    (low,) = YoloDetector(OnnxRuntime(yolov8n), confidence=0.01).detect([image])
    assert len(low) > 2
    assert set(low.class_id.tolist()) <= set(COUNTED_CLASSES)


def test_model_metadata_is_read(yolo11n: Path) -> None:
    info = OnnxRuntime(yolo11n).info
    assert info.input_size == (640, 640)
    assert info.names[0] == "person"
    assert len(info.names) == 80
    assert info.task == "detect"


def test_missing_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"nope\.onnx: model file not found"):
        OnnxRuntime(tmp_path / "nope.onnx")


def test_corrupt_model_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"this is not a protobuf" * 10)
    with pytest.raises(ModelError, match=r"corrupt\.onnx: not a readable ONNX model"):
        OnnxRuntime(bad)


def tiny_model(path: Path, output_shape: list[int], metadata: dict[str, str]) -> Path:
    """An ONNX graph of one op with the given output shape and metadata."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, output_shape)
    shape = helper.make_tensor("shape", TensorProto.INT64, [len(output_shape)], output_shape)
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["images", "shape"], ["output0"])],
        "tiny",
        [inp],
        [out],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def test_a_segmentation_model_is_refused(tmp_path: Path) -> None:
    path = tiny_model(
        tmp_path / "seg.onnx", [1, 6, 512], {"task": "segment", "names": "{0: 'a', 1: 'b'}"}
    )
    with pytest.raises(
        ModelError, match=r"seg\.onnx: task is 'segment', expected a 'detect' model"
    ):
        OnnxRuntime(path)


def test_a_wrong_output_layout_is_refused(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "cls.onnx", [1, 3072], {"task": "detect", "names": "{0: 'a'}"})
    with pytest.raises(
        ModelError, match=r"cls\.onnx: output is \[1, 3072\], expected .*\[1, 4\+nc, N\]"
    ):
        OnnxRuntime(path)


def test_tiny_detect_model_runs_end_to_end(tmp_path: Path) -> None:
    path = tiny_model(
        tmp_path / "ok.onnx",
        [1, 6, 512],
        {"task": "detect", "names": "{0: 'person', 1: 'bicycle'}"},
    )
    detector = YoloDetector(OnnxRuntime(path))
    (found,) = detector.detect([np.zeros((24, 32, 3), np.uint8)])
    assert len(found) == 0  # a black frame gives zero scores


def test_unavailable_provider_falls_back_to_cpu_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import onnxruntime as ort

    if "TensorrtExecutionProvider" in ort.get_available_providers():
        pytest.skip("TensorRT is available here; nothing to fall back from")
    with caplog.at_level("WARNING"):
        chosen = resolve_providers(["tensorrt", "cpu"])
    assert chosen == ["CPUExecutionProvider"]
    assert "TensorrtExecutionProvider is not available" in caplog.text
