from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.analytics.evaluation import count_error, read_mot_gt, true_crossings, true_movements
from edge.config import LineConfig, MovementConfig
from edge.errors import SourceError
from tests.conftest import shared_file

CENTRE = LineConfig(name="centre", start=(320, 0), end=(320, 480))


def write_gt(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "gt.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_reads_mot_rows_and_skips_ignored_ones(tmp_path: Path) -> None:
    gt = read_mot_gt(
        write_gt(
            tmp_path,
            [
                "2,1,300,100,20,50,1,-1,-1,-1",
                "1,1,290,100,20,50,1,-1,-1,-1",
                "1,2,10,10,5,5,0,-1,-1,-1",  # conf 0: ignore region
            ],
        )
    )
    assert list(gt) == [1]
    frames, boxes = gt[1]
    assert frames.tolist() == [0, 1]  # sorted, 0-based
    assert boxes[0].tolist() == [290, 100, 310, 150]


def test_true_crossings_follow_the_counter_convention(tmp_path: Path) -> None:
    rows = [f"{f},1,{250 + 10 * f},100,20,50,1,-1,-1,-1" for f in range(1, 15)]  # left to right
    rows += [f"{f},2,{400 - 10 * f},100,20,50,1,-1,-1,-1" for f in range(1, 15)]  # right to left
    rows += [f"{f},3,{250 + 10 * f},460,20,50,1,-1,-1,-1" for f in range(1, 15)]  # below the end
    assert true_crossings(read_mot_gt(write_gt(tmp_path, rows)), CENTRE) == {"in": 1, "out": 1}


def test_true_movements_pair_each_annotated_object_s_crossings_in_time_order(
    tmp_path: Path,
) -> None:
    """Object 1 walks right across both lines, object 2 left across both, object 3 crosses the
    first line only, and object 4 crosses both but 40 s apart (at 1 fps), past ``within_s``."""
    west, east = LineConfig(name="w", start=(200, 0), end=(200, 480)), CENTRE
    rows = [f"{f},1,{150 + 20 * f},100,20,50,1,-1,-1,-1" for f in range(1, 12)]
    rows += [f"{f},2,{400 - 20 * f},100,20,50,1,-1,-1,-1" for f in range(1, 12)]
    rows += [f"{f},3,{150 + 20 * f},200,20,50,1,-1,-1,-1" for f in range(1, 5)]
    rows += [f"{f},4,{150 + 3 * f},300,20,50,1,-1,-1,-1" for f in range(1, 60)]
    movements = [
        MovementConfig.model_validate({"name": a + "-" + b, "from": a, "to": b})
        for a, b in (("w", "centre"), ("centre", "w"))
    ]
    truth = read_mot_gt(write_gt(tmp_path, rows))
    assert true_movements(truth, [west, east], movements, fps=1.0) == {"w-centre": 1, "centre-w": 1}


def test_tud_campus_ground_truth_matches_its_published_counts() -> None:
    gt = read_mot_gt(shared_file("clips/tud_campus/gt/gt.txt"))
    published = json.loads(shared_file("clips/tud_campus/counts.json").read_text())
    stats = published["files"]["TUD-Campus.mp4"]["stats"]
    assert len(gt) == stats["unique_ids"]
    assert sum(len(frames) for frames, _ in gt.values()) == stats["num_boxes"]
    assert true_crossings(gt, CENTRE) == {
        "in": stats["line"]["crossings_left_to_right"],
        "out": stats["line"]["crossings_right_to_left"],
    }


@pytest.mark.parametrize(
    ("truth", "counted", "error"),
    [
        ({"in": 4, "out": 1}, {"in": 4, "out": 1}, 0.0),
        ({"in": 4, "out": 1}, {"in": 3, "out": 2}, 0.4),
        ({"in": 0, "out": 0}, {"in": 0, "out": 0}, 0.0),
        ({"in": 0, "out": 0}, {"in": 1, "out": 0}, float("inf")),
    ],
)
def test_count_error(truth: dict[str, int], counted: dict[str, int], error: float) -> None:
    assert count_error(truth, counted) == error


def test_unreadable_gt(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"not a MOTChallenge gt\.txt"):
        read_mot_gt(write_gt(tmp_path, ["a,b,c"]))
