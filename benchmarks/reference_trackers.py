"""Reference trackers: Ultralytics' own trackers run on pre-computed detections, MOT output.

Run it with the baseline venv's python (made by benchmarks/ultralytics-env.sh), never the
project's: it imports only the standard library, numpy and ultralytics, not `edge`.

    benchmarks/.venv-ultralytics/bin/python benchmarks/reference_trackers.py \\
        --runs RUNS_DIR --out OUT_DIR [--trackers bytetrack,botsort,ocsort,tracktrack]

Input: every subdirectory RUNS_DIR/<run>/ holds
* det.txt: MOT detection rows `frame,-1,left,top,width,height,score,-1,-1,-1` (1-based frames,
  person class only), only for the frames kept in the run;
* frames.txt: the kept frame numbers, one per line, ascending; the tracker is stepped once per
  kept frame, with an empty detection set where det.txt has no row for it;
* seqinfo.ini: `[Sequence]` with frameRate (the effective rate of the kept frames, may be
  fractional), imWidth, imHeight.

Output: OUT_DIR/<tracker>/<run>.txt, MOT rows `frame,id,left,top,width,height,score,-1,-1,-1`
for every track `update` returns at that frame (original frame numbers; ids start at 1 per run),
and OUT_DIR/<tracker>/timing.json: per run, {"frames", "rows", "frame_rate", "ms_per_frame"},
where ms_per_frame is the mean wall time of one `update` call (nothing else is timed). One
line per (tracker, run) goes to stdout. Malformed input: one line on stderr, exit status 2.

How the trackers are built and fed (Ultralytics 8.4.190, trackers/track.py):
* config: the shipped YAML (cfg/trackers/<name>.yaml, found by `check_yaml` as track.py does),
  `cfg.device = "cpu"`, and the class from track.py's TRACKER_MAP called as `cls(args=cfg)`. A
  fresh tracker per (tracker, run), so track ids restart at 1 for each run.
* frame rate: no tracker takes one in 8.4.190 (older releases had a `frame_rate` argument that
  scaled track_buffer by frame_rate / 30, and their track.py always passed 30). `track_buffer`
  (30) and every age count `update` calls, i.e. KEPT frames: at 5 fps a lost track is kept for
  6 s, at 30 fps for 1 s. frameRate is only validated and recorded in timing.json.
* detections: a small numpy-backed stand-in for `Boxes.cpu().numpy()` (`conf`, `cls`, `xyxy`,
  `xywh`, `len`, boolean indexing), float32 like Ultralytics' own; class 0 for every row.
* images: none exist, and none is needed: `update(dets, img=None)`. BoT-SORT runs with
  `with_reid: False` (its default) and `gmc_method: none` (global motion compensation needs
  frames); those are the only changes to the YAML defaults. TrackTrack keeps its YAML
  (`gmc_method: sparseOptFlow`, `with_reid: False`), but its GMC runs only when it gets an image,
  so with img=None it never runs either. TrackTrack also never gets `dets_del` (boxes a looser
  NMS would have kept, taken from the detector's raw output by track.py): there is none here.
  ByteTrack and OC-SORT never look at the image.
"""

from __future__ import annotations

import argparse
import configparser
import itertools
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt

TRACKERS = ("bytetrack", "botsort", "ocsort", "tracktrack")
YAML_OVERRIDES: dict[str, dict[str, Any]] = {
    "botsort": {"with_reid": False, "gmc_method": "none"},  # no images: no ReID crops, no GMC
}
F32 = npt.NDArray[np.float32]


