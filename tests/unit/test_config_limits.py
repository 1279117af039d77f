"""Config, policy and model manifest files read with limits (issue 16, item 5): every malformed
file is one ``ConfigError`` line naming the file, fast, never a traceback or a silent guess."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from edge.config import load_settings
from edge.detect.manifest import load_manifest
from edge.errors import ConfigError
from edge.legal.policy import load_policy
from edge.yaml_io import MAX_BYTES, MAX_DEPTH
from tests.conftest import EXAMPLE, REPO

POLICY = REPO / "policies" / "cnil-statistics.yaml"
MANIFEST = REPO / "models" / "manifest.yaml"
CAMERA = "cameras:\n- id: door\n  source: door.mp4\n"
LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)


def one_error(path: Path, load: object = load_settings) -> str:
    """The single line of the ``ConfigError`` that reading ``path`` raises, within 2 s of CPU."""
    started = time.process_time()
    with pytest.raises(ConfigError) as caught:
        load(path)  # type: ignore[operator]
    assert time.process_time() - started < 2.0
    (line,) = caught.value.lines
    assert line.startswith(f"{path}:"), line
    return line


def write(tmp_path: Path, data: bytes | str, name: str = "edge.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


MALFORMED = {
    # what: (bytes, what the one line says)
    "latin-1 byte": (b"window:\n  seconds: 60\n# caf\xe9\n", "line 3: byte 0xe9 is not UTF-8"),
    "lone continuation byte": (b"\x80window: {}\n", "line 1: byte 0x80 is not UTF-8"),
    "truncated sequence": (b"mqtt:\n  site: \xe2\x82\n", "line 2: byte 0xe2 is not UTF-8"),
    "utf-16 with BOM": ("window:\n  seconds: 60\n".encode("utf-16"), "UTF-16 byte order mark"),
    "utf-16-be with BOM": (b"\xfe\xff" + "w: 1\n".encode("utf-16-be"), "UTF-16 byte order mark"),
    "utf-16 without BOM": ("window: {}\n".encode("utf-16-le"), "NUL byte"),
    "utf-8 BOM": (b"\xef\xbb\xbfwindow: {seconds: 60}\n", "UTF-8 byte order mark"),
    "50,000 deep flow": (b"a: " + b"[" * 50_000 + b"]" * 50_000, "nested deeper than"),
    "50,000 deep mapping": (b"a: " + b"{b: " * 50_000 + b"}" * 50_000, "nested deeper than"),
    "deep block": ("".join("  " * i + f"k{i}:\n" for i in range(200)), "nested deeper than"),
    "billion laughs": (LAUGHS, "anchors and aliases expand to more than 100,000 values"),
    "alias of itself": ("a: &a [1, *a]\n", "an alias refers to the node that holds it"),
    "merge key": ("window:\n  <<: {seconds: 60}\n", "merge key '<<' refused"),
    "duplicate section": ("window: {seconds: 60}\nwindow: {seconds: 120}\n", "line 2, column 1"),
    "duplicate nested key": ("window:\n  seconds: 60\n  seconds: 120\n", "duplicate key 'seconds'"),
    "duplicate in a camera": (CAMERA + "  id: hall\n", "duplicate key 'id' (first at line 2)"),
    "too large": (b"# padding\n" * (MAX_BYTES // 10 + 1), f"larger than {MAX_BYTES // 1024} KiB"),
    "impossible date": ("window: {seconds: 2026-13-45}\n", "month must be in 1..12"),
    "5,000-digit integer": ("window: {seconds: " + "9" * 5000 + "}\n", "Exceeds the limit"),
    "unhashable key": ("? [a, b]\n: 1\n", "line 1, column 3: a key must be a plain value"),
    "integer top-level key": ("1: 2\n", "a top-level key must be a name"),
    "!!int on nothing": ("window: {seconds: !!int }\n", "tag '!!int' refused"),
    "!!timestamp on a word": ("deployment: {controller: !!timestamp x}\n", "tag '!!timestamp'"),
    "!!binary": ("mqtt: {host: !!binary bG9jYWxob3N0}\n", "line 1, column 14: tag '!!binary'"),
    "local tag": ("window: !w {seconds: 60}\n", "tag '!w' refused"),
    "control character": ("window: {seconds: 60}\n\x07\n", "line 2: control character U+0007"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_config_is_one_line_naming_the_file(tmp_path: Path, case: str) -> None:
    """Before: tracebacks (UnicodeDecodeError, RecursionError, ValueError, TypeError), a BOM
    read as part of a key, 107 s of CPU for the laughs, duplicate keys taken last-wins."""
    data, needle = MALFORMED[case]
    assert needle in one_error(write(tmp_path, data))


def test_duplicate_key_names_key_and_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "window:\n  seconds: 60\ndetector: {}\nwindow:\n  seconds: 120\n")
    assert one_error(path) == f"{path}: line 4, column 1: duplicate key 'window' (first at line 1)"


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("window: {seconds: true}\n", "window.seconds: expected a number, got true"),
        ("window: {seconds: false}\n", "window.seconds: expected a number, got false"),
        ("detector: {confidence: true}\n", "detector.confidence: expected a number, got true"),
        ("mqtt: {port: true}\n", "mqtt.port: expected a number, got true"),
        ("tracker: {lost_seconds: .nan}\n", "tracker.lost_seconds: nan is not a number"),
        ("tracker: {min_hits: true}\n", "tracker.min_hits: expected a number, got true"),
        ("motion: {max_skip_s: .inf}\n", "motion.max_skip_s: inf is not a number"),
        (
            CAMERA + "  lines: [{name: l, start: [true, 0], end: [300, 400]}]\n",
            "cameras[0].lines[0].start[0]: expected a number, got true",
        ),
        (
            CAMERA + "  lines: [{name: l, start: [.nan, 0], end: [300, 400]}]\n",
            "cameras[0].lines[0].start[0]: nan is not a number",
        ),
        (
            CAMERA + "  lines: [{name: l, start: [0, 0], end: [.NaN, .NAN]}]\n",
            "cameras[0].lines[0].end[0]: nan is not a number",
        ),
        (
            CAMERA + "  lines: [{name: l, start: [0, -.inf], end: [300, 400]}]\n",
            "cameras[0].lines[0].start[1]: -inf is not a number",
        ),
        (
            CAMERA + "  zones: [{name: z, points: [[0, 0], [.inf, 0], [10, 10]]}]\n",
            "cameras[0].zones[0].points[1][0]: inf is not a number",
        ),
        (CAMERA + "  target_fps: .nan\n", "cameras[0].target_fps: nan is not a number"),
    ],
)
def test_booleans_and_non_finite_numbers_are_refused(
    tmp_path: Path, yaml_text: str, needle: str
) -> None:
    """Before: ``true`` read as 1, NaN points accepted (they count nothing)."""
    path = write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"{path}: {needle}" in caught.value.lines[0], caught.value.lines


@pytest.mark.parametrize("value", ["1e308", "-1e308", "100000.5", "1e6", "-200000"])
def test_coordinates_are_bounded(tmp_path: Path, value: str) -> None:
    """Before: 1e308 accepted, and it overflows to inf in the geometry (lengths, areas)."""
    path = write(tmp_path, CAMERA + f"  lines: [{{name: l, start: [{value}, 0], end: [3, 4]}}]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert any("cameras[0].lines[0].start.0" in line or "start[0]" in line
               for line in caught.value.lines), caught.value.lines  # fmt: skip
    assert "100000" in str(caught.value)


def test_ordinary_numbers_and_booleans_still_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        CAMERA + "  lines: [{name: l, start: [0, 0.5], end: [100000, 480]}]\n"
        "window: {seconds: 120}\nmotion: {enabled: false}\nmqtt: {enabled: true, port: 8883}\n"
        "detector: {fp16: false, confidence: 0.3}\n",
    )
    settings = load_settings(path)
    assert settings.cameras[0].lines[0].end == (100000, 480)
    assert settings.window.seconds == 120
    assert settings.mqtt.enabled and settings.mqtt.port == 8883
    assert settings.detector.fp16 is False


def test_environment_strings_are_still_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Environment variables arrive as strings: the number checks leave them to pydantic."""
    monkeypatch.setenv("EDGE_DETECTOR__CONFIDENCE", "0.4")
    monkeypatch.setenv("EDGE_WINDOW__SECONDS", "120")
    monkeypatch.setenv("EDGE_MQTT__ENABLED", "true")
    settings = load_settings(write(tmp_path, "window: {seconds: 60}\n"))
    assert settings.detector.confidence == 0.4
    assert settings.window.seconds == 120
    assert settings.mqtt.enabled is True


