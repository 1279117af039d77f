"""Ground truth for counting accuracy: MOTChallenge annotations and the crossings they imply.

The true crossings use the same convention as ``edge.analytics.counting``: bottom-centre anchor,
``in`` = from the right-hand side to the left-hand side of someone walking from A to B. Unlike
the counter there is no hysteresis: annotated boxes do not jitter, so every change of side whose
step passes through the segment is one crossing.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt

from edge.analytics.geometry import anchor_points, segments_intersect, side_of_line
from edge.config import LineConfig
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
    a, b = np.asarray(line.start, np.float64), np.asarray(line.end, np.float64)
    counts = {"in": 0, "out": 0}
    for _, xyxy in truth.values():
        points = anchor_points(xyxy, line.anchor).astype(np.float64)
        side = np.where(side_of_line(points, a, b) > 0, 1, -1)
        changed = np.flatnonzero(side[1:] != side[:-1])
        through = segments_intersect(points[changed], points[changed + 1], a, b)
        for step in changed[through]:
            counts["in" if side[step] > 0 else "out"] += 1
    return counts


def count_error(truth: dict[str, int], counted: dict[str, int]) -> float:
    """(|in - in_true| + |out - out_true|) / (in_true + out_true); inf when nothing to count."""
    total = truth["in"] + truth["out"]
    wrong = abs(counted["in"] - truth["in"]) + abs(counted["out"] - truth["out"])
    return wrong / total if total else (0.0 if wrong == 0 else float("inf"))
