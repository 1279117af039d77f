from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.errors import SourceError
from edge.vision.sources import ImageFolderSource, VideoFileSource, open_source


def test_clip_yields_every_frame_with_stream_timestamps(tud_clip: Path) -> None:
    source = open_source(str(tud_clip), "tud")
    frames = list(source)
    assert len(frames) == 71
    assert source.frame_size == (640, 480)
    assert [f.index for f in frames] == list(range(71))
    assert frames[25].timestamp == pytest.approx(1.0)
    assert all(f.camera_id == "tud" for f in frames)
    assert frames[0].image.shape == (480, 640, 3)


def test_target_fps_thins_evenly(tud_clip: Path) -> None:
    frames = list(VideoFileSource(tud_clip, "tud", target_fps=5))
    assert [f.index for f in frames] == list(range(0, 71, 5))
    assert np.diff([f.timestamp for f in frames]) == pytest.approx([0.2] * 14)


def test_target_fps_not_a_divisor_does_not_drift(tud_clip: Path) -> None:
    frames = list(VideoFileSource(tud_clip, "tud", target_fps=10))
    assert len(frames) == 29  # 2.84 s at 10 fps, one per 0.1 s slot
    assert max(np.diff([f.timestamp for f in frames])) == pytest.approx(0.12)


def test_missing_clip(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"missing\.mp4: clip not found"):
        open_source(str(tmp_path / "missing.mp4"), "c")


def test_undecodable_clip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(SourceError, match=r"bad\.mp4: not a decodable video"):
        open_source(str(bad), "c")


def test_image_folder(tmp_path: Path) -> None:
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"{i:06d}.png"), np.full((20, 30, 3), i, np.uint8))
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(str(tmp_path), "folder")
    assert isinstance(source, ImageFolderSource)
    frames = list(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 1, 2, 3]
    assert source.frame_size == (30, 20)


def test_empty_image_folder(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path), "c")


def test_live_urls_are_for_edge_run_and_credentials_never_shown() -> None:
    with pytest.raises(SourceError, match="a live stream; 'edge run' reads live cameras") as caught:
        open_source("rtsp://admin:s3cret@127.0.0.1:8554/cam", "c")
    assert "s3cret" not in str(caught.value)
    assert "rtsp://***@127.0.0.1:8554/cam" in str(caught.value)


def test_replay_keeps_order_and_stops_cleanly(tud_clip: Path) -> None:
    import threading

    from edge.vision.sources import Replay

    statuses: list[tuple[str, bool]] = []
    replay = Replay(open_source(str(tud_clip), "cam"), lambda c, up: statuses.append((c, up)))
    replay.start()
    assert [replay.take().index for _ in range(5)] == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    replay.close()  # stops the decoding thread before the capture is released
    assert not any(t.name == "decode-cam" for t in threading.enumerate())
    assert statuses == [("cam", True), ("cam", False)]
    whole = Replay(open_source(str(tud_clip), "cam"))
    whole.start()
    indices = []
    while (frame := whole.take()) is not None:
        indices.append(frame.index)
    assert indices == list(range(71))
    assert whole.finished
    assert whole.health.frames_received == 71
    whole.close()


def test_replay_raises_the_readers_error_in_order() -> None:
    from edge.vision.frames import Frame
    from edge.vision.sources import Replay

    class Broken:
        camera_id = "cam"
        fps = 25.0
        frame_size = (2, 2)
        expected_frames = None

        def __iter__(self) -> Iterator[Frame]:
            yield Frame("cam", 0, 0.0, np.zeros((2, 2, 3), np.uint8))
            raise SourceError("cam: stream broke")

        def close(self) -> None:
            pass

    replay = Replay(Broken())
    replay.start()
    assert replay.take().index == 0  # type: ignore[union-attr]
    with pytest.raises(SourceError, match="stream broke"):
        replay.take()
    assert replay.finished
    replay.close()
