"""Disclosure control (issue 15 items 1-4): what published figures may reveal, whatever an
operator puts in the config, the policy or the environment. Each attack is tried with several
values, since the rules must be general."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.analytics.aggregate import CountReport, ZoneOccupancy
from edge.analytics.detections import CATEGORIES, Category
from edge.analytics.geometry import segments_intersect
from edge.analytics.pipeline import CameraPipeline
from edge.config import PACKAGE_ROOT, CameraConfig, PolicyConfig, load_settings
from edge.errors import ConfigError, DisclosureRefused
from edge.legal.audit import AuditLog
from edge.legal.disclosure import cells_of, geometry_decisions, hidden_cells, overlap
from edge.legal.gate import EgressGate, startup_gate
from edge.legal.policy import FLOOR, WINDOW_CHAIN, Policy, load_policy
from edge.publish.sinks import CollectSink
from edge.schema import CATEGORY_NAMES, DIRECTIONS
from tests.conftest import EXAMPLE, make_detections
from tests.support.cli import edge

TODAY = dt.date(2026, 11, 22)
POLICY = load_policy(PACKAGE_ROOT / "policies" / "cnil-statistics.yaml")
STRICT = load_policy(PACKAGE_ROOT / "policies" / "cnil-statistics-strict.yaml")


def example(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data.update(changes)
    return data


def refusals(data: dict[str, Any], policy: Policy = POLICY) -> list[str]:
    settings_ = load_settings(None, **data)
    result = startup_gate(settings_, policy, settings_.cameras, None, TODAY)
    return [f"{d.rule}: {d.detail}" for d in result.refusals]


def policy_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = POLICY.model_dump(mode="json")
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


# -- item 4: a floor no policy can lower -------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"required_declaration": []},
        {"required_declaration": ["controller", "purpose"]},
        {"required_declaration": [f for f in FLOOR.declaration if f != "dpo_contact"]},
        {"valid_until": "9999-12-31"},
        {"valid_from": "2000-01-01"},
        {"retention": {"spool_days": 365}},
        {"retention": {"audit_days": 1}},
        {"min_window_seconds": 61},
        {"min_window_seconds": 90},
        {"min_window_seconds": 450},
        {"disclosure": {"zone_min_objects": 1}},
        {"disclosure": {"zone_min_objects": 2}},
        {"disclosure": {"max_lines": 500}},
        {"disclosure": {"max_zones": 40}},
        {"disclosure": {"min_line_length": 0.001}},
        {"disclosure": {"min_zone_area": 0.0001}},
        {"disclosure": {"min_separation": 0.0001}},
    ],
)
def test_a_policy_weaker_than_the_floor_does_not_load(
    tmp_path: Path, changes: dict[str, Any]
) -> None:
    path = tmp_path / "weak.yaml"
    path.write_text(yaml.safe_dump(policy_data(**changes)))
    with pytest.raises(ConfigError, match="weaker than the floor built into the code"):
        load_policy(path)


def test_a_stricter_policy_loads(tmp_path: Path) -> None:
    path = tmp_path / "stricter.yaml"
    stricter = policy_data(
        min_window_seconds=600,
        disclosure={"zone_min_objects": 10, "max_lines": 2, "min_separation": 0.2},
    )
    path.write_text(yaml.safe_dump(stricter))
    assert load_policy(path).windows == (600, 1800, 3600)


def test_the_config_pins_the_policy(tmp_path: Path) -> None:
    assert refusals(example()) == []
    unpinned = example()
    del unpinned["policy"]["sha256"]
    (refusal,) = refusals(unpinned)
    assert refusal.startswith("policy.pin: the configuration pins None")
    # Another shipped policy, or a custom file with the same name, is refused under the pin.
    custom = tmp_path / "custom.yaml"
    custom.write_text(yaml.safe_dump(policy_data(description="the same, reworded")))
    for other in (STRICT, load_policy(custom)):
        (refusal,) = [r for r in refusals(example(), policy=other) if r.startswith("policy.pin")]
        assert f"is {other.sha256}: a different policy is refused" in refusal


@pytest.mark.parametrize(
    "relative", ["policies/cnil-statistics.yaml", "policies/cnil-statistics-strict.yaml"]
)
def test_a_policies_folder_in_the_working_directory_is_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: str
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / relative).write_text("name: forged\n")
    monkeypatch.chdir(tmp_path)
    path = PolicyConfig(file=Path(relative)).path()
    assert path == PACKAGE_ROOT / relative
    assert load_policy(path).name != "forged"


def test_the_environment_cannot_swap_the_pinned_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = tmp_path / "lax.yaml"
    custom.write_text(yaml.safe_dump(policy_data(description="swapped in by the environment")))
    monkeypatch.setenv("EDGE_POLICY__FILE", str(custom))
    settings_ = load_settings(EXAMPLE)
    policy = load_policy(settings_.policy.path())
    result = startup_gate(settings_, policy, settings_.cameras, None, TODAY)
    assert [d.rule for d in result.refusals] == ["policy.pin"]


# -- item 1: windows from a nested chain, observed time checked at egress -----------------------


@pytest.mark.parametrize("seconds", [30, 59, 61, 90, 100, 240, 450, 1000, 7200])
def test_window_lengths_off_the_chain_are_refused(seconds: int) -> None:
    (refusal,) = refusals(example(window={"seconds": seconds}))
    assert refusal.startswith(f"window.seconds: {seconds} s windows; the policy allows")


@pytest.mark.parametrize("seconds", WINDOW_CHAIN)
def test_every_chain_length_is_allowed_above_the_minimum(seconds: int) -> None:
    assert refusals(example(window={"seconds": seconds})) == []
    strict = [r for r in refusals(example(window={"seconds": seconds}), STRICT) if "window" in r]
    assert bool(strict) == (seconds % STRICT.min_window_seconds != 0)


@given(a=st.sampled_from(POLICY.windows + STRICT.windows), b=st.sampled_from(WINDOW_CHAIN))
def test_two_allowed_windows_never_difference_below_the_minimum(a: int, b: int) -> None:
    """Any window boundary of one length is a multiple of the minimum from any of another's:
    the shortest interval two runs' windows can isolate is the policy's minimum."""
    for policy in (POLICY, STRICT):
        if a in policy.windows and b in policy.windows:
            step = math.gcd(a, b)
            assert step >= policy.min_window_seconds


def report(observed_s: float, seconds: float = 60.0, start: float = 1_800_000_000.0) -> CountReport:
    per = {c: 0 for c in CATEGORIES}
    return CountReport(
        camera_id="cam",
        start=start,
        end=start + seconds,
        lines={"door": {"in": {**per, Category.PEDESTRIAN: 4}, "out": dict(per)}},
        zones={},
        frames=int(observed_s * 5),
        observed_s=observed_s,
        partial=observed_s < seconds,
    )


def egress(tmp_path: Path, recorded: bool = False) -> tuple[EgressGate, CollectSink, Path]:
    path = tmp_path / "egress-audit.jsonl"
    sink = CollectSink()
    gate = EgressGate(POLICY, AuditLog(path), [sink], "https://example.org/n", recorded=recorded)
    return gate, sink, path


@pytest.mark.parametrize("observed", [0.2, 5.9, 6.2, 30.0, 45.5, 58.0])
def test_a_live_window_watched_less_than_the_minimum_is_withheld(
    tmp_path: Path, observed: float
) -> None:
    gate, sink, path = egress(tmp_path)
    assert gate.publish(report(observed), TODAY) is None
    assert sink.reports == [] and gate.withheld == 1
    (entry,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert entry["event"] == "window_withheld" and entry["observed_s"] == observed
    # Forged as a payload, it is dropped too.
    payload = egress(tmp_path / "b")[0].payload(report(observed))
    assert gate.admit(payload) is None


@pytest.mark.parametrize("observed", [59.0, 59.8, 60.0])
def test_a_live_window_watched_throughout_goes_out(tmp_path: Path, observed: float) -> None:
    gate, sink, _ = egress(tmp_path)
    assert gate.publish(report(observed), TODAY) is not None and len(sink.reports) == 1


def test_a_recording_shorter_than_a_window_still_counts(tmp_path: Path) -> None:
    gate, sink, _ = egress(tmp_path, recorded=True)
    assert gate.publish(report(2.8), TODAY) is not None and len(sink.reports) == 1


@pytest.mark.parametrize("seconds", [61.0, 90.0, 30.0])
def test_a_payload_with_a_window_off_the_chain_is_dropped(tmp_path: Path, seconds: float) -> None:
    gate, sink, _ = egress(tmp_path, recorded=True)  # watched throughout: only the length
    assert gate.publish(report(seconds, seconds=seconds), TODAY) is None
    assert sink.reports == [] and gate.dropped == 1


# -- item 2: zone figures never expose one object ----------------------------------------------


@pytest.mark.parametrize(("k", "present"), [(3, 1), (3, 2), (5, 4), (5, 1), (3, 3), (5, 6)])
def test_zone_samples_below_k_count_as_zero(k: int, present: int) -> None:
    """One car parked for minutes in a zone around its bay: no figure shows it."""
    camera = CameraConfig.model_validate(
        {"id": "bay", "source": "x.mp4",
         "zones": [{"name": "bay", "points": [[0, 0], [400, 0], [400, 300], [0, 300]]}]}
    )  # fmt: skip
    pipeline = CameraPipeline(camera, load_settings(None), zone_min_objects=k)
    boxes = [[10 + 60 * i, 100, 50 + 60 * i, 200] for i in range(present)]
    reports = []
    for i in range(2 * 60 * 2):  # two minutes at 2 fps, standing still
        reports += pipeline.process(i / 2, make_detections(boxes, cls=2))
    reports += pipeline.close()
    figures = [r.zones["bay"] for r in reports]
    assert figures and all(isinstance(f, ZoneOccupancy) for f in figures)
    expected = present if present >= k else 0
    assert {f.max[Category.VEHICLE] for f in figures} == {expected}
    assert {round(f.mean[Category.VEHICLE]) for f in figures} == {expected}


def test_the_pipeline_defaults_to_the_floor() -> None:
    camera = CameraConfig.model_validate({"id": "c", "source": "x.mp4"})
    assert CameraPipeline(camera, load_settings(None)).zone_min_objects == FLOOR.zone_min_objects


# -- item 3: no differencing, no maps ----------------------------------------------------------

FRAME = (1280, 720)


def camera_with(lines: list[tuple[Any, Any]] = (), zones: list[Any] = ()) -> CameraConfig:  # type: ignore[assignment]
    return CameraConfig.model_validate(
        {
            "id": "cam",
            "source": "x.mp4",
            "lines": [{"name": f"l{i}", "start": a, "end": b} for i, (a, b) in enumerate(lines)],
            "zones": [{"name": f"z{i}", "points": p} for i, p in enumerate(zones)],
        }
    )


def refused_geometry(camera: CameraConfig, policy: Policy = STRICT) -> list[str]:
    return [d.rule for d in geometry_decisions(camera, policy, FRAME) if not d.allowed]


@pytest.mark.parametrize(
    ("part", "offset"),
    [((0.0, 0.5), 0), ((0.25, 0.75), 0), ((0.5, 1.0), 3), ((0.1, 0.2), 6), ((0.0, 0.9), 1)],
)
def test_a_line_with_a_piece_of_it_is_refused(part: tuple[float, float], offset: int) -> None:
    """Whole minus part undoes small-count suppression: a segment (or a near-copy) of another
    line is refused, however it is cut and shifted by a few pixels."""
    a, b = np.array([200.0, 400.0]), np.array([1000.0, 400.0])
    p0, p1 = a + part[0] * (b - a), a + part[1] * (b - a)
    piece = ((p0[0], p0[1] + offset), (p1[0], p1[1] + offset))
    assert "camera[cam].geometry.lines" in refused_geometry(camera_with([(a, b), piece]))


@pytest.mark.parametrize("n", [20, 50, 300])
def test_a_grid_of_short_lines_is_refused(n: int) -> None:
    side = math.ceil(math.sqrt(n))
    corners = [(40 + 30 * (i % side), 40 + 30 * (i // side)) for i in range(n)]
    lines = [((x, y), (x + 12, y)) for x, y in corners]
    assert refused_geometry(camera_with(lines), POLICY) == ["camera[cam].geometry.count"]
    # Under the cap, short lines close together are refused all the same.
    few = refused_geometry(camera_with(lines[: POLICY.disclosure.max_lines]), POLICY)
    assert {"camera[cam].geometry.size", "camera[cam].geometry.lines"} <= set(few)


@pytest.mark.parametrize(
    "inner",
    [
        [[300, 200], [500, 200], [500, 400], [300, 400]],  # nested
        [[500, 300], [900, 300], [900, 600], [500, 600]],  # overlapping
        [[605, 200], [900, 200], [900, 500], [605, 500]],  # 5 px beside: near-coincident edge
    ],
)
def test_nested_overlapping_or_touching_zones_are_refused(inner: list[list[int]]) -> None:
    outer = [[200, 100], [600, 100], [600, 500], [200, 500]]
    assert "camera[cam].geometry.zones" in refused_geometry(camera_with(zones=[outer, inner]))


@pytest.mark.parametrize(
    "line",
    [((100, 300), (400, 300)), ((250, 50), (250, 600)), ((198, 120), (198, 480))],
)
def test_a_line_cutting_or_hugging_a_zone_edge_is_refused(line: tuple[Any, Any]) -> None:
    zone = [[200, 100], [600, 100], [600, 500], [200, 500]]
    assert "camera[cam].geometry.line_zone" in refused_geometry(camera_with([line], [zone]))


def test_a_sensible_junction_passes() -> None:
    camera = camera_with(
        [((100, 200), (100, 600)), ((1180, 200), (1180, 600)), ((400, 80), (900, 80))],
        [[[400, 300], [900, 300], [900, 600], [400, 600]]],
    )
    assert refused_geometry(camera, POLICY) == []


def test_geometry_is_checked_at_the_first_frame_and_audited(tmp_path: Path) -> None:
    """A camera's size is known only at its first frame: the run ends there, before anything
    of it is published, with the refusal in the audit log."""
    gate, sink, path = egress(tmp_path)
    tiny = camera_with([((10, 10), (30, 10))])
    assert not [d for d in geometry_decisions(tiny, POLICY, None) if not d.allowed]
    for size in ((640, 480), (1920, 1080)):
        with pytest.raises(DisclosureRefused, match="too short"):
            gate.check_frame(tiny, size)
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["geometry_refused"] * 2
    assert sink.reports == []


def _crossers(a: np.ndarray, b: np.ndarray, paths: np.ndarray) -> np.ndarray:
    return segments_intersect(paths[:, 0], paths[:, 1], a, b)


@st.composite
def line_sets(draw: st.DrawFn) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """Random lines, mixed with the attacker's constructions: pieces and near-copies of them."""
    w, h = FRAME
    coord = st.tuples(st.floats(0, w), st.floats(0, h))
    lines = [draw(st.tuples(coord, coord)) for _ in range(draw(st.integers(1, 4)))]
    for _ in range(draw(st.integers(0, 3))):
        a, b = (np.array(p) for p in draw(st.sampled_from(lines)))
        t0, t1 = sorted(draw(st.tuples(st.floats(0, 1), st.floats(0, 1))))
        shift = np.array(draw(st.tuples(st.floats(-30, 30), st.floats(-30, 30))))
        p0, p1 = a + t0 * (b - a) + shift, a + t1 * (b - a) + shift
        lines.append(((float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1]))))
    return [line for line in lines if line[0] != line[1]]


