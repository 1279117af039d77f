"""Tracking and counting accuracy on MOTChallenge sequences: ours against reference trackers.

Replays each sequence's recorded detections (``det.txt``) through our real stages after the
detector (``CameraPipeline.observe``: tracker, rider pairing, line counters) at the full frame
rate and thinned to lower rates, and reports per sequence and rate:

* identity metrics (HOTA, IDF1, MOTA, ID switches, fragmentations), computed by TrackEval, the
  MOTChallenge reference implementation, on the frames kept at that rate;
* line-count error on the static scenes: a grid of lines across the view plus both diagonals
  (``edge.analytics.evaluation.grid_lines``), the truth from ``gt.txt`` by the every-passage rule
  the counter promises (bottom-centre anchor, each change of side within the segment counts).

With ``--ultralytics-python`` the same detections go through Ultralytics' ByteTrack, BoT-SORT
(no re-ID), OC-SORT and TrackTrack (``benchmarks/reference_trackers.py`` in the baseline's own
venv, ``benchmarks/ultralytics-env.sh``) and their tracks are scored the same way and counted by
the same line counters.

    .venv/bin/python benchmarks/tracking_eval.py \\
        --ultralytics-python benchmarks/.venv-ultralytics/bin/python \\
        --out benchmarks/results/<date>-tracking

Error = sum over lines of (|in - in_true| + |out - out_true|) / sum of true passages.
TrackEval's metadata pulls the GUI build of OpenCV, which would replace the headless one; its
metrics need only numpy and scipy, so install it with ``pip install --no-deps trackeval``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.analytics.evaluation import (
    MotSequence,
    TrackRows,
    count_tracks,
    grid_lines,
    read_mot_sequence,
    replay,
    thinned,
    true_crossings,
    true_movements,
)
from edge.analytics.geometry import box_iou
from edge.analytics.track import TrackerConfig
from edge.config import LineConfig, MovementConfig, Settings

with contextlib.redirect_stdout(io.StringIO()):  # it prints which optional datasets it lacks
    from trackeval.metrics import CLEAR, HOTA, Identity

# The camera is fixed in these (MOT15's own description; the others are filmed from a moving
# car or platform, where a line fixed in pixels means nothing). Identity metrics use all nine.
STATIC_SCENES = frozenset({"ADL-Rundle-6", "KITTI-17", "TUD-Campus", "Venice-2"})
REFERENCES = ("bytetrack", "botsort", "ocsort", "tracktrack")
RATES: tuple[float | None, ...] = (None, 10.0, 5.0)


@dataclass(frozen=True)
class Score:
    """One tracker on one sequence at one rate."""

    tracker: str
    sequence: str
    rate: float | None
    hota: float
    idf1: float
    mota: float
    id_switches: int
    fragmentations: int
    count_wrong: int
    count_true: int
    ms_per_frame: float | None = None
    movement_wrong: int = 0  # turning movements (ours only): objects, summed over movements
    movement_true: int = 0


def identity_metrics(
    sequence: MotSequence, frames: npt.NDArray[np.int64], tracks: TrackRows
) -> dict[str, float]:
    """HOTA, IDF1, MOTA, IDSW and Frag of ``tracks`` on the kept ``frames``, by TrackEval."""
    gt_at: dict[int, list[tuple[int, npt.NDArray[np.float32]]]] = {}
    for gt_id, (gt_frames, boxes) in sequence.truth.items():
        for frame, box in zip(gt_frames.tolist(), boxes, strict=True):
            gt_at.setdefault(frame, []).append((gt_id, box))
    tracks = tracks[np.argsort(tracks[:, 0], kind="stable")]
    lo = np.searchsorted(tracks[:, 0], frames, side="left")
    hi = np.searchsorted(tracks[:, 0], frames, side="right")
    gt_index: dict[int, int] = {}
    tracker_index: dict[int, int] = {}
    data: dict[str, Any] = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    for frame, a, b in zip(frames.tolist(), lo.tolist(), hi.tolist(), strict=True):
        gt = gt_at.get(frame, [])
        gt_boxes = np.array([box for _, box in gt], np.float32).reshape(-1, 4)
        mine = tracks[a:b]
        ids = [gt_index.setdefault(i, len(gt_index)) for i, _ in gt]
        data["gt_ids"].append(np.array(ids, int))
        theirs = [tracker_index.setdefault(int(i), len(tracker_index)) for i in mine[:, 1]]
        data["tracker_ids"].append(np.array(theirs, int))
        data["similarity_scores"].append(
            box_iou(gt_boxes, mine[:, 2:6].astype(np.float32)).astype(float)
        )
    data.update(
        num_timesteps=len(frames),
        num_gt_ids=len(gt_index),
        num_tracker_ids=len(tracker_index),
        num_gt_dets=sum(len(ids) for ids in data["gt_ids"]),
        num_tracker_dets=sum(len(ids) for ids in data["tracker_ids"]),
    )
    with contextlib.redirect_stdout(io.StringIO()):
        hota = HOTA().eval_sequence(data)
        clear = CLEAR().eval_sequence(data)
        identity = Identity().eval_sequence(data)
    return {
        "hota": float(np.mean(hota["HOTA"])),
        "idf1": float(identity["IDF1"]),
        "mota": float(clear["MOTA"]),
        "id_switches": int(clear["IDSW"]),
        "fragmentations": int(clear["Frag"]),
    }


def count_wrong(
    sequence: MotSequence, lines: Sequence[LineConfig], counts: dict[str, dict[str, int]]
) -> tuple[int, int]:
    """(wrong, true) passages summed over ``lines``."""
    wrong = true = 0
    for line in lines:
        truth = true_crossings(sequence.truth, line)
        wrong += sum(abs(counts[line.name][d] - truth[d]) for d in ("in", "out"))
        true += truth["in"] + truth["out"]
    return wrong, true


def lines_for(sequence: MotSequence) -> list[LineConfig]:
    return grid_lines(sequence.width, sequence.height) if sequence.name in STATIC_SCENES else []


def movements_for(lines: Sequence[LineConfig]) -> list[MovementConfig]:
    """Turning movements between the outer lines of the grid (x1, x5, y1, y3), every ordered
    pair: across the view and round its corners, as an intersection's arms would be."""
    outer = [line.name for line in lines if line.name in ("x1", "x5", "y1", "y3")]
    return [
        MovementConfig.model_validate({"name": f"{a}-{b}", "from": a, "to": b})
        for a, b in itertools.permutations(outer, 2)
    ]


