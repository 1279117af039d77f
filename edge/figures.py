"""Running figures in constant memory: a box that runs for months keeps no per-frame lists.

``Recent`` holds the last ``size`` values of a figure in a ring (for percentiles that describe
now, not the average of a month) and a count and total since the start (for means over the
whole run). Adding is O(1); a percentile reads at most ``size`` values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

T = TypeVar("T")
RECENT = 1024  # values kept for percentiles: 40 s of a 25 fps camera


class Recent:
    """The last ``size`` values of one figure, and the count and sum of all of them."""

    __slots__ = ("_ring", "count", "total")

    def __init__(self, size: int = RECENT) -> None:
        self._ring = np.zeros(size, np.float64)
        self.count = 0
        self.total = 0.0

    def add(self, value: float) -> None:
        self._ring[self.count % len(self._ring)] = value
        self.count += 1
        self.total += value

    @property
    def mean(self) -> float:
        """Over every value since the start."""
        return self.total / self.count if self.count else 0.0

    def percentiles(self) -> tuple[float, float]:
        """(p50, p95) of the recent values, rounded to 0.01; zeros when there is none yet."""
        recent = self._ring[: min(self.count, len(self._ring))]
        if not len(recent):
            return 0.0, 0.0
        p50, p95 = np.percentile(recent, [50, 95])
        return round(float(p50), 2), round(float(p95), 2)


class StageTimes:
    """Milliseconds per pipeline stage, one ``Recent`` each."""

    def __init__(self, stages: tuple[str, ...], size: int = RECENT) -> None:
        self.stages = {stage: Recent(size) for stage in stages}

    def __getitem__(self, stage: str) -> Recent:
        return self.stages[stage]

    def timed(self, stage: str, work: Callable[..., T], *args: object) -> T:
        """``work(*args)``, its duration added to ``stage``."""
        start = time.perf_counter()
        try:
            return work(*args)
        finally:
            self.stages[stage].add((time.perf_counter() - start) * 1e3)

    def mean_per_call(self) -> dict[str, float]:
        return {stage: round(r.mean, 3) for stage, r in self.stages.items()}

    def mean_per_frame(self, frames: int) -> dict[str, float]:
        """Each stage's total over ``frames``: where a frame's time goes, skipped stages at 0."""
        return {stage: r.total / max(frames, 1) for stage, r in self.stages.items()}
