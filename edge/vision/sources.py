"""Frame sources for recorded material: video files and image folders.

Recorded sources yield every frame (or a thinned subset for ``target_fps``) with stream
timestamps (plus an optional origin), so a replay gives the same windows and counts every time.
Live streams arrive in their own module with the same ``FrameSource`` interface.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.errors import SourceError
from edge.vision.frames import FeedHealth, Frame, FrameFeed, FrameSource, Thinning
from edge.vision.live import LiveSource, Transport, is_live, redact

logger = logging.getLogger(__name__)

SHORT_TOLERANCE = 3  # frames a container's frame count may overstate without a warning
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def _decode(capture: cv2.VideoCapture) -> npt.NDArray[np.uint8] | None:
    ok, image = capture.read()
    return np.asarray(image, dtype=np.uint8) if ok and image is not None else None


class VideoFileSource:
    """A recorded clip decoded by OpenCV's FFmpeg backend; timestamp = index / fps."""

    def __init__(
        self, path: Path, camera_id: str, target_fps: float | None = None, origin: float = 0.0
    ) -> None:
        if not path.is_file():
            raise SourceError(f"{path}: clip not found")
        self.path = path
        self.camera_id = camera_id
        self.target_fps = target_fps
        self.origin = origin
        self._capture = cv2.VideoCapture(str(path))
        first = _decode(self._capture) if self._capture.isOpened() else None
        if first is None:
            self._capture.release()
            raise SourceError(f"{path}: not a decodable video (OpenCV could not read a frame)")
        self._first: npt.NDArray[np.uint8] | None = first
        self._size = (int(first.shape[1]), int(first.shape[0]))
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if math.isfinite(fps) and 0 < fps <= 1000 else 25.0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._count = count if count > 0 else None
        self.frames_missing = 0  # frames the header promised and the decoder never gave

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    @property
    def expected_frames(self) -> int | None:
        if self._count is None or not self.target_fps or self.target_fps >= self.fps:
            return self._count
        return math.ceil(self._count * self.target_fps / self.fps)

    def __iter__(self) -> Iterator[Frame]:
        thinning = Thinning(self.target_fps)
        decoded, self._first = self._first, None  # frame 0 was decoded to check the file
        index = 0
        while True:
            keep = thinning.keep(index / self.fps)
            if decoded is None and not keep:
                if not self._capture.grab():  # skips the colour conversion of dropped frames
                    self._ended(index)
                    return
            else:
                image = decoded if decoded is not None else _decode(self._capture)
                if image is None:
                    self._ended(index)
                    return
                yield Frame(self.camera_id, index, self.origin + index / self.fps, image)
            decoded = None
            index += 1

    def _ended(self, frames: int) -> None:
        """A clip whose decoding stops well before its header's frame count is damaged: say so
        (a warning, and ``frames_missing`` for the result) rather than end as if complete. The
        count is the container's estimate, so a few frames short is normal."""
        if self._count is None:
            return
        missing = self._count - frames
        if missing > max(SHORT_TOLERANCE, self._count // 50):
            self.frames_missing = missing
            logger.warning(
                "%s: decoding stopped after %d of the %d frames the file announces (damaged?); "
                "the counts cover the frames read",
                self.path, frames, self._count,
            )  # fmt: skip

    def close(self) -> None:
        self._capture.release()


class ImageFolderSource:
    """A folder of still images in name order (e.g. MOTChallenge ``img1/``), at ``fps``."""

    def __init__(
        self,
        path: Path,
        camera_id: str,
        fps: float = 25.0,
        target_fps: float | None = None,
        origin: float = 0.0,
    ) -> None:
        self.paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.paths:
            raise SourceError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder")
        self.camera_id = camera_id
        self.fps = fps
        self.target_fps = target_fps
        self.origin = origin
        first = self._read(self.paths[0])
        self._size = (int(first.shape[1]), int(first.shape[0]))

    @staticmethod
    def _read(path: Path) -> npt.NDArray[np.uint8]:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{path}: not a decodable image")
        return np.asarray(image, dtype=np.uint8)

    @property
    def frame_size(self) -> tuple[int, int]:
        return self._size

    @property
    def expected_frames(self) -> int | None:
        if not self.target_fps or self.target_fps >= self.fps:
            return len(self.paths)
        return math.ceil(len(self.paths) * self.target_fps / self.fps)

    def __iter__(self) -> Iterator[Frame]:
        thinning = Thinning(self.target_fps)
        for index, path in enumerate(self.paths):
            if thinning.keep(index / self.fps):
                yield Frame(self.camera_id, index, self.origin + index / self.fps, self._read(path))

    def close(self) -> None:
        pass


class Replay:
    """A recording as a ``FrameFeed``: every frame, in order, decoded up to ``depth`` ahead on
    a thread of its own.

    FFmpeg releases the GIL while it decodes, so decoding the next frame overlaps inference on
    this one instead of adding to it. ``take`` blocks until the next frame (a recording never
    stalls) and returns None once the recording has ended; an error in the thread is raised by
    ``take``, in order. ``close`` stops and joins the thread before the capture goes.
    """

    live = False

    def __init__(
        self,
        source: FrameSource,
        on_status: Callable[[str, bool], None] | None = None,
        depth: int = 2,
    ) -> None:
        self.source = source
        self.camera_id = source.camera_id
        self.fps = source.fps
        self.on_status = on_status
        self.health = FeedHealth()
        self.finished = False
        self._slots: queue.Queue[Frame | BaseException | None] = queue.Queue(depth)
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read, name=f"decode-{self.camera_id}")

    @property
    def frame_size(self) -> tuple[int, int]:
        return self.source.frame_size

    @property
    def expected_frames(self) -> int | None:
        return self.source.expected_frames

    @property
    def frames_missing(self) -> int:
        """Frames a damaged clip never gave (0 for a complete one), known once it ended."""
        return self.source.frames_missing if isinstance(self.source, VideoFileSource) else 0

    def start(self) -> None:
        self._reader.start()
        self.health.online = True
        if self.on_status is not None:
            self.on_status(self.camera_id, True)

    def _offer(self, item: Frame | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for frame in self.source:
                if not self._offer(frame):
                    return
            self._offer(None)
        except BaseException as err:  # handed over and raised by take()
            self._offer(err)

    def take(self) -> Frame | None:
        if self.finished:
            return None
        item = self._slots.get()
        if isinstance(item, BaseException):
            self.finished = True
            raise item
        if item is None:
            self.finished = True
        else:
            self.health.frames_received += 1
        return item

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._reader.is_alive():
            self._reader.join()
        self.source.close()
        self.health.online = False
        if self.on_status is not None:
            self.on_status(self.camera_id, False)


def open_source(
    source: str, camera_id: str, target_fps: float | None = None, origin: float = 0.0
) -> FrameSource:
    """The right source for a path or URL; errors name the source and what was expected.

    ``origin``: the timestamp of a recording's first frame (0 = stream time; ``edge run`` passes
    the wall-clock start so windows fall on real minutes).
    """
    if is_live(source):
        raise SourceError(
            f"{redact(source)}: a live stream; 'edge run' reads live cameras, this reads recordings"
        )
    path = Path(source)
    if path.is_dir():
        return ImageFolderSource(path, camera_id, target_fps=target_fps, origin=origin)
    return VideoFileSource(path, camera_id, target_fps, origin)


def open_feed(
    source: str,
    camera_id: str,
    *,
    target_fps: float | None = None,
    transport: Transport = "tcp",
    stall_s: float = 5.0,
    origin: float = 0.0,
    on_status: Callable[[str, bool], None] | None = None,
) -> FrameFeed:
    """What the runner reads for one camera: a live stream (``LiveSource``) or a recording
    replayed from ``origin`` (``Replay``); ``on_status`` hears it go online and offline."""
    if is_live(source):
        return LiveSource(
            source, camera_id, target_fps=target_fps, transport=transport, stall_s=stall_s,
            on_status=on_status,
        )  # fmt: skip
    return Replay(open_source(source, camera_id, target_fps, origin), on_status)
