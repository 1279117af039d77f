"""The one frame loop, on synthetic feeds and a stub detector: bounded state over a long run,
motion gate and figures alike for every kind of feed, stop and audit written once."""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FunctionType, ModuleType

import numpy as np

from edge.analytics.detections import Category
from edge.config import CameraConfig, load_settings
from edge.legal.audit import AuditLog
from edge.legal.gate import EgressGate
from edge.legal.policy import load_policy
from edge.runner import Runner
from edge.vision.frames import Frame
from tests.support.feeds import ScriptedFeed, WalkersDetector

FPS = 25.0


class SyntheticFeed(ScriptedFeed):
    """``frames`` frames at 25 fps on tiny pictures: with ``busy`` of every 1000 frames
    changing (the motion gate lets them through), the others still (it keeps them from the
    detector but every ``max_skip_s``); a gap every ``gap_every`` frames."""

    fps = FPS

    def __init__(self, frames: int, busy: int = 1000, gap_every: int = 0) -> None:
        self.count, self.busy, self.gap_every = frames, busy, gap_every
        super().__init__("synthetic")

    def frames(self) -> Iterator[Frame]:
        rng = np.random.default_rng(0)
        noise = [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(2)]
        for i in range(self.count):
            if self.gap_every and i and i % self.gap_every == 0:
                self.health.reconnects += 1
            self.health.frames_received += 1
            image = noise[i % 2] if i % 1000 < self.busy else noise[0]
            yield Frame(self.camera_id, i, i / FPS, image)


def reachable_size(root: object) -> int:
    """Items in every container and bytes in every array reachable from ``root``: a figure
    that grows with any per-frame list, per-track dict or cache that is never trimmed."""
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, (type, ModuleType, FunctionType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif isinstance(obj, (list, dict, set, tuple, frozenset)):
            total += len(obj)
        stack.extend(gc.get_referents(obj))
    return total


def make_runner(tmp_path: Path, feed: SyntheticFeed, detector: WalkersDetector) -> Runner:
    # A stub detector answers in frame pixels whatever it is shown: no region crop.
    settings = load_settings(None, model_dir=str(tmp_path), detector={"region_margin": None})
    camera = CameraConfig.model_validate(
        {
            "id": "synthetic",
            "source": "synthetic.mp4",
            "lines": [{"name": "centre", "start": [320, 0], "end": [320, 480]}],
            "zones": [{"name": "left", "points": [[0, 0], [200, 0], [200, 480], [0, 480]]}],
        }
    )
    audit = AuditLog(tmp_path / "audit.jsonl")
    gate = EgressGate(load_policy(settings.policy.path()), audit, [], "https://example.org/n")
    return Runner([(camera, feed)], settings, detector, gate)


def test_state_stays_bounded_over_a_few_hundred_thousand_frames(tmp_path: Path) -> None:
    """Regression: every frame appended to per-stage timing lists that were never trimmed, and
    the figures took a percentile over all of them (RSS +20 MB/h, CPU per frame rising)."""
    frames, checkpoints = 200_000, (20_000, 200_000)
    detector = WalkersDetector()
    feed = SyntheticFeed(frames, busy=150, gap_every=60_000)
    runner = make_runner(tmp_path, feed, detector)
    sizes = {}

    def probe() -> None:
        done = runner.results[0].frames
        if done in checkpoints:
            runner.stats()  # health figures from bounded state
            sizes[done] = reachable_size(runner)

    runner.on_frame = probe
    (result,) = runner.run()
    assert result.frames == frames
    # Every full window published; the last, partial one (20 s observed) is withheld or not.
    assert result.reports_published >= frames / FPS // 60
    assert result.reports_published + result.reports_dropped == frames / FPS // 60 + 1
    assert sizes[200_000] <= sizes[20_000] * 1.05, sizes
    assert result.skipped > frames / 2  # both paths, detected and unchanged, taken many times
    # Over a thousand walkers went by: each one's state was forgotten with its track.
    assert detector.frame // detector.every > 1_000
    print(f"reachable state: {sizes}", file=sys.stderr)


def test_motion_gate_and_figures_are_those_of_every_feed(tmp_path: Path) -> None:
    """A still picture skips the detector except every ``max_skip_s``; the skip count is in the
    result of the run, never in the periodic stats, which read the same state."""
    feed = SyntheticFeed(250, busy=0)
    runner = make_runner(tmp_path, feed, WalkersDetector())
    (result,) = runner.run()
    assert result.frames == 250
    assert 200 <= result.skipped <= 240  # 10 s at 25 fps, detected about every 0.5 s
    stats = runner.stats()["synthetic"]
    assert stats.frames_processed == 250
    # The skip count follows motion in the scene: never in the periodic stats (edge.schema).
    assert not {k for k in stats.model_dump() if "skip" in k or "detected" in k}
    assert result.times["detect"].count == 250 - result.skipped
    assert sum(result.detections.values()) > 0
    assert result.classes["person"] == result.detections[Category.PEDESTRIAN]