class InputError(Exception):
    """Bad command line or malformed input file: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise InputError(message)


@dataclass(frozen=True)
class Detections:
    """What the trackers read from `Results.boxes.cpu().numpy()`: float32 arrays, one row each."""

    xyxy: F32  # (N, 4)
    conf: F32  # (N,)
    cls: F32  # (N,)

    @property
    def xywh(self) -> F32:
        """Centre x, centre y, width, height."""
        wh = self.xyxy[:, 2:4] - self.xyxy[:, 0:2]
        return np.concatenate([self.xyxy[:, 0:2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index: Any) -> Detections:
        return Detections(self.xyxy[index], self.conf[index], self.cls[index])

    @staticmethod
    def from_ltwh(ltwh: npt.NDArray[np.float64], score: npt.NDArray[np.float64]) -> Detections:
        """From MOT (left, top, width, height) rows and scores; every row is class 0 (person)."""
        xyxy = np.concatenate([ltwh[:, 0:2], ltwh[:, 0:2] + ltwh[:, 2:4]], axis=1)
        return Detections(
            xyxy.astype(np.float32), score.astype(np.float32), np.zeros(len(score), np.float32)
        )


@dataclass(frozen=True)
class Run:
    """One run directory: the kept frames, their detections and the effective frame rate."""

    name: str
    frames: list[int]
    detections: dict[int, Detections]  # frame -> its detections (absent: none)
    frame_rate: float
    width: int
    height: int


def read_frames(path: Path) -> list[int]:
    """frames.txt: positive frame numbers, strictly ascending, at least one."""
    try:
        frames = [int(line) for line in path.read_text().split()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    except ValueError:
        raise InputError(f"{path}: expected one integer frame number per line") from None
    if not frames:
        raise InputError(f"{path}: no frames")
    if frames[0] < 1 or any(b <= a for a, b in itertools.pairwise(frames)):
        raise InputError(f"{path}: frame numbers must be >= 1 and strictly ascending")
    return frames


def read_detections(path: Path, kept: set[int]) -> dict[int, Detections]:
    """det.txt: MOT rows on kept frames only, with finite boxes of non-negative size."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    rows: list[list[float]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            values = [float(v) for v in line.split(",")]
        except ValueError:
            raise InputError(f"{path}:{number}: not comma-separated numbers: {line!r}") from None
        if len(values) < 7 or not all(math.isfinite(v) for v in values[:7]):
            raise InputError(f"{path}:{number}: expected frame,id,left,top,width,height,score")
        frame, _, _, _, width, height, _ = values[:7]
        if frame != int(frame) or int(frame) not in kept:
            raise InputError(f"{path}:{number}: frame {frame:g} is not in frames.txt")
        if width < 0 or height < 0:
            raise InputError(f"{path}:{number}: negative box size")
        rows.append(values[:7])
    if not rows:
        return {}
    table = np.asarray(rows, dtype=np.float64)
    frame_of = table[:, 0].astype(np.int64)
    return {
        int(frame): Detections.from_ltwh(table[frame_of == frame, 2:6], table[frame_of == frame, 6])
        for frame in np.unique(frame_of)
    }