def score_ours(
    sequence: MotSequence,
    rate: float | None,
    settings: Settings,
    name: str = "edge",
    hysteresis: float | None = None,
) -> Score:
    frames = thinned(sequence.length, sequence.fps, rate)
    lines = lines_for(sequence)
    if hysteresis is not None:
        lines = [line.model_copy(update={"hysteresis": hysteresis}) for line in lines]
    movements = movements_for(lines)
    result = replay(sequence, frames, settings, lines, movements)
    wrong, true = count_wrong(sequence, lines, result.counts)
    truth = true_movements(sequence.truth, lines, movements, sequence.fps)
    metrics = identity_metrics(sequence, frames, result.tracks)
    return Score(
        name,
        sequence.name,
        rate,
        **metrics,
        count_wrong=wrong,
        count_true=true,
        ms_per_frame=result.seconds_per_frame * 1e3,
        movement_wrong=sum(abs(result.movements[m] - n) for m, n in truth.items()),
        movement_true=sum(truth.values()),
    )


def run_label(sequence: str, rate: float | None) -> str:
    return f"{sequence}@{'all' if rate is None else f'{rate:g}'}"


def prepare_runs(
    sequences: Iterable[MotSequence], rates: Sequence[float | None], root: Path
) -> None:
    """The thinned detections as ``reference_trackers.py`` reads them, one folder per run."""
    for sequence in sequences:
        for rate in rates:
            frames = thinned(sequence.length, sequence.fps, rate)
            run = root / run_label(sequence.name, rate)
            run.mkdir(parents=True)
            rows = []
            for frame in frames.tolist():
                det = sequence.detections[frame]
                for box, score in zip(det.xyxy.tolist(), det.confidence.tolist(), strict=True):
                    w, h = box[2] - box[0], box[3] - box[1]
                    rows.append(
                        f"{frame + 1},-1,{box[0]:.2f},{box[1]:.2f},{w:.2f},{h:.2f},"
                        f"{score:.4f},-1,-1,-1"
                    )
            (run / "det.txt").write_text("\n".join(rows) + "\n")
            (run / "frames.txt").write_text("\n".join(str(f + 1) for f in frames.tolist()) + "\n")
            effective = sequence.fps if rate is None else min(rate, sequence.fps)
            (run / "seqinfo.ini").write_text(
                f"[Sequence]\nname={sequence.name}\nframeRate={effective:g}\n"
                f"imWidth={sequence.width}\nimHeight={sequence.height}\n"
            )


