"""Restarting ``edge run`` inside a window: the real runner on a stub live feed and detector.

A live camera's open window is persisted, never published as a partial report; the next run
continues it (one report, counts and observed time of both runs), or publishes it at start-up
when it is over, or withholds it when the policy changed. Several window lengths and restart
timings, clean stops and crashes alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import edge.runner as runner_module
from edge.analytics.aggregate import CountReport, WindowState
from edge.analytics.pipeline import CameraPipeline
from edge.config import CameraConfig, Settings, load_settings
from edge.legal.audit import AuditLog
from edge.legal.gate import EgressGate
from edge.legal.policy import load_policy
from edge.publish.sinks import CollectSink
from edge.publish.state import ReportLedger, WindowStore
from edge.runner import Runner
from edge.schema import PublishedReport
from edge.vision.frames import Frame
from tests.support.feeds import ScriptedFeed, WalkersDetector

FPS = 2.5
URL = "rtsp://cam.example:554/live"


class LiveFeed(ScriptedFeed):
    """Frames stamped on a fake wall clock from ``start`` to ``end``, every one changed (the
    motion gate lets each through); ``finished`` once they are out, like a stop."""

    live = True
    fps = FPS

    def __init__(self, start: float, end: float) -> None:
        self.first, self.last = start, end
        super().__init__("door")

    def frames(self) -> Iterator[Frame]:
        rng = np.random.default_rng(0)
        noise = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(2)]
        for i in range(int((self.last - self.first) * FPS)):
            yield Frame(self.camera_id, i, self.first + i / FPS, noise[i % 2])


def camera(camera_id: str = "door", source: str = URL) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": camera_id,
            "source": source,
            "lines": [{"name": "centre", "start": [320, 0], "end": [320, 480]}],
        }
    )


def settings(tmp_path: Path, window: int) -> Settings:
    """A stub detector answers in frame pixels whatever it is shown: no region crop."""
    return load_settings(
        None, model_dir=str(tmp_path), window={"seconds": window},
        detector={"region_margin": None},
    )  # fmt: skip


class Box:
    """What stays on the box between runs: the spool's SQLite file and the audit log."""

    def __init__(self, tmp_path: Path, window: int) -> None:
        self.tmp = tmp_path
        self.window = window
        self.db = tmp_path / "var" / "spool.sqlite"
        self.audit_path = tmp_path / "audit.jsonl"
        self.policy = load_policy(settings(tmp_path, window).policy.path())
        self.published: list[PublishedReport] = []

    def run(
        self,
        start: float,
        end: float,
        *,
        clock: float | None = None,
        camera_id: str = "door",
        policy_sha256: str | None = None,
        crash_after: int | None = None,
    ) -> Runner:
        """One ``edge run``: frames from ``start`` to ``end``, started at ``clock``."""
        sink = CollectSink()
        with AuditLog(self.audit_path) as audit:
            gate = EgressGate(self.policy, audit, [sink], "https://example.org/notice")
            store = WindowStore(self.db, policy_sha256 or self.policy.sha256, audit)
            ledger = ReportLedger(self.db, audit)
            runner = Runner(
                [(camera(camera_id), LiveFeed(start, end))],
                settings(self.tmp, self.window),
                WalkersDetector(),
                gate,
                store=store,
                ledger=ledger,
                clock=lambda: start if clock is None else clock,
            )
            if crash_after is not None:

                def crash() -> None:
                    if runner.results[0].frames == crash_after:
                        raise RuntimeError("kill -9")

                runner.on_frame = crash
            try:
                runner.run()
            except RuntimeError:
                pass
            finally:
                store.close()
                ledger.close()
        self.published += sink.reports
        return runner

    def saved(self) -> list[WindowState]:
        store = WindowStore(self.db, self.policy.sha256)
        try:
            return [state for _, _, state in store.load("door", "")]
        finally:
            store.close()

    def audit(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.audit_path.read_text().splitlines()]


def alone(tmp_path: Path, window: int, start: float, end: float) -> CountReport:
    """What the second run counts on its own in the window starting at ``start``'s window."""
    pipeline = CameraPipeline(camera(), settings(tmp_path, window), 3)
    detector, feed = WalkersDetector(), LiveFeed(start, end)
    reports = []
    while (frame := feed.take()) is not None:  # the runner's path: the detection schedule too
        if pipeline.needs_detection(frame):
            reports += pipeline.process(frame.timestamp, detector.detect([frame.image])[0])
        else:
            reports += pipeline.unchanged(frame.timestamp)
    return reports[0]


def passages(lines: dict[str, dict[str, dict[str, int]]]) -> int:
    return sum(n for per in lines["centre"].values() for n in per.values())


