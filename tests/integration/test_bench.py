"""``edge bench`` on the shared clips, without the Ultralytics baseline (CI has none)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from edge.bench import Measurement, ground_truth, ratios
from edge.config import CameraConfig
from tests.conftest import REPO, shared_file
from tests.support.cli import assert_one_line_error, edge

BENCH = REPO / "benchmarks" / "bench.yaml"
RATIOS = {
    "pipeline_efficiency",
    "speedup_vs_ultralytics",
    "rss_ratio_ultralytics_over_ours",
    "count_error_edge",
    "count_error_ultralytics",
}


@pytest.mark.slow
def test_bench_on_the_shared_clips_writes_table_json_and_plots(tmp_path: Path) -> None:
    shared_file("clips/tud_campus/TUD-Campus.mp4")
    shared_file("clips/degirum_traffic2_intersection_960x540.mp4")
    model = shared_file("models/yolo11n_320.onnx")
    out = tmp_path / "bench"
    result = edge(
        "bench", "-c", str(BENCH), "--model", str(model), "--out", str(out), "--frames", "40",
        "--no-baseline",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "| camera | model | runner |" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].startswith("written:")

    doc = json.loads((out / "bench.json").read_text())
    assert doc["baseline"].startswith("skipped")
    assert doc["machine"]["cores"] >= 1
    assert [run["camera"] for run in doc["runs"]] == ["tud-campus", "traffic"]
    for run in doc["runs"]:
        assert set(run["ratios"]) == RATIOS
        limit, ours = run["runners"]["limit"], run["runners"]["edge"]
        assert limit["frames"] == ours["frames"] == 40
        assert ours["fps"] > 0 and limit["fps"] > 0
        assert run["ratios"]["pipeline_efficiency"] == pytest.approx(
            ours["fps"] / limit["fps"], rel=0.01
        )
        assert run["ratios"]["speedup_vs_ultralytics"] is None
        lat = ours["latency_ms"]
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
        assert ours["peak_rss_mb"] > 50  # model and libraries: a real process was measured
        assert ours["cpu_ms_per_frame"] > 0
        assert set(ours["stage_ms"]) >= {"decode", "motion", "detect", "track", "count"}
        assert ours["stage_ms"]["detect"] > ours["stage_ms"]["count"]
        assert len(run["series"]["edge"]["frame_ms"]) == 39  # the first frame is warm-up
        assert (out / f"reports-{run['camera']}-yolo11n_320.jsonl").is_file()
    tud = doc["runs"][0]
    assert tud["ground_truth"] == {"in": {"pedestrian": 3}, "out": {"pedestrian": 1}}  # 40 frames
    assert tud["ratios"]["count_error_edge"] is not None
    assert doc["runs"][1]["ground_truth"] is None
    plotted = subprocess.run(
        [sys.executable, "-m", "benchmarks.plot_bench", str(out)], cwd=REPO, capture_output=True
    )
    assert plotted.returncode == 0, plotted.stderr
    for name in ("stages.png", "fps.png", "rss.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 200 and image.shape[1] > 400, name
    assert "pipeline_efficiency" in (out / "bench.md").read_text()


def test_bench_errors_are_one_line(tmp_path: Path) -> None:
    missing = edge("bench", "-c", str(BENCH), "--model", str(tmp_path / "none.onnx"),
                   "--out", str(tmp_path), "--frames", "3", "--no-baseline")  # fmt: skip
    assert_one_line_error(missing, "none.onnx", "model file not found")
    live_only = tmp_path / "live.yaml"
    live_only.write_text(BENCH.read_text().split("cameras:")[0] + "cameras: []\n")
    empty = edge("bench", "-c", str(live_only), "--model", "x.onnx", "--out", str(tmp_path))
    assert_one_line_error(empty, "no recorded clip to benchmark")
    bad_gt = edge("bench", "-c", str(BENCH), "--model", "x.onnx", "--out", str(tmp_path),
                  "--gt", "nopath")  # fmt: skip
    assert_one_line_error(bad_gt, "--gt", "CAMERA=PATH")


def measurement(fps: float, rss: float, inn: int, out: int) -> Measurement:
    counts = {"in": {"pedestrian": inn}, "out": {"pedestrian": out}}
    return Measurement("x", 11, [1e3 / fps] * 10, 0.1, rss, [], counts=counts)


def test_ratios_are_the_figures_of_merit() -> None:
    truth = {"in": {"pedestrian": 4}, "out": {"pedestrian": 1}}
    limit, ours, ultra = measurement(40, 300, 0, 0), measurement(38, 200, 4, 0), None
    r = ratios(limit, ours, ultra, truth)
    assert r["pipeline_efficiency"] == 0.95
    assert r["speedup_vs_ultralytics"] is None and r["count_error_ultralytics"] is None
    assert r["count_error_edge"] == 0.2
    ultra = measurement(19, 900, 5, 1)
    r = ratios(limit, ours, ultra, truth)
    assert r["speedup_vs_ultralytics"] == 2.0
    assert r["rss_ratio_ultralytics_over_ours"] == 4.5
    assert r["count_error_ultralytics"] == 0.2


def test_ground_truth_is_cut_to_the_frames_measured(tud_clip: Path) -> None:
    camera = CameraConfig.model_validate(
        {"id": "t", "source": str(tud_clip),
         "lines": [{"name": "c", "start": [320, 0], "end": [320, 480]}]}
    )  # fmt: skip
    assert ground_truth(camera, 0, None) == {"in": {"pedestrian": 4}, "out": {"pedestrian": 1}}
    assert ground_truth(camera, 30, None) == {"in": {"pedestrian": 2}, "out": {"pedestrian": 1}}
    assert ground_truth(camera.model_copy(update={"source": "/nowhere/x.mp4"}), 0, None) is None