def read_tracks(path: Path) -> TrackRows:
    """A MOT result file as (0-based frame, id, x1, y1, x2, y2) rows."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2, usecols=range(6))
    if rows.size == 0:
        return np.empty((0, 6))
    out = rows.copy()
    out[:, 0] -= 1
    out[:, 4:6] += rows[:, 2:4]
    return out


def score_references(
    python: Path,
    sequences: Sequence[MotSequence],
    rates: Sequence[float | None],
    config: TrackerConfig,
    trackers: Sequence[str] = REFERENCES,
) -> list[Score]:
    script = Path(__file__).with_name("reference_trackers.py")
    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        runs, out = Path(tmp) / "runs", Path(tmp) / "out"
        prepare_runs(sequences, rates, runs)
        subprocess.run(
            [
                str(python),
                str(script),
                "--runs",
                str(runs),
                "--out",
                str(out),
                "--trackers",
                ",".join(trackers),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for tracker in trackers:
            timing = json.loads((out / tracker / "timing.json").read_text())
            for sequence in sequences:
                for rate in rates:
                    label = run_label(sequence.name, rate)
                    frames = thinned(sequence.length, sequence.fps, rate)
                    tracks = read_tracks(out / tracker / f"{label}.txt")
                    lines = lines_for(sequence)
                    movements = movements_for(lines)
                    counts, moved = count_tracks(
                        tracks, frames, sequence.fps, lines, config, movements
                    )
                    truth = true_movements(sequence.truth, lines, movements, sequence.fps)
                    wrong, true = count_wrong(sequence, lines, counts)
                    metrics = identity_metrics(sequence, frames, tracks)
                    ms = timing.get(label, {}).get("ms_per_frame")
                    scores.append(
                        Score(
                            tracker,
                            sequence.name,
                            rate,
                            **metrics,
                            count_wrong=wrong,
                            count_true=true,
                            ms_per_frame=ms,
                            movement_wrong=sum(abs(moved[m] - n) for m, n in truth.items()),
                            movement_true=sum(truth.values()),
                        )
                    )
    return scores


def summary(scores: Sequence[Score]) -> list[dict[str, Any]]:
    """Per tracker and rate: count error over all static scenes, mean IDF1 and HOTA over all."""
    out = []
    trackers = sorted({s.tracker for s in scores})
    rates = sorted({s.rate for s in scores}, key=lambda r: -(r or math.inf))
    for tracker, rate in itertools.product(trackers, rates):
        group = [s for s in scores if s.tracker == tracker and s.rate == rate]
        if not group:
            continue
        wrong = sum(s.count_wrong for s in group)
        true = sum(s.count_true for s in group)
        moved_wrong = sum(s.movement_wrong for s in group)
        moved_true = sum(s.movement_true for s in group)
        out.append(
            {
                "tracker": tracker,
                "rate": rate,
                "count_wrong": wrong,
                "count_true": true,
                "count_error": wrong / true if true else 0.0,
                "movement_wrong": moved_wrong,
                "movement_true": moved_true,
                "movement_error": moved_wrong / moved_true if moved_true else 0.0,
                "idf1": float(np.mean([s.idf1 for s in group])),
                "hota": float(np.mean([s.hota for s in group])),
                "mota": float(np.mean([s.mota for s in group])),
                "id_switches": sum(s.id_switches for s in group),
            }
        )
    return out


def markdown(scores: Sequence[Score]) -> str:
    lines = [
        "| tracker | rate | count error | wrong / true | movement error | wrong / true "
        "| mean IDF1 | mean HOTA | mean MOTA | IDSW |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary(scores):
        lines.append(
            f"| {row['tracker']} | {row['rate'] or 'all'} | {row['count_error']:.3f} | "
            f"{row['count_wrong']} / {row['count_true']} | {row['movement_error']:.3f} | "
            f"{row['movement_wrong']} / {row['movement_true']} | {row['idf1']:.3f} | "
            f"{row['hota']:.3f} | {row['mota']:.3f} | {row['id_switches']} |"
        )
    lines += [
        "",
        "| tracker | sequence | rate | HOTA | IDF1 | MOTA | IDSW | Frag | count wrong / true |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in sorted(scores, key=lambda s: (s.sequence, -(s.rate or 99), s.tracker)):
        lines.append(
            f"| {s.tracker} | {s.sequence} | {s.rate or 'all'} | {s.hota:.3f} | {s.idf1:.3f} | "
            f"{s.mota:.3f} | {s.id_switches} | {s.fragmentations} | "
            f"{s.count_wrong} / {s.count_true} |"
        )
    return "\n".join(lines) + "\n"


# Leave-one-sequence-out: the grid the defaults are chosen from. Each value is a mechanism on or
# off or a round setting, never a fine search: eight sequences cannot pin down more.
GRID: dict[str, tuple[Any, ...]] = {
    "hysteresis": (0.1, 0.2, 0.3),
    "motion_gate": (0.0, 9.21, 20.0),
    "stitch_gate": (0.0, 0.5, 1.0),
    "smooth_boxes": (False, True),
}


def grid_points() -> list[dict[str, Any]]:
    keys = list(GRID)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*GRID.values())]


def configured(point: dict[str, Any]) -> tuple[Settings, float]:
    """Settings and line hysteresis for one grid point."""
    tracker = {k: v for k, v in point.items() if k != "hysteresis"}
    return Settings(tracker=TrackerConfig(**tracker)), float(point["hysteresis"])


_SEQUENCES: list[MotSequence] = []


def _load(folder: Path) -> None:
    _SEQUENCES[:] = [read_mot_sequence(p) for p in sorted(folder.iterdir()) if p.is_dir()]


def _score_point(point: dict[str, Any]) -> list[Score]:
    settings, hysteresis = configured(point)
    return [
        score_ours(seq, rate, settings, hysteresis=hysteresis)
        for seq in _SEQUENCES
        for rate in RATES
    ]


def objective(scores: Sequence[Score]) -> float:
    """What the tuning minimises: the pooled line-count error plus (1 - mean IDF1), both on
    the same sequences and rates; equal weights, since the issue asks for both."""
    wrong = sum(s.count_wrong for s in scores)
    true = sum(s.count_true for s in scores)
    return (wrong / true if true else 0.0) + 1.0 - float(np.mean([s.idf1 for s in scores]))


def leave_one_out(folder: Path) -> dict[str, Any]:
    """Score every grid point on every sequence and rate, then for each sequence choose the
    point that is best on the other eight and report the held-out sequence with it."""
    points = grid_points()
    with ProcessPoolExecutor(2, initializer=_load, initargs=(folder,)) as pool:
        table = list(pool.map(_score_point, points))
    names = sorted({s.sequence for s in table[0]})
    folds = []
    for held_out in names:
        train = [[s for s in scores if s.sequence != held_out] for scores in table]
        best = min(range(len(points)), key=lambda i: objective(train[i]))
        held = [s for s in table[best] if s.sequence == held_out]
        folds.append({"held_out": held_out, "chosen": points[best], "scores": held})
    everything = min(range(len(points)), key=lambda i: objective(table[i]))
    return {"points": points, "table": table, "folds": folds, "best_on_all": points[everything]}


def loo_markdown(result: dict[str, Any]) -> str:
    lines = [
        "| held out | chosen on the other eight | rate | count wrong / true | IDF1 | HOTA |",
        "|---|---|---|---|---|---|",
    ]
    for fold in result["folds"]:
        chosen = ", ".join(f"{k}={v}" for k, v in fold["chosen"].items())
        for s in fold["scores"]:
            lines.append(
                f"| {fold['held_out']} | {chosen} | {s.rate or 'all'} | "
                f"{s.count_wrong} / {s.count_true} | {s.idf1:.3f} | {s.hota:.3f} |"
            )
    held = [s for fold in result["folds"] for s in fold["scores"]]
    lines += [
        "",
        "| rate | held-out count error | wrong / true | mean held-out IDF1 |",
        "|---|---|---|---|",
    ]
    for rate in RATES:
        group = [s for s in held if s.rate == rate]
        wrong, true = sum(s.count_wrong for s in group), sum(s.count_true for s in group)
        lines.append(
            f"| {rate or 'all'} | {wrong / true:.3f} | {wrong} / {true} | "
            f"{np.mean([s.idf1 for s in group]):.3f} |"
        )
    best = ", ".join(f"{k}={v}" for k, v in result["best_on_all"].items())
    lines += ["", f"Best on all nine: {best}", "", "How often each value was chosen:", ""]
    for key, values in GRID.items():
        counts = {v: sum(f["chosen"][key] == v for f in result["folds"]) for v in values}
        lines.append(f"- {key}: " + ", ".join(f"{v}: {n}/9" for v, n in counts.items()))
    return "\n".join(lines) + "\n"


def _rates(text: str) -> tuple[float | None, ...]:
    return tuple(None if r.strip() == "all" else float(r) for r in text.split(","))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=Path, default=Path("../shared/tracking"))
    parser.add_argument(
        "--ultralytics-python",
        type=Path,
        help="the baseline venv's python: also score the reference trackers",
    )
    parser.add_argument("--out", type=Path, help="write results.md and results.json here")
    parser.add_argument(
        "--tune", action="store_true", help="leave-one-sequence-out over GRID instead (minutes)"
    )
    parser.add_argument(
        "--rates",
        type=_rates,
        default=RATES,
        help="comma-separated frame rates, 'all' for the full rate (default all,10,5)",
    )
    args = parser.parse_args()
    if args.tune:
        result = leave_one_out(args.sequences)
        text = loo_markdown(result)
        print(text)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "leave-one-out.md").write_text(text)
            rows = [[s.__dict__ for s in scores] for scores in result["table"]]
            (args.out / "leave-one-out.json").write_text(
                json.dumps({"points": result["points"], "scores": rows}) + "\n"
            )
        sys.exit(0)

    sequences = [read_mot_sequence(p) for p in sorted(args.sequences.iterdir()) if p.is_dir()]
    settings = Settings()
    rates = args.rates
    scores = [score_ours(seq, rate, settings) for seq in sequences for rate in rates]
    if args.ultralytics_python:
        scores += score_references(args.ultralytics_python, sequences, rates, settings.tracker)
    text = markdown(scores)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.md").write_text(text)
        rows = [s.__dict__ for s in scores]
        (args.out / "results.json").write_text(json.dumps({"scores": rows}, indent=1) + "\n")
    sys.exit(0)


if __name__ == "__main__":
    main()