# -- item 3: derived counts under a suppressing policy -----------------------------------------


def walk(pipeline: CameraPipeline, xs: list[float]) -> CountReport:
    """Walkers side by side, straight down the frame at 5 fps; the window's report."""
    reports = []
    for step in range(40):
        y = 60 + 16 * step
        boxes = [[x - 20, y - 80, x + 20, y] for x in xs]
        reports += pipeline.process(step / 5, make_detections(boxes))
    reports += pipeline.close()
    (report,) = reports
    return report


@pytest.mark.parametrize(("through", "beside"), [(4, 1), (5, 2), (3, 1), (6, 3), (4, 0), (3, 5)])
def test_whole_minus_part_never_shows_one_or_two_people(
    tmp_path: Path, through: int, beside: int
) -> None:
    """A full-width line and, further down the pavement, a half-width one: the geometry is
    allowed (apart, not crossing), yet everyone who crosses the half also crosses the whole, so
    whole - half counts the few who walked on the other side. The cell goes dark instead."""
    camera = CameraConfig.model_validate(
        {"id": "cam", "source": "x.mp4",
         "lines": [{"name": "whole", "start": [1180, 300], "end": [100, 300]},
                   {"name": "half", "start": [600, 500], "end": [100, 500]}]}
    )  # fmt: skip
    assert refused_geometry(camera) == []
    xs = [130 + 75 * i for i in range(through)] + [700 + 80 * i for i in range(beside)]
    report = walk(CameraPipeline(camera, load_settings(None)), xs)
    assert report.lines["whole"]["in"][Category.PEDESTRIAN] == through + beside
    assert report.lines["half"]["in"][Category.PEDESTRIAN] == through
    gate = EgressGate(STRICT, AuditLog(tmp_path / "a.jsonl"), [], "https://e.org/n", recorded=True)
    shown = gate.payload(report)["lines"]
    whole, half = shown["whole"]["in"]["pedestrian"], shown["half"]["in"]["pedestrian"]
    k = STRICT.small_counts.k
    assert not (whole and half and 0 < whole - half < k)
    assert whole == (through + beside if through + beside >= k and not 0 < beside < k else 0)
    # Without the object-by-object overlap (a window from before a restart), more goes dark.
    blind = gate.payload(replace(report, overlap=None))["lines"]
    assert blind["whole"]["in"]["pedestrian"] <= whole