def test_a_section_as_json_and_its_keys_one_by_one_both_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON for a section or a list, as pydantic-settings read it; a key's own variable wins
    over the same key in its section's JSON, and both win over the file."""
    monkeypatch.setenv("EDGE_DETECTOR", '{"confidence": 0.4, "iou": 0.6}')
    monkeypatch.setenv("EDGE_DETECTOR__IOU", "0.5")
    monkeypatch.setenv("edge_window__seconds", "120")
    settings = load_settings(write(tmp_path, "detector: {confidence: 0.3, max_detections: 50}\n"))
    assert settings.detector.confidence == 0.4 and settings.detector.iou == 0.5
    assert settings.detector.max_detections == 50 and settings.window.seconds == 120


def test_a_section_variable_that_is_not_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_CAMERAS", "[{id: cam}")
    with pytest.raises(ConfigError, match=r"^EDGE_CAMERAS: expected JSON"):
        load_settings(None)


def test_environment_nan_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_DETECTOR__CONFIDENCE", "nan")
    with pytest.raises(ConfigError, match=r"detector\.confidence"):
        load_settings(None)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("min_window_seconds: 60\nmin_window_seconds: 30\n", "duplicate key 'min_window_seconds'"),
        (LAUGHS, "anchors and aliases expand to more than"),
        ("zz: " + "[" * 1000 + "]" * 1000 + "\n", "nested deeper than"),
    ],
)
def test_a_malformed_policy_is_one_line_naming_the_file(
    tmp_path: Path, change: str, needle: str
) -> None:
    """Before: the duplicate ``min_window_seconds: 30`` won silently (then the floor refused
    it, or not, by luck of order); the alias loaded; the nesting ended in RecursionError."""
    path = write(tmp_path, POLICY.read_text() + change, "policy.yaml")
    assert needle in one_error(path, load_policy)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("zone_min_objects: 3", "zone_min_objects: true", "expected a number, got true"),
        ("min_line_length: 0.05", "min_line_length: .nan", "nan is not a number"),
        ("min_zone_area: 0.01", "min_zone_area: .inf", "inf is not a number"),
    ],
)
def test_policy_numbers_are_numbers(tmp_path: Path, old: str, new: str, needle: str) -> None:
    text = POLICY.read_text()
    assert old in text
    path = write(tmp_path, text.replace(old, new), "policy.yaml")
    assert needle in one_error(path, load_policy)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (MANIFEST.read_bytes() + b"\xff\n", "is not UTF-8"),
        (MANIFEST.read_text() + "x: &x [*x]\n", "an alias refers to the node that holds it"),
        (b"models: []\nmodels: []\n", "duplicate key 'models'"),
    ],
)
def test_a_malformed_model_manifest_is_one_line(
    tmp_path: Path, data: bytes | str, needle: str
) -> None:
    assert needle in one_error(write(tmp_path, data, "manifest.yaml"), load_manifest)


def test_shipped_files_still_load() -> None:
    assert load_policy(POLICY).name == "cnil-statistics"
    assert load_manifest(MANIFEST).models
    assert MAX_DEPTH >= 16


def test_aliases_a_generated_file_holds_are_read(tmp_path: Path) -> None:
    """PyYAML writes an anchor and an alias for any object a generated file repeats (cameras
    sharing one list of lines): within the expansion budget they load as written."""
    data = yaml.safe_load(EXAMPLE.read_text())
    first = data["cameras"][0]
    data["cameras"] = [{**first, "id": f"cam-{i}"} for i in range(4)]  # one "lines" list
    text = yaml.safe_dump(data)
    assert "&id001" in text and "*id001" in text
    settings = load_settings(write(tmp_path, text))
    assert [c.lines for c in settings.cameras] == [settings.cameras[0].lines] * 4
