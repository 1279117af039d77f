from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import CameraConfig, load_settings
from edge.errors import ConfigError, format_location
from tests.conftest import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return caught.value.lines


def test_shipped_example_is_valid() -> None:
    settings = load_settings(REPO / "examples" / "tud-campus.yaml")
    assert settings.cameras[0].id == "tud-campus"
    assert settings.cameras[0].lines[0].start == (320, 0)
    assert settings.detector.model == Path("yolo11n.onnx")


def test_defaults_without_a_file() -> None:
    settings = load_settings(None)
    assert settings.detector.confidence == 0.25
    assert settings.window.seconds == 60
    assert settings.cameras == []


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "detector:\n  confidence: 0.3\n  iou: 0.5\n")
    monkeypatch.setenv("EDGE_DETECTOR__CONFIDENCE", "0.45")
    monkeypatch.setenv("EDGE_MODEL_DIR", "/opt/models")
    settings = load_settings(path)
    assert settings.detector.confidence == 0.45
    assert settings.detector.iou == 0.5  # untouched by the environment
    assert settings.model_path() == Path("/opt/models/yolo11n.onnx")


def test_every_error_names_its_yaml_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "cameras:\n"
        "  - id: a\n"
        "  - id: b\n    source: x.mp4\n    target_fps: -1\n"
        "detector:\n  confidence: 2\n  colour: red\n",
    )
    lines = errors_of(path)
    assert "cameras[0].source: Field required" in lines
    assert any(
        line.startswith("cameras[1].target_fps: Input should be greater than 0") for line in lines
    )
    assert any(line.startswith("detector.confidence: ") for line in lines)
    assert "detector.colour: Extra inputs are not permitted" in lines
    assert len(lines) == 4


def test_unknown_top_level_key(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "colour: blue\n")) == [
        "colour: Extra inputs are not permitted"
    ]


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    (line,) = errors_of(write(tmp_path, "cameras:\n  - id: a\n   source: [unclosed\n"))
    assert line.startswith(f"{tmp_path / 'edge.yaml'}: line ")
    assert "invalid YAML" in line


def test_missing_file(tmp_path: Path) -> None:
    (line,) = errors_of(tmp_path / "absent.yaml")
    assert "absent.yaml: cannot read" in line


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    (line,) = errors_of(write(tmp_path, "- just\n- a list\n"))
    assert "expected a mapping at the top, got list" in line


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ("lines: [{name: l, start: [5, 5], end: [5, 5]}]", "same start and end point"),
        ("zones: [{name: z, points: [[0, 0], [10, 0]]}]", "at least 3 items"),
        ("zones: [{name: z, points: [[0, 0], [10, 10], [10, 0], [0, 10]]}]", "crosses itself"),
        ("zones: [{name: z, points: [[0, 0], [5, 5], [10, 10]]}]", "zero area"),
        (
            "lines: [{name: a, start: [0, 0], end: [1, 1]}, {name: a, start: [0, 0], end: [2, 2]}]",
            "unique",
        ),
        ("lines: [{name: 'bad name', start: [0, 0], end: [1, 1]}]", "should match pattern"),
    ],
)
def test_geometry_is_validated(tmp_path: Path, camera: str, message: str) -> None:
    lines = errors_of(write(tmp_path, f"cameras:\n  - id: c\n    source: x.mp4\n    {camera}\n"))
    assert len(lines) == 1
    assert lines[0].startswith("cameras[0]")
    assert message in lines[0]


def test_geometry_outside_the_frame_is_refused_once_the_size_is_known() -> None:
    camera = CameraConfig.model_validate(
        {
            "id": "c",
            "source": "x.mp4",
            "lines": [{"name": "l", "start": [0, 0], "end": [700, 10]}],
            "zones": [{"name": "z", "points": [[0, 0], [10, 0], [10, 500]]}],
        }
    )
    camera.check_fits((1280, 720), "cameras[0]")
    with pytest.raises(ConfigError) as caught:
        camera.check_fits((640, 480), "cameras[0]")
    assert caught.value.lines == [
        "cameras[0].lines[0].end: (700.0, 10.0) is outside the 640x480 frame",
        "cameras[0].zones[0].points: (10.0, 500.0) is outside the 640x480 frame",
    ]


def test_duplicate_camera_ids(tmp_path: Path) -> None:
    lines = errors_of(write(tmp_path, "cameras:\n  - {id: a, source: x}\n  - {id: a, source: y}\n"))
    assert lines == ["cameras: camera ids must be unique, got ['a', 'a']"]


@pytest.mark.parametrize(
    ("loc", "text"),
    [(("cameras", 0, "source"), "cameras[0].source"), (("detector",), "detector"), ((), "(root)")],
)
def test_format_location(loc: tuple[int | str, ...], text: str) -> None:
    assert format_location(loc) == text


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("ftp://cam/stream", "unsupported scheme 'ftp'"),
        ("rtsp://", "needs a host"),
        ("/dev/sda1", "a USB camera is /dev/videoN"),
    ],
)
def test_bad_camera_sources_are_refused(tmp_path: Path, source: str, message: str) -> None:
    (line,) = errors_of(write(tmp_path, f"cameras:\n  - id: c\n    source: '{source}'\n"))
    assert line.startswith("cameras[0].source: ") and message in line


@pytest.mark.parametrize(
    "source",
    ["rtsp://u:p@192.0.2.1:554/Streaming/Channels/102", "rtsps://cam.example/s", "http://10.0.0.2/mjpg",
     "/dev/video0", "clips/a.mp4"],
)  # fmt: skip
def test_supported_camera_sources(source: str) -> None:
    assert CameraConfig(id="c", source=source).source == source