def _derivations(counts: list[int], members: list[np.ndarray], shown: set[int]) -> list[int]:
    """Every whole - sum(disjoint parts it contains) over shown cells, from the TRUE
    populations (per-object passages)."""
    out = []
    for whole in shown:
        inside = [
            p for p in shown
            if p != whole and np.all(members[p] <= members[whole]) and members[p].any()
        ]  # fmt: skip
        for size in range(1, min(len(inside), 4) + 1):
            for parts in itertools.combinations(inside, size):
                if all(
                    not np.any(np.minimum(members[a], members[b]))
                    for a, b in itertools.combinations(parts, 2)
                ):
                    out.append(counts[whole] - sum(counts[p] for p in parts))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=line_sets(),
    walkers=st.integers(1, 25),
    seed=st.integers(0, 2**16),
    k=st.integers(2, 6),
    restart=st.booleans(),
)
def test_no_derivable_count_falls_below_k(
    lines: list[tuple[tuple[float, float], tuple[float, float]]],
    walkers: int,
    seed: int,
    k: int,
    restart: bool,
) -> None:
    """Property: random geometry, random walkers on straight paths; after the egress rule,
    no published count minus disjoint published parts it contains is 1..k-1. With ``restart``
    the overlap is lost (a window resumed after a restart): still nothing below k."""
    rng = random.Random(seed)
    w, h = FRAME
    paths = np.array(
        [[[rng.uniform(0, w), rng.uniform(0, h)], [rng.uniform(0, w), rng.uniform(0, h)]]
         for _ in range(walkers)]
    )  # fmt: skip
    kinds = [rng.choice((0, 0, 0, 1, 2)) for _ in range(walkers)]  # mostly pedestrians
    names = [f"l{i}" for i in range(len(lines))]
    cells = cells_of(names)
    members = np.zeros((len(cells), walkers), np.int64)  # passages per cell per walker
    for li, (a, b) in enumerate(lines):
        crossed = _crossers(np.array(a), np.array(b), paths)
        cross = (b[0] - a[0]) * (paths[:, 0, 1] - a[1]) - (b[1] - a[1]) * (paths[:, 0, 0] - a[0])
        direction = np.where(cross > 0, 0, 1)
        for walker in np.flatnonzero(crossed):
            members[cells.index((names[li], DIRECTIONS[direction[walker]],
                                 CATEGORY_NAMES[kinds[walker]]))][walker] += 1  # fmt: skip
    counts = [int(n) for n in members.sum(axis=1)]
    shared = None if restart else overlap(
        [{c: int(members[c, o]) for c in np.flatnonzero(members[:, o])} for o in range(walkers)],
        len(cells),
    )  # fmt: skip
    hidden = hidden_cells(counts, shared, k)
    shown = {i for i in range(len(cells)) if counts[i] and i not in hidden}
    assert all(counts[i] >= k for i in shown)
    assert not [d for d in _derivations(counts, list(members), shown) if 0 < d < k]


