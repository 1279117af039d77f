"""Ground truth for counting accuracy: MOTChallenge annotations and the crossings they imply.

The true crossings use the same convention as ``edge.analytics.counting``: bottom-centre anchor,
``in`` = from the right-hand side to the left-hand side of someone walking from A to B. Unlike
the counter there is no hysteresis: annotated boxes do not jitter, so every change of side whose
step passes through the segment is one crossing.
"""

from __future__ import annotations

import configparser
import itertools
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.analytics.counting import CountEvent, LineCounter
from edge.analytics.detections import Category, Detections
from edge.analytics.geometry import anchor_points, segments_intersect, side_of_line
from edge.analytics.movements import MovementCounter
from edge.analytics.pipeline import CameraPipeline
from edge.analytics.track import TrackerConfig, Tracks
from edge.config import CameraConfig, LineConfig, MovementConfig, Settings
from edge.errors import SourceError

GroundTruth = dict[int, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]


def read_mot_gt(path: Path) -> GroundTruth:
    """``gt.txt`` -> {id: (0-based frame indices, xyxy boxes)}, sorted by frame.

    Rows: ``frame, id, left, top, width, height, conf, ...`` with 1-based frames; rows with
    conf 0 are "ignore" regions and are skipped.
    """
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2, usecols=range(7))
    except (OSError, ValueError) as err:
        raise SourceError(f"{path}: not a MOTChallenge gt.txt ({err})") from err
    rows = rows[rows[:, 6] != 0]
    by_id: dict[int, list[npt.NDArray[np.float64]]] = defaultdict(list)
    for row in rows[np.lexsort((rows[:, 0], rows[:, 1]))]:
        by_id[int(row[1])].append(row)
    truth: GroundTruth = {}
    for track_id, track_rows in by_id.items():
        r = np.array(track_rows)
        xyxy = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1)
        truth[track_id] = ((r[:, 0] - 1).astype(np.int64), xyxy.astype(np.float32))
    return truth


def true_crossings(truth: GroundTruth, line: LineConfig) -> dict[str, int]:
    """Crossings of ``line`` by the annotated tracks: {"in": n, "out": n}."""
    counts = {"in": 0, "out": 0}
    for frames, xyxy in truth.values():
        for event in _passages(frames, xyxy, line, fps=1.0):
            counts[event.direction] += 1
    return counts


def true_movements(
    truth: GroundTruth, lines: list[LineConfig], movements: list[MovementConfig], fps: float
) -> dict[str, int]:
    """Turning movements of the annotated tracks: their crossings (as ``true_crossings``), in
    time order, paired by ``MovementCounter`` under each annotated id."""
    passages = [
        (event, track_id)
        for track_id, (frames, xyxy) in truth.items()
        for line in lines
        for event in _passages(frames, xyxy, line, fps)
    ]
    counter = MovementCounter(movements)
    counts = dict.fromkeys((m.name for m in movements), 0)
    passages.sort(key=lambda pair: pair[0].timestamp)
    for t, group in itertools.groupby(passages, key=lambda pair: pair[0].timestamp):
        events, ids = zip(*group, strict=True)
        for move in counter.update(events, ids, t):
            counts[move.movement] += 1
    return counts


def _passages(
    frames: npt.NDArray[np.int64], xyxy: npt.NDArray[np.float32], line: LineConfig, fps: float
) -> list[CountEvent]:
    """One annotated track's crossings of ``line``, timed at the frame after each step."""
    a, b = np.asarray(line.start, np.float64), np.asarray(line.end, np.float64)
    points = anchor_points(xyxy, line.anchor).astype(np.float64)
    side = np.where(side_of_line(points, a, b) > 0, 1, -1)
    changed = np.flatnonzero(side[1:] != side[:-1])
    through = segments_intersect(points[changed], points[changed + 1], a, b)
    return [
        CountEvent(line.name, "in" if side[step] > 0 else "out", Category.PEDESTRIAN,
                   float(frames[step + 1]) / fps)
        for step in changed[through]
    ]  # fmt: skip


