"""End to end on the real model and the TUD-Campus clip, against its human ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edge.analytics.evaluation import read_mot_gt, true_crossings
from edge.app import build_detector, count
from edge.config import CameraConfig, LineConfig, load_settings
from tests.conftest import EXAMPLE, edge_argv, shared_file
from tests.support.cli import assert_one_line_error, edge

CENTRE = "centre=320,0,320,480"


def all_keys(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        return set(doc) | {k for v in doc.values() for k in all_keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in all_keys(v)}
    return set()


@pytest.mark.slow
def test_tud_campus_centre_line_matches_ground_truth(tud_clip: Path, yolo11n: Path) -> None:
    result = edge(
        "count", str(tud_clip), "-c", str(EXAMPLE), "--model", str(yolo11n),
        "--zone", "left=0,20,300,20,300,460,0,460", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    truth = true_crossings(
        read_mot_gt(shared_file("clips/tud_campus/gt/gt.txt")),
        LineConfig(name="centre", start=(320, 0), end=(320, 480)),
    )
    assert truth == {"in": 4, "out": 1}
    centre = doc["lines"]["centre"]
    assert abs(centre["in"]["pedestrian"] - truth["in"]) <= 1
    assert abs(centre["out"]["pedestrian"] - truth["out"]) <= 1
    assert centre["in"]["bike"] == centre["in"]["vehicle"] == 0  # all three always present
    # 2.84 s of a 60 s window: one partial window, the published report, with the same counts.
    (window,) = doc["windows"]
    assert (window["start"], window["end"], window["partial"]) == (0, 60, True)
    assert window["frames"] == 71
    windows = [window]
    assert (
        sum(w["lines"]["centre"]["in"]["pedestrian"] for w in windows) == centre["in"]["pedestrian"]
    )
    left = doc["zones"]["left"]["pedestrian"]  # samples of fewer than 3 people count as 0
    assert 0 < left["mean"] <= left["max"] <= 8 and left["max"] >= 3
    # Nothing that identifies or locates anyone leaves the pipeline.
    forbidden = {
        "id",
        "track_id",
        "tracker_id",
        "box",
        "boxes",
        "xyxy",
        "bbox",
        "image",
        "trajectory",
    }
    assert not all_keys(doc) & forbidden


@pytest.mark.slow
def test_low_detector_rate_still_counts(tud_clip: Path, audit_in_tmp: Path) -> None:
    """At 5 fps a walker moves 5x further between frames; crossings must still register."""
    settings = load_settings(EXAMPLE, model_dir=str(shared_file("models")))
    camera = CameraConfig(
        id="tud",
        location="TUD campus path",
        source=str(tud_clip),
        target_fps=5,
        lines=[LineConfig(name="x400", start=(400, 0), end=(400, 480))],  # 4 in, 0 out
    )
    detector = build_detector(settings)
    result = count(settings, camera, audit_log=audit_in_tmp, detector=detector, progress=False)
    assert result.frames == 15
    line = result.line_totals()["x400"]
    assert 2 <= line["in"]["pedestrian"] <= 4
    assert line["out"]["pedestrian"] == 0


def test_bad_line_flag_is_one_line(tud_clip: Path) -> None:
    assert_one_line_error(
        edge("count", str(tud_clip), "--line", "centre=320,0,320"),
        "--line: expected NAME=x1,y1,x2,y2",
    )


def test_line_outside_the_frame_is_refused_once_the_size_is_known(
    tud_clip: Path, yolo11n: Path
) -> None:
    flags = ["-c", str(EXAMPLE), "--model", str(yolo11n), "--line", "far=400,100,700,110"]
    result = edge("count", str(tud_clip), *flags)
    assert_one_line_error(
        result, "camera.lines[1].end: (700.0, 110.0) is outside the 640x480 frame"
    )


def test_degenerate_line_and_bow_tie_zone_are_refused(tud_clip: Path) -> None:
    assert_one_line_error(
        edge("count", str(tud_clip), "--line", "dot=5,5,5,5"), "same start and end"
    )
    assert_one_line_error(
        edge("count", str(tud_clip), "--zone", "bow=0,0,10,10,10,0,0,10"), "crosses itself"
    )


def test_bad_window(tud_clip: Path) -> None:
    assert_one_line_error(
        edge("count", str(tud_clip), "--window", "0"),
        "--window: window.seconds: Input should be greater than or equal to 1",
    )


def test_window_below_the_policy_minimum_is_refused(tud_clip: Path) -> None:
    result = edge("count", str(tud_clip), "-c", str(EXAMPLE), "--window", "10")
    assert result.returncode == 3
    assert "window.seconds: 10 s windows; the policy allows [60, 120, 300" in result.stderr


@pytest.mark.slow
def test_interrupt_keeps_what_was_counted(yolo11n: Path) -> None:
    """SIGINT or SIGTERM mid-clip: the figures so far are printed, the window closed partial."""
    import signal
    import subprocess
    import time

    from tests.conftest import REPO

    clip = shared_file("clips/degirum_traffic2_intersection_960x540.mp4")
    for sig in (signal.SIGINT, signal.SIGTERM):
        process = subprocess.Popen(
            edge_argv("count", str(clip), "-c", str(EXAMPLE),
                      "--model", str(yolo11n), "--line", "across=400,200,960,200", "--json"),
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(6)  # model loaded, some frames done, far from the 362 of the clip (~12 s)
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        doc = json.loads(out)
        assert doc["interrupted"] is True
        assert 0 < doc["frames"] < 362
        assert doc["windows"][-1]["partial"] is True
        assert sum(w["frames"] for w in doc["windows"]) == doc["frames"]
