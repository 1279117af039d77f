"""``detector.providers: [openvino, cpu]``: the OpenVINO EP's name and options, and the clean
fall-back to CPU where the onnxruntime-openvino wheel is not installed (as here)."""

from __future__ import annotations

import json
from pathlib import Path

import onnxruntime as ort
import pytest
from pydantic import ValidationError

from edge.config import DetectorConfig
from edge.detect.runtime import OnnxRuntime, openvino_options, resolve_providers
from tests.unit.detect.test_runtime_dynamic_batch import batch_model

OV, CPU = "OpenVINOExecutionProvider", "CPUExecutionProvider"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return batch_model(tmp_path / "tiny.onnx", 1)


@pytest.fixture
def openvino_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    """ORT reports what the onnxruntime-openvino 1.24 wheel reports."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [OV, CPU])
    monkeypatch.setattr(ort, "__version__", "1.24.1")


def test_openvino_where_it_is_missing_falls_back_to_cpu_with_the_warning(
    model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CPU])
    with caplog.at_level("WARNING"):
        chosen = resolve_providers(["openvino", "cpu"], model, threads=2)
    assert chosen == [(CPU, {})]
    assert "OpenVINOExecutionProvider is not available here; falling back" in caplog.text


def test_a_real_session_asked_for_openvino_runs_on_cpu(
    model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if OV in ort.get_available_providers():
        pytest.skip("the OpenVINO wheel is installed here; this is the CPU-only fallback")
    with caplog.at_level("WARNING"):
        runtime = OnnxRuntime(model, ["openvino", "cpu"], threads=1)
    assert runtime.providers == [CPU]
    assert "OpenVINOExecutionProvider is not available" in caplog.text
    assert runtime.run_buffered().shape == (1, 6, 512)


@pytest.mark.usefixtures("openvino_wheel")
def test_openvino_gets_its_device_and_threads_then_cpu_closes_the_list(model: Path) -> None:
    chosen = resolve_providers(["openvino"], model, threads=2)
    assert [name for name, _ in chosen] == [OV, CPU]
    options = dict(chosen)[OV]
    assert options == {"device_type": "CPU", "load_config": options["load_config"]}
    assert json.loads(options["load_config"]) == {"CPU": {"INFERENCE_NUM_THREADS": "2"}}
    assert dict(chosen)[CPU] == {}
    assert resolve_providers(["openvino"], model) == [(OV, {"device_type": "CPU"}), (CPU, {})]


@pytest.mark.usefixtures("openvino_wheel")
def test_other_openvino_devices_key_their_own_config(model: Path) -> None:
    options = dict(resolve_providers(["openvino"], model, openvino_device="GPU.1", threads=4))[OV]
    assert options["device_type"] == "GPU.1"
    assert json.loads(options["load_config"]) == {"GPU": {"INFERENCE_NUM_THREADS": "4"}}


def test_releases_before_load_config_get_num_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "__version__", "1.19.0")
    assert openvino_options("CPU", 2) == {"device_type": "CPU", "num_of_threads": "2"}
    monkeypatch.setattr(ort, "__version__", "1.23.0")
    assert "load_config" in openvino_options("CPU", 2)


def test_the_configuration_accepts_openvino_and_checks_the_device() -> None:
    detector = DetectorConfig.model_validate({"providers": ["openvino", "cpu"]})
    assert detector.providers == ["openvino", "cpu"]
    assert detector.openvino_device == "CPU"
    for device in ("GPU", "GPU.0", "NPU", "AUTO:GPU,CPU"):
        assert DetectorConfig.model_validate({"openvino_device": device}).openvino_device == device
    for bad in ("cpu", "CPU_FP32", "GPU; rm -rf /", ""):
        with pytest.raises(ValidationError):
            DetectorConfig.model_validate({"openvino_device": bad})
