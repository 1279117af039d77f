"""Turning movements: an object's passage over one line followed by its passage over another.

An intersection's arms each get a line; a movement is a named (from line, to line) pair, with an
optional direction on each, and counts the objects that passed the first and then the second
within ``within_s`` seconds (north arm in, east arm out: one north-to-east movement). Each
object's pending origins are its last passages, kept by track id in this module's memory only
and forgotten after the longest ``within_s``; a movement counts an object once (its origin is
used up), with the category of its second passage. What leaves is a ``MovementEvent``: the
movement's name, category and time, never an id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from edge.analytics.counting import CountEvent
from edge.analytics.detections import Category
from edge.config import MovementConfig


@dataclass(frozen=True, slots=True)
class MovementEvent:
    """One object's movement from one line to another. Deliberately holds no id or position."""

    movement: str
    category: Category
    timestamp: float


class MovementCounter:
    """Pairs each frame's line passages object by object into movements."""

    def __init__(self, movements: Sequence[MovementConfig]) -> None:
        self.movements = list(movements)
        self.forget_after_s = max((m.within_s for m in self.movements), default=0.0)
        # track id -> (line, direction) -> time of its latest passage there
        self._origins: dict[int, dict[tuple[str, str], float]] = {}
        self.movers: list[int] = []  # the last update's events' track ids, in their order

    def update(
        self,
        passages: Sequence[CountEvent],
        passers: Sequence[int],
        timestamp: float,
        stitched: Sequence[tuple[int, int]] = (),
    ) -> list[MovementEvent]:
        """This frame's passages (``passers``: their track ids, in order); the movements they
        complete. ``stitched``: (lost id, new id) pairs the line counters re-linked this frame
        (``LineCounter.stitched``), whose origins pass to the new id. Origins older than the
        longest ``within_s`` are forgotten first."""
        self.movers = []
        if not self.movements:
            return []
        for lost, found in stitched:
            if lost in self._origins:
                self._origins[found] = {**self._origins.pop(lost), **self._origins.get(found, {})}
        horizon = timestamp - self.forget_after_s
        for track in [t for t, seen in self._origins.items() if max(seen.values()) < horizon]:
            del self._origins[track]
        events = []
        for passage, track in sorted(
            zip(passages, passers, strict=True), key=lambda pair: pair[0].timestamp
        ):
            origins = self._origins.setdefault(track, {})
            for movement in self.movements:
                if not _matches(passage, movement.to_line, movement.to_direction):
                    continue
                started = _latest(origins, movement.from_line, movement.from_direction)
                if started is None or not 0 <= passage.timestamp - started <= movement.within_s:
                    continue
                for key in [k for k in origins if k[0] == movement.from_line]:
                    del origins[key]  # used up: one movement per origin passage
                events.append(MovementEvent(movement.name, passage.category, passage.timestamp))
                self.movers.append(track)
            origins[(passage.line, passage.direction)] = passage.timestamp
        return events

    def reset(self) -> None:
        """Across a gap in the stream the old track ids mean nothing."""
        self._origins = {}
        self.movers = []

    @property
    def tracked(self) -> int:
        """Objects with a pending origin: bounded by those seen within ``forget_after_s``."""
        return len(self._origins)


def _matches(passage: CountEvent, line: str, direction: str | None) -> bool:
    return passage.line == line and direction in (None, passage.direction)


def _latest(
    origins: dict[tuple[str, str], float], line: str, direction: str | None
) -> float | None:
    times = [t for (name, d), t in origins.items() if name == line and direction in (None, d)]
    return max(times, default=None)
