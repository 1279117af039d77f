"""A clip that stops decoding early says so (issue 16, item 5): a warning line on stderr and
``frames_missing`` in the result; the run still ends 0 with the counts of the frames read."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from edge.vision.sources import Replay, VideoFileSource
from tests.conftest import EXAMPLE
from tests.support.cli import edge

FRAMES = 71  # TUD-Campus


def damaged(tud_clip: Path, tmp_path: Path, at: float = 0.3) -> Path:
    """The clip with 4 KiB of fixed garbage a fraction ``at`` into the file."""
    data = bytearray(tud_clip.read_bytes())
    start = int(len(data) * at)
    data[start : start + 4096] = np.random.default_rng(0).bytes(4096)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("at", "target_fps", "read"), [(0.3, None, 22), (0.3, 5.0, 22), (0.5, None, 36)]
)
def test_a_clip_that_stops_early_says_so(
    tud_clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, at: float,
    target_fps: float | None, read: int,
) -> None:  # fmt: skip
    """Before: it ended as if complete, after 22 of 71 frames, without a word."""
    source = VideoFileSource(damaged(tud_clip, tmp_path, at), "c", target_fps=target_fps)
    with caplog.at_level(logging.WARNING, logger="edge.vision.sources"):
        frames = list(source)
    assert frames[-1].index < read <= frames[-1].index + (5 if target_fps else 1)
    assert source.frames_missing == FRAMES - read
    (record,) = caplog.records
    assert (
        f"damaged.mp4: decoding stopped after {read} of the {FRAMES} frames" in record.getMessage()
    )


def test_a_complete_clip_says_nothing(tud_clip: Path, caplog: pytest.LogCaptureFixture) -> None:
    replay = Replay(VideoFileSource(tud_clip, "c"))
    replay.start()
    with caplog.at_level(logging.WARNING):
        while replay.take() is not None:
            pass
    replay.close()
    assert replay.frames_missing == 0
    assert not caplog.records


@pytest.mark.slow
def test_edge_count_reports_the_missing_frames(
    tud_clip: Path, yolo11n: Path, tmp_path: Path
) -> None:
    clip = damaged(tud_clip, tmp_path)
    result = edge("count", str(clip), "-c", str(EXAMPLE), "--model", str(yolo11n), "--json")
    assert result.returncode == 0, result.stderr  # the counts of the frames read are valid
    doc = json.loads(result.stdout)
    assert doc["frames"] == 22
    assert doc["frames_missing"] == FRAMES - 22
    (warning,) = [line for line in result.stderr.splitlines() if "decoding stopped" in line]
    assert warning.startswith("WARNING edge.vision.sources: ")
    assert f"after 22 of the {FRAMES} frames" in warning