def count_error(truth: dict[str, int], counted: dict[str, int]) -> float:
    """(|in - in_true| + |out - out_true|) / (in_true + out_true); inf when nothing to count."""
    total = truth["in"] + truth["out"]
    wrong = abs(counted["in"] - truth["in"]) + abs(counted["out"] - truth["out"])
    return wrong / total if total else (0.0 if wrong == 0 else float("inf"))


# -- replaying recorded detections ------------------------------------------------------------
# The tracking evaluation (benchmarks/tracking_eval.py) feeds a MOTChallenge sequence's
# detections through the real stages after the detector, at its own or a thinned frame rate,
# and compares the tracks and the counts with the annotations. Nothing here touches pixels.


@dataclass(frozen=True)
class MotSequence:
    """One MOTChallenge sequence without images: detections per frame and the annotations.

    detections: one ``Detections`` per 0-based frame (persons, COCO class 0).
    """

    name: str
    fps: float
    width: int
    height: int
    detections: tuple[Detections, ...]
    truth: GroundTruth

    @property
    def length(self) -> int:
        return len(self.detections)


def read_mot_sequence(folder: Path) -> MotSequence:
    """``det.txt``, ``gt.txt`` and ``seqinfo.ini`` of a MOTChallenge sequence folder."""
    info = configparser.ConfigParser()
    if not info.read(folder / "seqinfo.ini"):
        raise SourceError(f"{folder / 'seqinfo.ini'}: missing or unreadable")
    try:
        section = info["Sequence"]
        fps, length = float(section["frameRate"]), int(section["seqLength"])
        width, height = int(section["imWidth"]), int(section["imHeight"])
    except (KeyError, ValueError) as err:
        raise SourceError(
            f"{folder / 'seqinfo.ini'}: needs frameRate, seqLength, imWidth, "
            f"imHeight in [Sequence] ({err})"
        ) from err
    return MotSequence(
        folder.name,
        fps,
        width,
        height,
        read_mot_detections(folder / "det.txt", length),
        read_mot_gt(folder / "gt.txt"),
    )


def read_mot_detections(path: Path, length: int) -> tuple[Detections, ...]:
    """``det.txt`` (``frame, -1, left, top, width, height, score, ...``, 1-based frames) as one
    person ``Detections`` per frame of a sequence of ``length`` frames."""
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2, usecols=range(7))
    except (OSError, ValueError) as err:
        raise SourceError(f"{path}: not a MOTChallenge det.txt ({err})") from err
    frame = rows[:, 0].astype(np.int64) - 1
    if len(rows) and (frame.min() < 0 or frame.max() >= length):
        raise SourceError(f"{path}: frame numbers must lie in 1..{length}")
    order = np.argsort(frame, kind="stable")
    rows, frame = rows[order], frame[order]
    xyxy = np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1).astype(np.float32)
    score = rows[:, 6].astype(np.float32)
    bounds = np.searchsorted(frame, np.arange(length + 1)).tolist()
    return tuple(
        Detections(xyxy[lo:hi].copy(), score[lo:hi].copy(), np.zeros(hi - lo, np.int16))
        for lo, hi in itertools.pairwise(bounds)
    )


def thinned(length: int, fps: float, target_fps: float | None) -> npt.NDArray[np.int64]:
    """The 0-based frames a camera read at ``target_fps`` keeps: the first frame of each
    1/target_fps interval, as ``edge``'s frame-rate limiter does (all of them when ``None`` or
    not below ``fps``)."""
    frames = np.arange(length, dtype=np.int64)
    if target_fps is None or target_fps >= fps:
        return frames
    slot = np.floor(frames * (target_fps / fps) + 1e-9).astype(np.int64)
    kept: npt.NDArray[np.int64] = frames[np.concatenate([[True], slot[1:] != slot[:-1]])]
    return kept


