"""The command line as a user runs it: a real subprocess, real files, exit codes and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, REPO
from tests.integration.test_detector import tiny_model
from tests.support.cli import assert_one_line_error, edge


def test_import_edge_pulls_no_torch_no_ultralytics_no_gui() -> None:
    code = (
        "import sys, edge, edge.cli, edge.app, edge.analytics.pipeline, edge.detect.detector,"
        " edge.vision.sources, edge.config, edge.bench;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'ultralytics', 'matplotlib', 'tkinter', 'PyQt5', 'PySide6', 'gi')];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_config_validate_ok() -> None:
    result = edge("config", "validate", "-c", "examples/tud-campus.yaml")
    assert result.returncode == 0
    assert result.stdout.strip() == "ok"


def test_config_validate_prints_every_error_on_its_own_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - id: a\ndetector:\n  confidence: 3\n")
    result = edge("config", "validate", "-c", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "edge: cameras[0].source: Field required",
        "edge: detector.confidence: Input should be less than 1",
    ]


def test_config_schema_is_json() -> None:
    result = edge("config", "schema")
    schema = json.loads(result.stdout)
    assert schema["additionalProperties"] is False
    assert {"cameras", "detector", "window", "mqtt", "policy"} <= set(schema["properties"])


def test_unknown_config_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("detector:\n  colour: blue\n")
    assert_one_line_error(edge("config", "validate", "-c", str(bad)), "detector.colour")


def test_invalid_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [\n")
    assert_one_line_error(edge("count", "-c", str(bad)), "bad.yaml", "invalid YAML")


def test_missing_model(tmp_path: Path, tud_clip: Path) -> None:
    result = edge("count", str(tud_clip), "--model", str(tmp_path / "none.onnx"))
    assert_one_line_error(result, "none.onnx: model file not found")


def test_corrupt_model(tmp_path: Path, tud_clip: Path) -> None:
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"garbage" * 100)
    assert_one_line_error(
        edge("count", str(tud_clip), "--model", str(bad)), "corrupt.onnx", "not a readable ONNX"
    )


def test_unreadable_clip(tmp_path: Path, yolo11n: Path) -> None:
    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"\x00" * 4096)
    result = edge("count", str(clip), "-c", str(EXAMPLE), "--model", str(yolo11n))
    assert_one_line_error(result, "broken.mp4: not a decodable video")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = edge("--debug", "count", str(tmp_path / "x.mp4"), "--model", str(tmp_path / "m.onnx"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_models_info_knows_the_shared_model(yolo11n: Path) -> None:
    result = edge("models", "info", str(yolo11n), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["sha256"] == "2c996241dd177205b733dcb9cb0d6bdac0f15f8286ab678ca3aa0021e8a3cf47"
    assert info["manifest"]["file"] == "yolo11n.onnx"
    assert info["manifest"]["licence"].startswith("AGPL-3.0")
    assert info["input_size"] == [640, 640]


def test_models_info_unknown_file(tmp_path: Path) -> None:
    model = tiny_model(
        tmp_path / "mine.onnx", [1, 6, 64], {"task": "detect", "names": "{0: 'a', 1: 'b'}"}
    )
    result = edge("models", "info", str(model))
    assert result.returncode == 0, result.stderr
    assert "manifest    unknown" in result.stdout
    assert "classes     2" in result.stdout


@pytest.mark.slow
def test_count_json_on_a_real_clip(tud_clip: Path, yolo11n: Path) -> None:
    result = edge("count", str(tud_clip), "-c", str(EXAMPLE), "--model", str(yolo11n), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["frames"] == 71
    assert doc["duration_s"] == pytest.approx(2.84)
    assert doc["model"] == "yolo11n.onnx"
    assert doc["timing"]["fps"] > 0
    assert 0 < doc["timing"]["detector_ms_p50"] <= doc["timing"]["detector_ms_p95"]
    # 8 people walk through; most frames show 4-6 of them. Frames far from the line and the
    # first confirmations aside, the schedule detects at 5 fps (motion.idle_fps).
    assert 14 <= doc["frames_detected"] <= 71
    assert doc["detections"]["pedestrian"] >= doc["frames_detected"] * 3
    assert set(doc["detections"]) == {"pedestrian", "bike", "vehicle"}
    assert result.stderr == ""  # no progress bar when stdout is not a terminal


def test_onnx_runtime_telemetry_is_off_so_nothing_is_recorded_for_upload(
    yolo11n: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    result = subprocess.run(
        [sys.executable, "-m", "edge", "models", "info", str(yolo11n)],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / ".cache" / "Microsoft").exists()