def read_seqinfo(path: Path) -> tuple[float, int, int]:
    """seqinfo.ini: [Sequence] frameRate (> 0, may be fractional), imWidth, imHeight (> 0)."""
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text())
        section = parser["Sequence"]
        frame_rate = float(section["frameRate"])
        width, height = int(section["imWidth"]), int(section["imHeight"])
    except (OSError, UnicodeDecodeError, configparser.Error, KeyError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise InputError(
            f"{path}: need [Sequence] frameRate, imWidth, imHeight ({reason})"
        ) from None
    if not (math.isfinite(frame_rate) and frame_rate > 0 and width > 0 and height > 0):
        raise InputError(f"{path}: frameRate, imWidth and imHeight must be positive")
    return frame_rate, width, height


def read_run(directory: Path) -> Run:
    """Read and validate one run directory (raises InputError naming the bad file)."""
    for name in ("det.txt", "frames.txt", "seqinfo.ini"):
        if not (directory / name).is_file():
            raise InputError(f"{directory / name}: missing")
    frames = read_frames(directory / "frames.txt")
    detections = read_detections(directory / "det.txt", set(frames))
    frame_rate, width, height = read_seqinfo(directory / "seqinfo.ini")
    return Run(directory.name, frames, detections, frame_rate, width, height)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (raises InputError)."""
    p = _Parser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--runs", required=True, type=Path, help="directory of run directories")
    p.add_argument("--out", required=True, type=Path, help="output directory")
    p.add_argument(
        "--trackers",
        default=",".join(TRACKERS),
        help="comma-separated, from: " + ", ".join(TRACKERS),
    )
    args = p.parse_args(argv)
    if not args.runs.is_dir():
        raise InputError(f"--runs: not a directory: {args.runs}")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out: not a directory: {args.out}")
    names = [t.strip() for t in args.trackers.split(",") if t.strip()]
    unknown = sorted(set(names) - set(TRACKERS))
    if not names or unknown:
        raise InputError(f"--trackers: unknown {unknown or 'empty list'}; known: {TRACKERS}")
    args.trackers = list(dict.fromkeys(names))
    return args


def load_configs(trackers: Sequence[str]) -> tuple[dict[str, Any], dict[str, type]]:
    """Each tracker's config (shipped YAML + YAML_OVERRIDES) and class, as track.py builds them.

    Imports ultralytics: call `set_up_ultralytics` first.
    """
    from ultralytics.trackers.track import TRACKER_MAP
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    configs: dict[str, Any] = {}
    classes: dict[str, type] = {}
    for name in trackers:
        cfg = IterableSimpleNamespace(**YAML.load(check_yaml(f"{name}.yaml")))
        for key, value in YAML_OVERRIDES.get(name, {}).items():
            setattr(cfg, key, value)
        cfg.device = "cpu"  # track.py: the predictor's device (used only by a ReID encoder)
        configs[name] = cfg
        classes[name] = TRACKER_MAP[cfg.tracker_type]
    return configs, classes


def track_run(tracker: Any, run: Run) -> tuple[list[str], float]:
    """Step `tracker` once per kept frame; return the MOT rows and the mean ms per update."""
    empty = Detections(
        np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.float32)
    )
    rows: list[str] = []
    seconds = 0.0
    for frame in run.frames:
        dets = run.detections.get(frame, empty)
        start = time.perf_counter()
        tracks = tracker.update(dets, None)
        seconds += time.perf_counter() - start
        for x1, y1, x2, y2, track_id, score, _cls, _idx in np.asarray(tracks).reshape(-1, 8):
            rows.append(
                f"{frame},{int(track_id)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},"
                f"{score:.4f},-1,-1,-1"
            )
    return rows, seconds * 1e3 / len(run.frames)


def read_runs(root: Path) -> list[Run]:
    """Every run directory under `root`, validated before any tracking starts."""
    run_dirs = sorted(d for d in root.iterdir() if d.is_dir())
    if not run_dirs:
        raise InputError(f"--runs: no run directories in {root}")
    return [read_run(d) for d in run_dirs]


def set_up_ultralytics(config_dir: str) -> None:
    """Environment for a quiet, offline Ultralytics, then import it (only after this)."""
    os.environ["YOLO_OFFLINE"] = "1"  # no network: no downloads, no telemetry
    os.environ["YOLO_CONFIG_DIR"] = config_dir  # its settings.json, not in the user's home
    os.environ["YOLO_AUTOINSTALL"] = "False"  # never pip-install at run time
    os.environ["YOLO_VERBOSE"] = "False"
    import ultralytics  # noqa: F401

    for handler in logging.getLogger("ultralytics").handlers:  # its warnings: stderr
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)


def run_all(runs: Sequence[Run], trackers: Sequence[str], out: Path) -> None:
    """Run every tracker on every run; write the tracks and timing.json per tracker."""
    configs, classes = load_configs(trackers)
    for name in trackers:
        out_dir = out / name
        out_dir.mkdir(parents=True, exist_ok=True)
        timing: dict[str, dict[str, float | int]] = {}
        for run in runs:
            tracker = classes[name](args=configs[name])
            rows, ms = track_run(tracker, run)
            (out_dir / f"{run.name}.txt").write_text("".join(r + "\n" for r in rows))
            timing[run.name] = {
                "frames": len(run.frames),
                "rows": len(rows),
                "frame_rate": run.frame_rate,
                "ms_per_frame": ms,
            }
            print(
                f"{name} {run.name}: {len(run.frames)} frames, {len(rows)} rows, {ms:.3f} ms/frame"
            )
        (out_dir / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        runs = read_runs(args.runs)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="yolo-config-") as config_dir:
        set_up_ultralytics(config_dir)
        run_all(runs, args.trackers, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