# -- the command line: every decision listed, a refused geometry ends the run ------------------


def test_policy_check_lists_the_disclosure_decisions(yolo11n: Path, tud_clip: Path) -> None:
    result = edge("policy", "check", "-c", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = {line.split(":")[0].split()[-1] for line in result.stdout.splitlines() if ":" in line}
    assert {
        "policy.pin",
        "window.seconds",
        "declaration.recipients",
        "camera[tud-campus].geometry.count",
        "camera[tud-campus].geometry.size",  # the clip's size is read for the check
        "model.approved",
    } <= rules


@pytest.mark.parametrize(
    "lines",
    [
        [{"name": "stub", "start": [300, 200], "end": [310, 200]}],
        [{"name": "a", "start": [100, 200], "end": [600, 200]},
         {"name": "b", "start": [100, 203], "end": [400, 203]}],
    ],
)  # fmt: skip
def test_count_refuses_a_geometry_that_singles_people_out(
    tmp_path: Path, audit_in_tmp: Path, yolo11n: Path, tud_clip: Path, lines: list[Any]
) -> None:
    data = example()
    data["cameras"][0]["lines"] = lines
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    result = edge("count", "-c", str(config), "-q", "--json")
    assert result.returncode == 3, result.stderr
    assert "geometry" in result.stderr and "Traceback" not in result.stderr
    events = [json.loads(line)["event"] for line in audit_in_tmp.read_text().splitlines()]
    assert "geometry_refused" in events and events[-1] == "stop"
