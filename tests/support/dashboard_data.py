"""Published reports to feed the dashboard with, as the egress gate would let them out.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from typing import Any

from edge.schema import CATEGORY_NAMES, DIRECTIONS, PublishedReport, iso, parse_report, report_id

POLICY_SHA = "5" * 64


def make_report(
    camera: str,
    start: int,
    *,
    seconds: int = 60,
    line: str = "door",
    counts: dict[str, dict[str, int]] | None = None,
    zone: str | None = None,
    partial: bool = False,
    observed_s: float | None = None,
    movements: dict[str, tuple[str, str, dict[str, int]]] | None = None,
) -> PublishedReport:
    """One window's report; ``counts`` e.g. ``{"in": {"pedestrian": 2}}``, the rest zero;
    ``movements`` (name -> (origin, destination, counts)) make it version 2, its lines added."""
    given = counts or {}
    lines = {line: {d: {c: given.get(d, {}).get(c, 0) for c in CATEGORY_NAMES} for d in DIRECTIONS}}
    zero = {d: dict.fromkeys(CATEGORY_NAMES, 0) for d in DIRECTIONS}
    for origin, destination, _ in (movements or {}).values():
        lines.setdefault(origin, zero)
        lines.setdefault(destination, zero)
    zones: dict[str, Any] = {}
    if zone is not None:
        zones[zone] = {
            "pedestrian": {"mean": 1.5, "max": 3},
            "bike": {"mean": 0.0, "max": 0},
            "vehicle": {"mean": 0.25, "max": 1},
        }
    extra: dict[str, Any] = {}
    if movements:
        extra["movements"] = {
            name: {
                "origin": o,
                "destination": d,
                "counts": {c: n.get(c, 0) for c in CATEGORY_NAMES},
            }
            for name, (o, d, n) in movements.items()
        }
    return parse_report(
        {
            "schema_version": 2 if movements else 1,
            "report_id": report_id(camera, float(start), POLICY_SHA),
            "camera": camera,
            "start": float(start),
            "end": float(start + seconds),
            "window_start": iso(start),
            "window_end": iso(start + seconds),
            "frames": 25 * seconds,
            "observed_s": float(seconds if observed_s is None else observed_s),
            "partial": partial,
            "lines": lines,
            "zones": zones,
            "policy_sha256": POLICY_SHA,
            "notice_url": "https://example.org/notice",
            **extra,
        }
    )
