"""A real RTSP camera for integration tests: GStreamer's RTSP server in its own process.

``start_rtsp_server({"cam": "testsrc", "clip": "/path/video.mp4"})`` runs ``rtsp_server.py``
under the system python3 (where GObject introspection and GstRtspServer live, not the venv) on
a free loopback port; ``rtsp_server`` is the fixture factory. The server can be killed and
restarted on the same port, or frozen with SIGSTOP (connections stay open, nothing is sent:
a stalled camera). Without GStreamer's RTSP server the fixture skips, or fails under CI.

PYTEST_DONT_REWRITE: no asserts here, and test modules import this before pytest could rewrite it.
"""

from __future__ import annotations

import collections
import functools
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.net import HOST, accepts, free_port, wait_serving

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).resolve().with_name("rtsp_server.py")
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
PACKAGES = (
    "gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav"
)
# Run by the system python3: GstRtspServer importable and the elements the pipelines use.
_PROBE = """\
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer
Gst.init(None)
names = ["videotestsrc", "x264enc", "rtph264pay", "decodebin", "appsrc", "appsink", "videoconvert"]
missing = [name for name in names if Gst.ElementFactory.find(name) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + " ".join(missing))
"""


@functools.cache
def _unavailable() -> str | None:
    """Why the system GStreamer RTSP server cannot run here, or None if it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    try:
        result = subprocess.run(
            [SYSTEM_PYTHON, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=30,
            env=_server_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{SYSTEM_PYTHON} failed: {error}"
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or ["no output"])[-1]
    return None


def require_rtsp_server() -> None:
    """Skip the test without the system GStreamer RTSP server (fail under CI)."""
    reason = _unavailable()
    if reason is None:
        return
    message = f"GStreamer RTSP server unavailable ({reason}): apt-get install {PACKAGES}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _server_env() -> dict[str, str]:
    """Our environment minus what would point the system python3 at the venv."""
    drop = {"PYTHONHOME", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {key: value for key, value in os.environ.items() if key not in drop}


@dataclass
class RtspServer:
    """An ``rtsp_server.py`` process with fixed port and mounts; restartable, freezable."""

    port: int
    mounts: dict[str, str]
    _process: subprocess.Popen[str] | None = field(default=None, init=False, repr=False)
    _ready: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _stderr: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=200), init=False, repr=False
    )

    def url(self, name: str) -> str:
        return f"rtsp://{HOST}:{self.port}/{name}"

    @property
    def running(self) -> bool:
        """The process is alive (a frozen one too)."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """(Re)start on the same port; wait until it printed "ready" and accepts TCP."""
        if self.running:
            return
        args = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self.port)]
        for name, spec in self.mounts.items():
            args += ["--mount", f"{name}={spec}"]
        self._ready = threading.Event()
        self._stderr.clear()
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_server_env(),
        )
        self._process = process
        threading.Thread(target=self._read_stdout, args=(process, self._ready), daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(process,), daemon=True).start()
        wait_serving(
            process,
            lambda: self._ready.is_set() and accepts(self.port),
            f"RTSP server on port {self.port}",
            self.stderr_tail,
            self.stop,
            START_TIMEOUT_S,
        )

    def kill(self) -> None:
        """SIGKILL (a camera losing power): connections drop at once."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
        if process is not None:
            process.wait()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open but nothing is sent (a stalled camera)."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``freeze()``."""
        if self._process is not None and self.running:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM (SIGCONT too, in case it is frozen), SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGCONT)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stderr_tail(self, n: int = 40) -> str:
        """The last ``n`` lines the server wrote to stderr."""
        return "\n".join(list(self._stderr)[-n:])

    @staticmethod
    def _read_stdout(process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "ready":
                ready.set()

    def _read_stderr(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self._stderr.append(line.rstrip("\n"))


def start_rtsp_server(mounts: dict[str, str], port: int | None = None) -> RtspServer:
    """Start a server with ``mounts`` (name -> ``testsrc`` or a video file) on ``port`` or a
    free one; skips (fails under CI) without GStreamer's RTSP server."""
    require_rtsp_server()
    for attempt in range(3):
        server = RtspServer(port=free_port() if port is None else port, mounts=dict(mounts))
        try:
            server.start()
        except RuntimeError as error:
            # A free port can be taken again before the server binds it: retry with a new one.
            if port is not None or attempt == 2 or "cannot listen" not in str(error):
                raise
        else:
            return server
    raise AssertionError("unreachable")


@pytest.fixture
def rtsp_server() -> Iterator[Callable[[dict[str, str]], RtspServer]]:
    """A factory ``(mounts) -> RtspServer``; every server it started is stopped afterwards."""
    servers: list[RtspServer] = []

    def start(mounts: dict[str, str]) -> RtspServer:
        server = start_rtsp_server(mounts)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
