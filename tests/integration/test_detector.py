"""The detector on the real ONNX files from ../shared, and its refusals of bad models."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from edge.analytics.detections import COUNTED_CLASSES
from edge.config import load_settings
from edge.detect.detector import YoloDetector
from edge.detect.runtime import OnnxRuntime, engine_dir, resolve_providers
from edge.errors import ConfigError, ModelError
from tests.conftest import shared_file
from tests.support.onnx_models import reshape_model

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
    return reshape_model(path, [1, 3, 32, 32], output_shape, output_shape, metadata)


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


TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
Chosen = list[tuple[str, dict[str, str]]]


@pytest.fixture
def gpu_box(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORT reports TensorRT, CUDA and CPU, as the GPU build does on a Jetson."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [TRT, CUDA, CPU])


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model(tmp_path / "tiny.onnx", [1, 6, 512], {"names": "{0: 'a', 1: 'b'}"})


def names(chosen: Chosen) -> list[str]:
    return [name for name, _ in chosen]


@pytest.mark.usefixtures("gpu_box")
def test_tensorrt_is_followed_by_cuda_then_cpu(model: Path) -> None:
    chosen = resolve_providers(["tensorrt"], model, device_id=1)
    assert names(chosen) == [TRT, CUDA, CPU]
    assert dict(chosen)[CUDA] == {"device_id": "1"}
    assert dict(chosen)[CPU] == {}
    assert names(resolve_providers(["cuda", "tensorrt", "cuda"], model)) == [CUDA, TRT, CPU]
    assert names(resolve_providers(["cpu", "cuda"], model)) == [CPU, CUDA]  # as listed


@pytest.mark.usefixtures("gpu_box")
def test_tensorrt_options_fp16_and_an_absolute_engine_cache_created(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    trt = dict(resolve_providers(["tensorrt", "cuda", "cpu"], model, engine_cache=Path("c")))[TRT]
    engines = Path(trt["trt_engine_cache_path"])
    assert engines.is_absolute() and engines.is_dir()
    assert engines.parent == tmp_path / "c"
    assert engines.name.startswith("tiny-") and engines.name.endswith("-fp16")
    assert trt == {
        "device_id": "0",
        "trt_fp16_enable": "True",
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(engines),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(tmp_path / "c"),
    }
    fp32 = dict(resolve_providers(["tensorrt"], model, fp16=False, engine_cache=Path("c")))[TRT]
    assert fp32["trt_fp16_enable"] == "False"
    assert fp32["trt_engine_cache_path"] == str(engines).replace("-fp16", "-fp32")


def test_a_changed_model_gets_a_new_engine_folder(model: Path, tmp_path: Path) -> None:
    first = engine_dir(tmp_path / "c", model, fp16=True)
    tiny_model(model, [1, 7, 512], {"names": "{0: 'a', 1: 'b', 2: 'c'}"})  # same name, retrained
    assert engine_dir(tmp_path / "c", model, fp16=True) != first


@pytest.mark.usefixtures("gpu_box")
def test_without_engine_cache_tensorrt_rebuilds_and_says_so(
    model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        trt = dict(resolve_providers(["tensorrt"], model))[TRT]
    assert trt == {"device_id": "0", "trt_fp16_enable": "True"}
    assert "TensorRT builds its engine at every start" in caplog.text


@pytest.mark.usefixtures("gpu_box")
def test_an_unwritable_engine_cache_is_one_line(model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as caught:
        resolve_providers(["tensorrt"], model, engine_cache=blocker / "cache")
    (line,) = caught.value.lines
    assert line.startswith(f"detector.engine_cache: cannot write to {blocker / 'cache'}/tiny-")


def test_unavailable_providers_fall_back_to_cpu_with_a_warning(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    with caplog.at_level("WARNING"):
        chosen = resolve_providers(["tensorrt", "cuda"], model, engine_cache=tmp_path / "c")
    assert chosen == [(CPU, {})]
    assert "TensorrtExecutionProvider is not available" in caplog.text
    assert "CUDAExecutionProvider is not available" in caplog.text
    assert not (tmp_path / "c").exists()  # no engine cache on a box without TensorRT


@pytest.mark.usefixtures("gpu_box")
def test_providers_that_fail_to_load_are_reported(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # ORT drops an EP whose libraries are missing without raising; a real CPU session stands in.
    asked: Chosen = []
    real_session = ort.InferenceSession

    def session(path: str, options: ort.SessionOptions, providers: Chosen) -> object:
        asked.extend(providers)
        return real_session(path, options, providers=[CPU])

    monkeypatch.setattr(ort, "InferenceSession", session)
    with caplog.at_level("WARNING"):
        runtime = OnnxRuntime(model, ["tensorrt", "cpu"], engine_cache=tmp_path / "c")
    assert names(asked) == [TRT, CUDA, CPU]
    assert runtime.providers == [CPU]
    assert "TensorrtExecutionProvider failed to load" in caplog.text
    assert "CUDAExecutionProvider failed to load" in caplog.text


def test_a_real_cpu_session_with_gpu_settings_still_runs(
    yolo11n: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if TRT in ort.get_available_providers():
        pytest.skip("TensorRT is available here; this is the CPU-only fallback")
    with caplog.at_level("WARNING"):
        runtime = OnnxRuntime(
            yolo11n,
            ["tensorrt", "cuda", "cpu"],
            fp16=True,
            engine_cache=tmp_path / "cache",
            device_id=0,
        )
    assert runtime.providers == [CPU]
    assert "TensorrtExecutionProvider is not available" in caplog.text
    assert runtime.run_buffered().shape == (1, 84, 8400)


def test_gpu_settings_in_the_configuration() -> None:
    detector = load_settings().detector
    assert (detector.fp16, detector.engine_cache, detector.device_id) == (
        True,
        Path("var/trt-cache"),
        0,
    )
    assert load_settings(detector={"engine_cache": None}).detector.engine_cache is None
    with pytest.raises(ConfigError) as caught:
        load_settings(detector={"providers": ["tensorrt", "gpu"], "device_id": -1})
    assert caught.value.lines == [
        "detector.providers[1]: Input should be 'cpu', 'cuda', 'tensorrt' or 'openvino'",
        "detector.device_id: Input should be greater than or equal to 0",
    ]
