"""Tumbling time windows: count events and occupancy samples in, one ``CountReport`` per window.

Windows are aligned to the clock the timestamps come from: ``[k * W, (k + 1) * W)`` for window
length W, so with Unix time a 60 s window starts on the minute, and with stream time (clips) on
whole multiples of W from the start of the clip. Everything is a pure function of the
timestamps handed in: a replay gives the same reports.

A live camera's open window can be taken out (``snapshot``) and put back (``resume``) as a
``WindowState``: aggregate figures only, so that a restart continues the window instead of
publishing a short one (``edge.publish.state`` keeps it on disk). No track id is in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from edge.analytics.counting import CountEvent
from edge.analytics.detections import CATEGORIES, Category
from edge.analytics.movements import MovementEvent
from edge.schema import DIRECTIONS, Direction


@dataclass(frozen=True)
class ZoneOccupancy:
    """Objects inside a zone during a window, per category: time-averaged and maximum."""

    mean: dict[Category, float]
    max: dict[Category, int]


@dataclass(frozen=True)
class CountReport:
    """Everything that ever leaves a camera's pipeline: aggregate figures for one window.

    start, end: seconds on the source's clock (stream time for clips, Unix time for live).
    lines: line -> direction -> category -> passages. zones: zone -> occupancy.
    movements: movement -> category -> objects that made it (empty without movements);
    movement_lines: movement -> (from line, to line).
    frames: frames processed in the window; observed_s: stream time they covered.
    partial: the window was cut short (end of clip, shutdown, or it started mid-window).
    """

    camera_id: str
    start: float
    end: float
    lines: dict[str, dict[Direction, dict[Category, int]]]
    zones: dict[str, ZoneOccupancy]
    frames: int
    observed_s: float
    partial: bool
    movements: dict[str, dict[Category, int]] = field(default_factory=dict)
    movement_lines: dict[str, tuple[str, str]] = field(default_factory=dict)
    # Passages two line cells share, object by object (``edge.legal.disclosure.overlap``): what
    # the egress gate needs to tell whole-minus-part differences. Counts only, never ids.
    overlap: npt.NDArray[np.int64] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera_id,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "frames": self.frames,
            "observed_s": round(self.observed_s, 3),
            "partial": self.partial,
            "lines": {
                name: {d: {c.value: n for c, n in per.items()} for d, per in counts.items()}
                for name, counts in self.lines.items()
            },
            "zones": {
                name: {
                    c.value: {"mean": round(occ.mean[c], 3), "max": occ.max[c]} for c in CATEGORIES
                }
                for name, occ in self.zones.items()
            },
            **(
                {
                    "movements": {
                        name: {
                            "origin": self.movement_lines[name][0],
                            "destination": self.movement_lines[name][1],
                            "counts": {c.value: n for c, n in per.items()},
                        }
                        for name, per in self.movements.items()
                    }
                }
                if self.movements
                else {}
            ),
        }


@dataclass(frozen=True)
class WindowState:
    """An open window's figures, as persisted across restarts: nothing per object.

    lines: line -> [[in x categories], [out x categories]]; zone sums and maxima per category
    and movements per category (``CATEGORIES`` order); frame_period: the source's last frame
    spacing, for ``observed_s``.
    """

    index: int
    seconds: float
    first: float
    last: float
    frames: int
    observed: float
    frame_period: float
    lines: dict[str, list[list[int]]]
    occupancy_sum: dict[str, list[int]]
    occupancy_max: dict[str, list[int]]
    movements: dict[str, list[int]] = field(default_factory=dict)
    movement_lines: dict[str, list[str]] = field(default_factory=dict)  # name -> [from, to]

    @property
    def start(self) -> float:
        return self.index * self.seconds

    @property
    def end(self) -> float:
        return (self.index + 1) * self.seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "seconds": self.seconds, "first": self.first,
            "last": self.last, "frames": self.frames, "observed": self.observed,
            "frame_period": self.frame_period, "lines": self.lines,
            "occupancy_sum": self.occupancy_sum, "occupancy_max": self.occupancy_max,
            "movements": self.movements, "movement_lines": self.movement_lines,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowState:
        """Raises ValueError (or KeyError / TypeError) on anything but a well-formed state."""
        shape, zone = [len(DIRECTIONS), len(CATEGORIES)], [len(CATEGORIES)]

        def table(raw: Any, dims: list[int]) -> dict[str, Any]:
            out = {}
            for name, values in dict(raw).items():
                array = np.asarray(values)
                if list(array.shape) != dims or array.dtype.kind not in "iu" or (array < 0).any():
                    raise ValueError(f"{name}: expected non-negative integers of shape {dims}")
                out[str(name)] = array.astype(np.int64).tolist()
            return out

        state = cls(
            index=int(data["index"]), seconds=float(data["seconds"]), first=float(data["first"]),
            last=float(data["last"]), frames=int(data["frames"]),
            observed=float(data["observed"]), frame_period=float(data["frame_period"]),
            lines=table(data["lines"], shape), occupancy_sum=table(data["occupancy_sum"], zone),
            occupancy_max=table(data["occupancy_max"], zone),
            movements=table(data.get("movements", {}), zone),  # none before movements existed
            movement_lines={
                str(name): [str(end) for end in ends]
                for name, ends in dict(data.get("movement_lines", {})).items()
            },
        )  # fmt: skip
        if set(state.movement_lines) != set(state.movements) or any(
            len(ends) != 2 for ends in state.movement_lines.values()
        ):
            raise ValueError("movement_lines: expected [from, to] for every movement")
        if state.seconds <= 0 or state.frames < 0 or state.observed < 0:
            raise ValueError("window length, frames and observed time must be positive")
        return state


@dataclass
class _Window:
    index: int
    first: float
    last: float
    frames: int = 0
    observed: float = 0.0  # seconds between consecutive frames, gaps excluded
    lines: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)  # (2, 3) in/out x cat
    occupancy_sum: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    occupancy_max: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    movements: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)  # per category
    resumed: bool = False  # restored from an earlier run: the time until its next frame is a gap


class WindowAggregator:
    """Accumulates one camera's events and occupancy samples into tumbling windows.

    Occupancy is sampled once per processed frame; the frames of a source are evenly spaced in
    time, so the mean over frames is the time average. ``observed_s`` counts the time between
    consecutive frames except intervals longer than ``gap_s`` (a camera offline), so a report
    says how much of its window was really watched.
    """

    def __init__(
        self,
        camera_id: str,
        lines: Sequence[str],
        zones: Sequence[str],
        seconds: float,
        gap_s: float = 2.0,
        movements: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """``movements``: name -> (from line, to line)."""
        self.camera_id = camera_id
        self.gap_s = gap_s
        self.line_names = list(lines)
        self.zone_names = list(zones)
        self.movement_lines = dict(movements or {})
        self.movement_names = list(self.movement_lines)
        self.seconds = float(seconds)
        self._window: _Window | None = None
        self._frame_period = 0.0

    def _open(self, index: int, timestamp: float) -> _Window:
        shape = (len(DIRECTIONS), len(CATEGORIES))
        return _Window(
            index,
            timestamp,
            timestamp,
            lines={name: np.zeros(shape, np.int64) for name in self.line_names},
            occupancy_sum={name: np.zeros(len(CATEGORIES), np.int64) for name in self.zone_names},
            occupancy_max={name: np.zeros(len(CATEGORIES), np.int64) for name in self.zone_names},
            movements={name: np.zeros(len(CATEGORIES), np.int64) for name in self.movement_names},
        )

    def add(
        self,
        timestamp: float,
        events: Sequence[CountEvent],
        occupancy: dict[str, npt.NDArray[np.int64]],
        movements: Sequence[MovementEvent] = (),
    ) -> list[CountReport]:
        """One processed frame; returns the reports of windows this timestamp closed."""
        index = math.floor(timestamp / self.seconds)
        closed = []
        window = self._window
        if window is not None and index != window.index:
            closed.append(self._report(window, partial=False))
            window = None
        if window is None:
            window = self._window = self._open(index, timestamp)
        else:
            step = timestamp - window.last
            if step <= self.gap_s and not window.resumed:
                self._frame_period = step
                window.observed += step
            window.resumed = False
        window.last = timestamp
        window.frames += 1
        for event in events:
            counts = window.lines[event.line]
            counts[DIRECTIONS.index(event.direction), CATEGORIES.index(event.category)] += 1
        for move in movements:
            window.movements[move.movement][CATEGORIES.index(move.category)] += 1
        for name, sample in occupancy.items():
            window.occupancy_sum[name] += sample
            np.maximum(window.occupancy_max[name], sample, out=window.occupancy_max[name])
        return closed

    def snapshot(self) -> WindowState | None:
        """The open window's figures (None if no frame came yet), to survive a restart."""
        window = self._window
        if window is None:
            return None
        return WindowState(
            index=window.index, seconds=self.seconds, first=window.first, last=window.last,
            frames=window.frames, observed=window.observed, frame_period=self._frame_period,
            lines={name: counts.tolist() for name, counts in window.lines.items()},
            occupancy_sum={name: a.tolist() for name, a in window.occupancy_sum.items()},
            occupancy_max={name: a.tolist() for name, a in window.occupancy_max.items()},
            movements={name: a.tolist() for name, a in window.movements.items()},
            movement_lines={name: list(ends) for name, ends in self.movement_lines.items()},
        )  # fmt: skip

    def fits(self, state: WindowState) -> bool:
        """The state was made with this window length, these lines, zones and movements."""
        return (
            state.seconds == self.seconds
            and list(state.lines) == self.line_names
            and list(state.occupancy_sum) == self.zone_names
            and {n: tuple(ends) for n, ends in state.movement_lines.items()} == self.movement_lines
            and list(state.movements) == self.movement_names
        )

    def resume(self, state: WindowState) -> None:
        """Continue a window a previous run left open: the next frames add to its figures;
        the time between its last frame and the next one is a gap, not observed time."""
        if not self.fits(state):
            raise ValueError(
                "the window state was made with another length, lines, zones or movements"
            )
        self._frame_period = state.frame_period
        self._window = _Window(
            state.index, state.first, state.last, state.frames, state.observed,
            lines={name: np.asarray(v, np.int64) for name, v in state.lines.items()},
            occupancy_sum={n: np.asarray(v, np.int64) for n, v in state.occupancy_sum.items()},
            occupancy_max={n: np.asarray(v, np.int64) for n, v in state.occupancy_max.items()},
            movements={n: np.asarray(v, np.int64) for n, v in state.movements.items()},
            resumed=True,
        )  # fmt: skip

    @classmethod
    def report_of(cls, camera_id: str, state: WindowState) -> CountReport:
        """A restored window that is over (or made under other parameters), closed as its own
        report under the parameters it was counted with."""
        aggregator = cls(
            camera_id,
            list(state.lines),
            list(state.occupancy_sum),
            state.seconds,
            movements={name: (ends[0], ends[1]) for name, ends in state.movement_lines.items()},
        )
        aggregator.resume(state)
        return aggregator.close()[0]

    def close(self) -> list[CountReport]:
        """End of clip or shutdown: the open window, flagged partial."""
        window, self._window = self._window, None
        return [] if window is None else [self._report(window, partial=True)]

    def _report(self, window: _Window, partial: bool) -> CountReport:
        start = window.index * self.seconds
        end = start + self.seconds
        observed = min(window.observed + self._frame_period, self.seconds)
        started_late = window.first - start > max(self._frame_period, 1e-6) * 1.5
        ended_early = window.last + self._frame_period < end - 1e-6
        frames = max(window.frames, 1)
        return CountReport(
            camera_id=self.camera_id,
            start=start,
            end=end,
            lines={
                name: {
                    d: {c: int(counts[i, j]) for j, c in enumerate(CATEGORIES)}
                    for i, d in enumerate(DIRECTIONS)
                }
                for name, counts in window.lines.items()
            },
            zones={
                name: ZoneOccupancy(
                    mean={c: float(total[j]) / frames for j, c in enumerate(CATEGORIES)},
                    max={c: int(window.occupancy_max[name][j]) for j, c in enumerate(CATEGORIES)},
                )
                for name, total in window.occupancy_sum.items()
            },
            frames=window.frames,
            observed_s=observed,
            partial=(partial and ended_early) or started_late,
            movements={
                name: {c: int(counts[j]) for j, c in enumerate(CATEGORIES)}
                for name, counts in window.movements.items()
            },
            movement_lines=dict(self.movement_lines),
        )
