"""The tracking evaluation harness on a real MOTChallenge sequence (../shared/tracking)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from edge.analytics.evaluation import (
    MotSequence,
    count_tracks,
    read_mot_sequence,
    replay,
    thinned,
)
from edge.config import Settings
from edge.errors import SourceError
from tests.conftest import REPO, shared_file

sys.path.insert(0, str(REPO / "benchmarks"))
import tracking_eval


@pytest.fixture(scope="module")
def campus() -> MotSequence:
    return read_mot_sequence(shared_file("tracking/TUD-Campus/det.txt").parent)


def truth_as_tracks(sequence: MotSequence) -> np.ndarray:
    return np.concatenate(
        [
            np.column_stack([frames, np.full(len(frames), gt_id), boxes])
            for gt_id, (frames, boxes) in sequence.truth.items()
        ]
    )


def test_the_sequence_is_read_with_its_rate_size_and_every_frame(campus: MotSequence) -> None:
    assert (campus.fps, campus.width, campus.height, campus.length) == (25.0, 640, 480, 71)
    assert sum(len(d) for d in campus.detections) > 200
    assert all((d.class_id == 0).all() for d in campus.detections)


@pytest.mark.parametrize(
    ("length", "fps", "target", "expected"),
    [
        (12, 30.0, None, list(range(12))),
        (12, 30.0, 30.0, list(range(12))),
        (13, 30.0, 5.0, [0, 6, 12]),
        (15, 14.0, 5.0, [0, 3, 6, 9, 12, 14]),  # 14 -> 5: mostly 3 frames apart, then 2
        (11, 25.0, 10.0, [0, 3, 5, 8, 10]),
    ],
)
def test_thinning_keeps_the_first_frame_of_each_period(
    length: int, fps: float, target: float | None, expected: list[int]
) -> None:
    assert thinned(length, fps, target).tolist() == expected


def test_perfect_tracks_score_perfectly(campus: MotSequence) -> None:
    frames = thinned(campus.length, campus.fps, None)
    metrics = tracking_eval.identity_metrics(campus, frames, truth_as_tracks(campus))
    assert metrics["idf1"] == pytest.approx(1.0)
    assert metrics["mota"] == pytest.approx(1.0)
    assert metrics["hota"] == pytest.approx(1.0)
    assert metrics["id_switches"] == 0


def test_swapped_ids_are_seen_as_switches(campus: MotSequence) -> None:
    tracks = truth_as_tracks(campus)
    # two people seen both before and after frame 40 swap ids there: two switches
    spanning = [i for i, (f, _) in campus.truth.items() if f.min() < 40 <= f.max()]
    first, second = spanning[:2]
    late = tracks[:, 0] >= 40
    a, b = late & (tracks[:, 1] == first), late & (tracks[:, 1] == second)
    tracks[a, 1], tracks[b, 1] = second, first
    frames = thinned(campus.length, campus.fps, None)
    metrics = tracking_eval.identity_metrics(campus, frames, tracks)
    assert metrics["id_switches"] == 2
    assert metrics["idf1"] < 0.95


@pytest.mark.parametrize("rate", [None, 5.0])
def test_references_are_counted_by_the_same_counters_as_ours(
    campus: MotSequence, rate: float | None
) -> None:
    """Counting our replay's own tracks the way reference trackers' tracks are counted gives
    exactly the pipeline's counts: one counting rule for every tracker."""
    settings = Settings()
    frames = thinned(campus.length, campus.fps, rate)
    lines = tracking_eval.lines_for(campus)
    movements = tracking_eval.movements_for(lines)
    ours = replay(campus, frames, settings, lines, movements)
    counts, moved = count_tracks(
        ours.tracks, frames, campus.fps, lines, settings.tracker, movements
    )
    assert (counts, moved) == (ours.counts, ours.movements)
    assert sum(c["in"] + c["out"] for c in ours.counts.values()) > 10
    assert sum(moved.values()) > 0 or rate is not None  # TUD-Campus at 5 fps: none


def test_a_score_row_has_every_figure(campus: MotSequence) -> None:
    score = tracking_eval.score_ours(campus, 10.0, Settings())
    assert score.count_true > 0
    assert 0.0 < score.idf1 <= 1.0 and 0.0 < score.hota <= 1.0
    assert "| edge | TUD-Campus | 10.0 |" in tracking_eval.markdown([score])


def test_a_malformed_det_file_names_itself(tmp_path: Path, campus: MotSequence) -> None:
    folder = tmp_path / "seq"
    folder.mkdir()
    source = shared_file("tracking/TUD-Campus/det.txt").parent
    for name in ("seqinfo.ini", "gt.txt"):
        (folder / name).write_bytes((source / name).read_bytes())
    (folder / "det.txt").write_text("1,-1,10,10,5,5,0.9,-1,-1,-1\n900,-1,1,1,1,1,0.9,-1,-1,-1\n")
    with pytest.raises(SourceError, match=r"det\.txt: frame numbers must lie in 1\.\.71"):
        read_mot_sequence(folder)