@pytest.mark.parametrize(
    ("window", "stop_at", "resume_at", "crash"),
    [(120, 40.0, 43.5, False), (120, 77.3, 79.0, True), (300, 150.0, 156.2, False),
     (300, 31.0, 32.1, True)],
)  # fmt: skip
def test_a_restart_inside_a_window_gives_one_report_with_both_runs_counts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    window: int,
    stop_at: float,
    resume_at: float,
    crash: bool,
) -> None:
    base = (1_700_000_000 // window + 1) * window
    box = Box(tmp_path, window)
    with monkeypatch.context() as patch:
        if crash:  # a checkpoint every frame: the test runs much faster than a second a window
            patch.setattr(runner_module, "CHECKPOINT_S", 0.0)
        box.run(base, base + stop_at + (1.0 if crash else 0.0),
                crash_after=int(stop_at * FPS) if crash else None)  # fmt: skip
    assert box.published == []  # nothing partial went out
    (first,) = box.saved()
    assert first.frames == int(stop_at * FPS)
    box.run(base + resume_at, base + window + 1.0)
    reports = [r for r in box.published if r.start == base]
    assert len(reports) == 1
    report, second = reports[0], alone(tmp_path, window, base + resume_at, base + window + 1.0)
    assert report.frames == first.frames + second.frames
    first_passages = int(np.sum(first.lines["centre"]))
    assert first_passages > 0
    assert passages(report.lines) == first_passages + sum(
        n for per in second.lines["centre"].values() for n in per.values()
    )
    assert report.observed_s == pytest.approx(first.observed + second.observed_s, abs=0.01)
    assert report.observed_s < window - (resume_at - stop_at) + 0.5  # the restart is not watched
    (after,) = box.saved()  # the next window, opened by the last frame, waits for the next run
    assert after.start == base + window


@pytest.mark.parametrize(("window", "watched", "late"), [(120, 100.0, 5.0), (300, 290.0, 61.0)])
def test_a_window_over_at_restart_is_published_at_start_up_once(
    tmp_path: Path, window: int, watched: float, late: float
) -> None:
    base = (1_700_000_000 // window + 1) * window
    box = Box(tmp_path, window)
    box.run(base, base + watched)
    assert box.published == []
    (state,) = box.saved()
    restart = base + window + late
    box.run(restart, restart + 2.0)  # the camera is back after the window's end
    (report,) = box.published
    assert (report.start, report.frames, report.partial) == (base, state.frames, True)
    assert passages(report.lines) == int(np.sum(state.lines["centre"]))
    assert box.saved()[0].start >= base + window  # the window is gone, the new one saved
    box.run(restart + 2.0, restart + 3.0)  # and a third run publishes nothing of it again
    assert [r.start for r in box.published] == [base]


@pytest.mark.parametrize("new_id", ["door", "door-renamed"])
def test_a_window_counted_under_another_policy_is_withheld_and_audited(
    tmp_path: Path, new_id: str
) -> None:
    window = 120
    base = (1_700_000_000 // window + 1) * window
    box = Box(tmp_path, window)
    box.run(base, base + 90.0, policy_sha256="0" * 64)
    box.run(base + 95.0, base + window + 1.0, camera_id=new_id)
    assert box.published == []  # 25 s watched under the policy in force: withheld too
    withheld = [e for e in box.audit() if e["event"] == "window_withheld"]
    assert withheld[0]["reason"] == "policy changed between runs"
    assert withheld[0]["observed_s"] == pytest.approx(90.0, abs=0.5)


def test_a_renamed_camera_on_the_same_stream_continues_its_window(tmp_path: Path) -> None:
    window = 120
    base = (1_700_000_000 // window + 1) * window
    box = Box(tmp_path, window)
    box.run(base, base + 50.0)
    box.run(base + 52.0, base + window + 1.0, camera_id="door-renamed")
    (report,) = [r for r in box.published if r.start == base]
    assert report.camera == "door-renamed"
    assert report.frames == int(50 * FPS) + int((window - 52) * FPS)  # both runs, one report


def test_a_clip_keeps_todays_behaviour(tmp_path: Path) -> None:
    """No store for recordings: the open window is closed at the end, nothing persisted."""
    window = 120
    box = Box(tmp_path, window)

    class Clip(LiveFeed):
        live = False

    sink = CollectSink()
    with AuditLog(box.audit_path) as audit:
        gate = EgressGate(box.policy, audit, [sink], "https://e.org/n", recorded=True)
        store = WindowStore(box.db, box.policy.sha256, audit)
        feed = Clip(0.0, 30.0)
        Runner([(camera(), feed)], settings(tmp_path, window), WalkersDetector(), gate,
               store=store).run()  # fmt: skip
        store.close()
    assert [r.partial for r in sink.reports] == [True]
    assert box.saved() == []
