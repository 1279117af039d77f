"""The motion gate on synthetic pictures, and the pipeline with it on a still recording."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.app import count
from edge.config import CameraConfig, load_settings
from edge.vision.motion import MotionConfig, MotionGate
from tests.conftest import EXAMPLE

W, H = 960, 540


def street(person_x: int | None = None, noise: int = 0, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A textured grey scene, plus codec-like noise, plus a 20x50 px 'walker' at person_x."""
    rng = np.random.default_rng(seed)
    image = np.full((H, W, 3), 90, np.uint8)
    image[::40] = 160  # kerb lines
    if noise:
        image = np.clip(image + rng.integers(-noise, noise + 1, image.shape), 0, 255).astype(
            np.uint8
        )
    if person_x is not None:
        image[300:350, person_x : person_x + 20] = (40, 30, 30)  # dark clothes
    return image


def test_a_still_scene_is_skipped_until_max_skip() -> None:
    gate = MotionGate(MotionConfig(max_skip_s=0.5))
    kept = [gate.changed(street(noise=6, seed=i), i / 25) for i in range(50)]  # 2 s at 25 fps
    assert kept[0] is True  # the first frame always goes to the detector
    assert kept.count(True) == 4  # then every 0.5 s: 0, 0.52, 1.04, 1.56 s
    assert not any(kept[1:13])


def test_a_small_walker_never_moves_far_between_detections() -> None:
    """A 20x50 px walker at 1-4 px a frame (about 1 m/s seen from afar, and faster): the frames
    skipped never let it move a third of its width between two detections, so consecutive
    boxes overlap with IoU >= 0.5, far above the tracker's 0.2."""
    for speed in (1, 2, 3, 4):
        gate = MotionGate(MotionConfig(max_skip_s=10))
        xs = [100 + speed * i for i in range(60)]
        kept = [x for i, x in enumerate(xs) if gate.changed(street(x), i / 25)]
        assert len(kept) > 5
        assert max(np.diff(kept)) < 20 / 3, (speed, kept)


def test_slow_movement_accumulates_against_the_last_detected_frame() -> None:
    gate = MotionGate(MotionConfig(max_skip_s=10))
    gate.changed(street(100), 0.0)
    kept = [gate.changed(street(100 + i // 3), (i + 1) / 25) for i in range(90)]
    assert 0 < kept.count(True) < 30  # creeping 1 px every 3 frames: seen, but not every frame


def test_disabled_gate_and_reset() -> None:
    assert MotionGate(MotionConfig(enabled=False)).changed(street(), 0.0)
    gate = MotionGate(MotionConfig(max_skip_s=10))
    assert gate.changed(street(), 0.0)
    assert not gate.changed(street(), 0.04)
    gate.reset()
    assert gate.changed(street(), 0.08)


def still_clip(path: Path, image: npt.NDArray[np.uint8], frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, image.shape[1::-1])
    for _ in range(frames):
        writer.write(image)
    writer.release()
    return path


def test_still_recording_gives_the_same_counts_with_far_fewer_inferences(
    tud_clip: Path, yolo11n: Path, tmp_path: Path
) -> None:
    """Three seconds of one TUD frame: the zone holds the same people whether or not the gate
    runs, and the detector runs every 0.5 s instead of every frame."""
    capture = cv2.VideoCapture(str(tud_clip))
    ok, image = capture.read()
    capture.release()
    assert ok
    clip = still_clip(tmp_path / "still.avi", np.asarray(image, np.uint8), 75)
    camera = CameraConfig.model_validate(
        {
            "id": "still",
            "location": "test",
            "source": str(clip),
            "lines": [{"name": "centre", "start": [320, 40], "end": [320, 440]}],
            "zones": [{"name": "all", "points": [[0, 0], [640, 0], [640, 480], [0, 480]]}],
        }
    )
    results = {}
    for enabled in (True, False):
        settings = load_settings(
            EXAMPLE,
            detector={"model": str(yolo11n)},
            motion={"enabled": enabled, "busy_fps": None},  # the gate alone, no schedule
        )
        results[enabled] = count(settings, camera, audit_log=tmp_path / "a.jsonl", progress=False)
    gated, every = results[True], results[False]
    assert gated.frames == every.frames == 75
    assert every.skipped == 0
    assert 75 - gated.skipped == 7  # 0 and 0.04 s (confirming the tracks), then every 0.5 s
    assert gated.zone_totals() == every.zone_totals()
    assert gated.zone_totals()["all"]["pedestrian"]["max"] >= 3  # groups of k = 3 or more
    assert gated.line_totals() == every.line_totals()
