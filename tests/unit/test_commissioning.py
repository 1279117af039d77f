"""The pure parts of ``edge setup``: the picture's size and content, the YAML write-back."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from edge.commissioning.background import background_size, median_background
from edge.commissioning.config_edit import replace_geometry
from edge.errors import ConfigError
from edge.vision.frames import Frame
from tests.conftest import EXAMPLE


@pytest.mark.parametrize(
    ("source", "picture"),
    [((640, 480), (80, 60)), ((1920, 1080), (240, 135)), ((3840, 2160), (320, 180)),
     ((960, 540), (120, 68)), ((100, 50), (12, 6))],
)  # fmt: skip
def test_the_picture_is_at_most_an_eighth_and_320_pixels_wide(
    source: tuple[int, int], picture: tuple[int, int]
) -> None:
    assert background_size(source) == picture
    assert picture[0] <= source[0] / 8 and picture[0] <= 320


def test_the_median_keeps_the_scene_and_drops_what_moves() -> None:
    """A grey gradient crossed by a white 'walker': gone from the background."""
    scene = np.tile(np.linspace(0, 200, 640, dtype=np.uint8), (480, 1))
    frames = []
    for i in range(25):
        image = np.repeat(scene[:, :, None], 3, axis=2)
        image[200:400, 20 * i : 20 * i + 80] = 255
        frames.append(Frame("cam", i, i / 5, image))
    picture = median_background(iter(frames), (640, 480))
    assert picture.shape == (60, 80, 3)
    expected = np.tile(np.linspace(0, 200, 80), (60, 1))
    assert np.abs(picture[:, :, 0].astype(float) - expected).max() < 6


TEXT = """\
# the site
cameras:
  - id: door  # the front door
    source: door.mp4
    lines:
      # the old one
      - name: old
        start: [0, 0]
        end: [10, 10]
        hysteresis: 0.5

    zones: []  # none yet
  - id: yard
    source: yard.mp4
detector:
  model: yolo11n.onnx  # keep
"""


def test_only_the_camera_s_lines_and_zones_change_and_comments_stay() -> None:
    line = {"name": "new", "start": [1, 2], "end": [300, 2]}
    zone = {"name": "z", "points": [[0, 0], [10, 0], [10, 10]]}
    text = replace_geometry(TEXT, 0, {"lines": [line], "zones": [zone]})
    data = yaml.safe_load(text)
    assert data["cameras"][0]["lines"] == [line] and data["cameras"][0]["zones"] == [zone]
    assert data["cameras"][1] == {"id": "yard", "source": "yard.mp4"}
    for kept in ("# the site", "# the front door", "# the old one", "# none yet", "# keep"):
        assert kept in text
    assert text.splitlines()[-1] == "  model: yolo11n.onnx  # keep"


def test_keys_the_camera_lacks_are_added_to_it() -> None:
    text = replace_geometry(TEXT, 1, {"lines": [{"name": "a", "start": [0, 0], "end": [5, 5]}]})
    data = yaml.safe_load(text)
    assert data["cameras"][1]["lines"] == [{"name": "a", "start": [0, 0], "end": [5, 5]}]
    assert data["cameras"][0] == yaml.safe_load(TEXT)["cameras"][0]
    assert data["detector"] == {"model": "yolo11n.onnx"}


def test_back_to_empty_and_the_shipped_example_round_trips() -> None:
    emptied = replace_geometry(TEXT, 0, {"lines": [], "zones": []})
    assert yaml.safe_load(emptied)["cameras"][0]["lines"] == []
    shipped = EXAMPLE.read_text()
    same = yaml.safe_load(shipped)["cameras"][0]["lines"]
    assert yaml.safe_load(replace_geometry(shipped, 0, {"lines": same})) == yaml.safe_load(shipped)


def test_a_camera_not_in_the_file_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"cameras\[5\]"):
        replace_geometry(TEXT, 5, {"lines": []})
