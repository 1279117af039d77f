"""The commissioning page's server: one camera, one installer, on the box itself.

``SetupSession`` holds what the page shows: the background picture (made once, in memory), the
live detections of a thread that runs the detector and tracker on the camera (boxes and short
anchor trails, no pixels, no track id), and the draft lines and zones, counted as they would be
so that passages flash on the page. ``save`` writes the draft into the configuration file only
once the configuration validates and the legal gate, disclosure rules included, accepts it.

``serve`` answers on ``host:port`` (loopback unless told otherwise); every ``/api`` route needs
the one-time token the command prints, which the page reads from its URL fragment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from edge.analytics.counting import LineCounter
from edge.analytics.detections import CATEGORIES
from edge.analytics.geometry import anchor_points
from edge.analytics.track import ByteTracker
from edge.commissioning.background import frames_of, median_background, png, sampled
from edge.commissioning.config_edit import replace_geometry
from edge.config import CameraConfig, LineConfig, Settings, ZoneConfig, load_settings
from edge.detect.protocol import Detector
from edge.errors import ConfigError, EdgeError, PolicyViolation, validation_lines
from edge.legal.audit import AuditLog, JsonValue
from edge.legal.gate import startup_gate
from edge.legal.policy import Policy
from edge.vision.frames import FrameFeed
from edge.vision.sources import open_feed

log = logging.getLogger(__name__)
STATIC = files("edge.commissioning") / "static"
TRAIL_POINTS = 12  # anchors kept per object: about a second at the page's rate
FLASH_S = 1.5  # how long a passage stays on the page
LIVE_FPS = 8.0  # detections per second for the page: enough to see, cheap on a box
MAX_BODY = 64 * 1024


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SetupSession:
    """One camera's commissioning: background, live detections, the draft, saving."""

    def __init__(
        self,
        config: Path,
        settings: Settings,
        index: int,
        policy: Policy,
        detector: Detector,
        audit: AuditLog,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.config, self.settings, self.index = config, settings, index
        self.camera = settings.cameras[index]
        self.policy, self.detector, self.audit, self.today = policy, detector, audit, today
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._boxes: list[list[float]] = []
        self._trails: dict[int, deque[tuple[float, float]]] = {}
        self._passages: deque[tuple[float, str, str]] = deque(maxlen=64)
        self._counters = self._line_counters(self.camera)
        self.errors: list[str] = []  # the live thread's latest failure, for the page
        feed = self._open()
        try:
            feed.start()
            first = next(iter(sampled(feed, timeout_s=10.0)), None)
            if first is None:
                raise EdgeError(f"cameras[{index}].source: no frame came from the camera")
            self.frame_size = first.size
            self.background = png(median_background(sampled(feed), self.frame_size))
        finally:
            feed.close()
        self._thread = threading.Thread(target=self._live, name="setup-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    # -- the page's figures ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What the page draws: frame size, draft, boxes, trails (no ids), recent passages."""
        now = time.monotonic()
        with self._lock:
            trails = sorted([list(map(list, t)) for t in self._trails.values() if len(t) > 1])
            return {
                "frame": list(self.frame_size),
                "camera": self.camera.id,
                "lines": [_line_json(line) for line in self.camera.lines],
                "zones": [_zone_json(z) for z in self.camera.zones],
                "boxes": list(self._boxes),
                "trails": trails,
                "passages": [
                    {"line": line, "direction": d, "age_s": round(now - t, 2)}
                    for t, line, d in self._passages
                    if now - t < FLASH_S
                ],
                "errors": self.errors,
            }

    def set_draft(self, payload: Any) -> list[str]:
        """The page's lines and zones, counted from now on; the problems, one a line."""
        try:
            camera = self._camera_with(payload)
        except ConfigError as err:
            return err.lines
        self._use(camera)
        return []

    def _use(self, camera: CameraConfig) -> None:
        """Count on ``camera``'s lines from now on."""
        with self._lock:
            self.camera, self._counters = camera, self._line_counters(camera)

    def save(self, payload: Any) -> list[str]:
        """Write the draft into the configuration file if the configuration validates and the
        legal gate accepts it; the refusals otherwise (nothing written)."""
        try:
            camera = self._camera_with(payload)
        except ConfigError as err:
            return err.lines
        before = file_sha256(self.config)
        text = replace_geometry(
            self.config.read_text(encoding="utf-8"),
            self.index,
            {
                "lines": [_line_json(line, full=True) for line in camera.lines],
                "zones": [_zone_json(z, full=True) for z in camera.zones],
            },
        )
        handle, name = tempfile.mkstemp(prefix=".edge-setup-", dir=self.config.parent)
        candidate = Path(name)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            problems = self._refusals(candidate)
            if problems:
                refused: list[JsonValue] = list(problems)
                self.audit.append("setup_save_refused", camera=camera.id, refusals=refused)
                return problems
            candidate.replace(self.config)
        finally:
            candidate.unlink(missing_ok=True)
        after = file_sha256(self.config)
        self.audit.append(
            "setup_saved", camera=camera.id, config_sha256_before=before, config_sha256_after=after
        )
        self._use(camera)
        return []

    def _refusals(self, candidate: Path) -> list[str]:
        try:
            settings = load_settings(candidate)
        except (ConfigError, PolicyViolation) as err:
            return [line.replace(str(candidate), str(self.config)) for line in err.lines]
        camera = settings.cameras[self.index]
        result = startup_gate(
            settings, self.policy, [camera], self.detector.info, self.today(),
            frame_sizes={camera.id: self.frame_size},
        )  # fmt: skip
        refused = [f"{d.rule}: {d.detail}" for d in result.refusals]
        try:
            camera.check_fits(self.frame_size, f"cameras[{self.index}]")
        except ConfigError as err:
            refused += err.lines
        return refused

    def _camera_with(self, payload: Any) -> CameraConfig:
        """The camera with the page's lines and zones; each keeps the settings (anchor,
        hysteresis) of the configured line or zone of the same name."""
        if not isinstance(payload, dict):
            raise ConfigError(["the page sent no lines and zones"])
        configured = self.settings.cameras[self.index]
        fields = self.camera.model_dump(by_alias=True)
        known: tuple[tuple[str, Sequence[LineConfig | ZoneConfig]], ...] = (
            ("lines", configured.lines),
            ("zones", configured.zones),
        )
        for key, items in known:
            by_name: dict[Any, dict[str, Any]] = {item.name: item.model_dump() for item in items}
            fields[key] = [
                {**by_name.get(item.get("name"), {}), **item} if isinstance(item, dict) else item
                for item in payload.get(key, [])
            ]
        try:
            return CameraConfig.model_validate(fields)
        except ValidationError as err:
            raise ConfigError(validation_lines(err, prefix=f"cameras[{self.index}].")) from err

    # -- live detections ------------------------------------------------------------------------

    def _open(self) -> FrameFeed:
        camera = self.camera
        return open_feed(
            camera.source, camera.id, target_fps=LIVE_FPS, transport=camera.transport,
            stall_s=camera.stall_seconds,
        )  # fmt: skip

    def _line_counters(self, camera: CameraConfig) -> list[LineCounter]:
        tracker = self.settings.tracker
        lost, gate = tracker.lost_seconds, tracker.stitch_gate
        return [LineCounter(line, lost, gate) for line in camera.lines]

    def _live(self) -> None:
        """Detect and track until stopped; a recording plays in a loop. Errors are logged and the
        feed reopened: the page says what the camera does, it never stops the session."""
        while not self._stop.is_set():
            feed = self._open()
            tracker = ByteTracker(self.settings.tracker)
            started: tuple[float, float] | None = None  # (wall, stream) time of the first frame
            try:
                feed.start()
                for frame in frames_of(feed, self._stop.is_set):
                    if not feed.live:  # a recording plays at its own pace, not the CPU's
                        started = started or (time.monotonic(), frame.timestamp)
                        ahead = (frame.timestamp - started[1]) - (time.monotonic() - started[0])
                        self._stop.wait(max(ahead, 0.0))
                    (detections,) = self.detector.detect([frame.image])
                    self._update(tracker.update(detections, frame.timestamp), frame.timestamp)
            except Exception as err:  # the page shows it; the thread goes on
                log.warning("setup: live detections stopped: %s", err)
                with self._lock:
                    self.errors = [f"live detections: {err}"]
                self._stop.wait(1.0)
            finally:
                feed.close()
            with self._lock:
                self._trails.clear()
                self._counters = self._line_counters(self.camera)

    def _update(self, tracks: Any, timestamp: float) -> None:
        anchors = anchor_points(tracks.xyxy, "bottom_center")
        now = time.monotonic()
        with self._lock:
            self._boxes = [
                [*np.round(box.astype(np.float64), 1).tolist(), CATEGORIES[c].value]
                for box, c in zip(tracks.xyxy, tracks.category_index.tolist(), strict=True)
            ]
            seen = set(tracks.track_id.tolist())
            for track_id in [t for t in self._trails if t not in seen]:
                del self._trails[track_id]
            for track_id, point in zip(tracks.track_id.tolist(), anchors.tolist(), strict=True):
                trail = self._trails.setdefault(track_id, deque(maxlen=TRAIL_POINTS))
                trail.append((round(point[0], 1), round(point[1], 1)))
            for counter in self._counters:
                for event in counter.update(tracks, timestamp):
                    self._passages.append((now, event.line, event.direction))


def _line_json(line: Any, full: bool = False) -> dict[str, Any]:
    """A line as the page and the file have it: name and ends, plus, in the file, the
    settings that differ from the defaults."""
    out = {"name": line.name, "start": _point(line.start), "end": _point(line.end)}
    if full:
        out.update(line.model_dump(exclude_defaults=True, exclude={"name", "start", "end"}))
    return out


def _zone_json(zone: Any, full: bool = False) -> dict[str, Any]:
    out = {"name": zone.name, "points": [_point(p) for p in zone.points]}
    if full:
        out.update(zone.model_dump(exclude_defaults=True, exclude={"name", "points"}))
    return out


def _point(point: Any) -> list[float | int]:
    """Whole pixels as integers, as people write them."""
    return [int(v) if float(v).is_integer() else float(v) for v in point]


def serve(session: SetupSession, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Answer the page until interrupted; ``ready`` gets the URL with the token, once."""
    token = secrets.token_urlsafe(24)
    try:
        server = ThreadingHTTPServer((host, port), _handler(session, token))
    except OSError as err:
        raise ConfigError(
            [f"--host/--port: cannot listen on {host}:{port} ({err.strerror})"]
        ) from err
    server.daemon_threads = True
    shown_host = f"[{host}]" if ":" in host else host
    session.start()
    try:
        ready(f"http://{shown_host}:{server.server_address[1]}/#token={token}")
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        session.stop()


def _handler(session: SetupSession, token: str) -> type[BaseHTTPRequestHandler]:
    pages = {
        "/": ("setup.html", "text/html; charset=utf-8"),
        "/setup.js": ("setup.js", "text/javascript; charset=utf-8"),
        "/setup.css": ("setup.css", "text/css; charset=utf-8"),
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "edge-setup"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("setup: " + format, *args)

        def _send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'",
            )
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, doc: Any) -> None:
            self._send(status, json.dumps(doc).encode(), "application/json")

        def _authorised(self) -> bool:
            given = self.headers.get("Authorization", "")
            if secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return True
            self._json(HTTPStatus.UNAUTHORIZED, {"detail": "the page's token is missing or wrong"})
            return False

        def do_GET(self) -> None:
            if self.path in pages:
                name, kind = pages[self.path]
                self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), kind)
            elif not self.path.startswith("/api/"):
                self._json(HTTPStatus.NOT_FOUND, {"detail": "not found"})
            elif not self._authorised():
                return
            elif self.path == "/api/background.png":
                self._send(HTTPStatus.OK, session.background, "image/png")
            elif self.path == "/api/state":
                self._json(HTTPStatus.OK, session.state())
            else:
                self._json(HTTPStatus.NOT_FOUND, {"detail": "not found"})

        def do_POST(self) -> None:
            if not self._authorised():
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"detail": "body too large"})
                return
            try:
                payload = json.loads(self.rfile.read(length))
            except ValueError:
                self._json(HTTPStatus.BAD_REQUEST, {"detail": "not JSON"})
                return
            if self.path == "/api/draft":
                problems = session.set_draft(payload)
            elif self.path == "/api/save":
                problems = session.save(payload)
            else:
                self._json(HTTPStatus.NOT_FOUND, {"detail": "not found"})
                return
            status = HTTPStatus.UNPROCESSABLE_ENTITY if problems else HTTPStatus.OK
            self._json(status, {"ok": not problems, "problems": problems})

    return Handler