def grid_lines(width: int, height: int) -> list[LineConfig]:
    """Counting lines across a whole static view: five vertical, three horizontal and the two
    diagonals, so passages in every direction and under every perspective are measured."""
    w, h = float(width), float(height)
    lines = [(f"x{k}", (w * k / 6, 0.0), (w * k / 6, h)) for k in range(1, 6)]
    lines += [(f"y{k}", (0.0, h * k / 4), (w, h * k / 4)) for k in range(1, 4)]
    lines += [("diag-down", (0.0, 0.0), (w, h)), ("diag-up", (0.0, h), (w, 0.0))]
    return [LineConfig(name=n, start=a, end=b) for n, a, b in lines]


TrackRows = npt.NDArray[np.float64]  # (N, 6): 0-based frame, id, x1, y1, x2, y2


@dataclass(frozen=True)
class Replay:
    """What one tracker made of a sequence: its tracks (for the identity metrics, never
    published) and the passages the counters found, {line: {"in": n, "out": n}}."""

    tracks: TrackRows
    counts: dict[str, dict[str, int]]
    seconds_per_frame: float
    movements: dict[str, int]  # movement -> objects


def replay(
    sequence: MotSequence,
    frames: npt.NDArray[np.int64],
    settings: Settings,
    lines: list[LineConfig],
    movements: list[MovementConfig] | None = None,
) -> Replay:
    """The sequence's detections on ``frames`` through ``CameraPipeline.observe`` (tracker,
    riders, line counters, movements), each at its own timestamp."""
    camera = CameraConfig(
        id="replay",
        location="tracking evaluation",
        source="replay",
        lines=lines,
        movements=movements or [],
    )
    pipeline = CameraPipeline(camera, settings)
    counts = {line.name: {"in": 0, "out": 0} for line in lines}
    moved = {movement.name: 0 for movement in camera.movements}
    rows = []
    started = time.perf_counter()
    for frame in frames.tolist():
        tracks, events = pipeline.observe(frame / sequence.fps, sequence.detections[frame])
        rows.append(_rows(frame, tracks))
        for event in events:
            counts[event.line][event.direction] += 1
        for move in pipeline.moved:
            moved[move.movement] += 1
    elapsed = (time.perf_counter() - started) / max(len(frames), 1)
    return Replay(np.concatenate(rows) if rows else np.empty((0, 6)), counts, elapsed, moved)


def count_tracks(
    tracks: TrackRows,
    frames: npt.NDArray[np.int64],
    fps: float,
    lines: list[LineConfig],
    tracker: TrackerConfig,
    movements: list[MovementConfig] | None = None,
) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    """Passages ({line: {"in": n, "out": n}}) and turning movements ({movement: n}) of another
    tracker's ``tracks`` by our line and movement counters (with ``tracker``'s lost-track time
    and stitching gate), frame by frame, so trackers are compared on one counting rule."""
    counters = [LineCounter(line, tracker.lost_seconds, tracker.stitch_gate) for line in lines]
    movement_counter = MovementCounter(movements or [])
    counts = {line.name: {"in": 0, "out": 0} for line in lines}
    moved = {movement.name: 0 for movement in movements or []}
    order = np.argsort(tracks[:, 0], kind="stable")
    tracks = tracks[order]
    bounds = np.searchsorted(tracks[:, 0], frames, side="left")
    ends = np.searchsorted(tracks[:, 0], frames, side="right")
    for frame, lo, hi in zip(frames.tolist(), bounds.tolist(), ends.tolist(), strict=True):
        rows = tracks[lo:hi]
        current = Tracks(
            np.ascontiguousarray(rows[:, 2:6], np.float32),
            rows[:, 1].astype(np.int64),
            np.zeros(len(rows), np.int16),
            np.ones(len(rows), np.float32),
        )
        events, passers, stitched = [], [], []
        for counter in counters:
            events += counter.update(current, frame / fps)
            passers += counter.passers
            stitched += counter.stitched
        for event in events:
            counts[event.line][event.direction] += 1
        for move in movement_counter.update(events, passers, frame / fps, stitched):
            moved[move.movement] += 1
    return counts, moved


def _rows(frame: int, tracks: Tracks) -> TrackRows:
    out = np.empty((len(tracks), 6))
    out[:, 0] = frame
    out[:, 1] = tracks.track_id
    out[:, 2:] = tracks.xyxy
    return out
