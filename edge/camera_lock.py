"""One running process per camera on a box.

``edge run`` takes, for each live camera, two Linux abstract Unix sockets before anything is
published: ``\\0edge-camera-<sha256 of the camera id>`` and ``\\0edge-camera-<sha256 of the
normalised stream URL>`` (credentials, default port, case of scheme and host and a trailing
slash do not make another stream: a renamed camera on the same stream is the same camera).
Binding an abstract name is atomic and box-wide (per network namespace); the kernel frees the
name when the process dies, ``kill -9`` included, and there is no file on disk that another
user could delete, replace or point elsewhere. A second process is refused with the camera's
name and the holder's PID, read from the socket's peer credentials (``SO_PEERCRED``).
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from edge.errors import EdgeError
from edge.vision.live import redact

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "http": 80, "https": 443, "rtmp": 1935}
PREFIX = "edge-camera-"


class CameraBusy(EdgeError):
    """Another process already runs this camera."""


def normalised_source(source: str) -> str:
    """The stream a source names, the same for every spelling of it: no credentials, default
    port dropped, scheme and host lower case, no trailing slash; a device or file path
    resolved."""
    parts = urlsplit(source.strip())
    if not parts.scheme or not parts.netloc:
        return str(Path(source).resolve())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path.rstrip("/") or "/", parts.query, ""))


def _name(kind: str, value: str) -> bytes:
    digest = hashlib.sha256(f"{kind}\0{value}".encode()).hexdigest()
    return b"\0" + (PREFIX + digest).encode()


def _holder(name: bytes) -> int | None:
    """PID of the process listening on an abstract name, if it can be asked."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(name)
        creds = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, _, _ = struct.unpack("3i", creds)
        return pid if pid > 0 else None
    except OSError:
        return None
    finally:
        probe.close()


_L = TypeVar("_L", bound="_Locks")


class _Locks:
    """Abstract sockets held while the run lasts; released by ``release`` or on exit."""

    def __init__(self, wanted: Iterable[tuple[bytes, str, str, str]]) -> None:
        """``wanted``: (name, what it locks, and the busy message before and after the holder)."""
        self._sockets: list[socket.socket] = []
        try:
            for name, what, before, after in wanted:
                self._take(name, what, before, after)
        except BaseException:
            self.release()
            raise

    def _take(self, name: bytes, what: str, before: str, after: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(name)
            sock.listen(1)
        except OSError as err:
            sock.close()
            if err.errno != errno.EADDRINUSE:
                raise CameraBusy(f"{what}: cannot take its lock ({err})") from err
            pid = _holder(name)
            holder = f"process {pid}" if pid is not None else "another process"
            raise CameraBusy(f"{before} {holder} {after}") from None
        os.set_inheritable(sock.fileno(), False)
        self._sockets.append(sock)

    def release(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def __enter__(self: _L) -> _L:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class CameraLocks(_Locks):
    """One process per camera, by id and by stream: ``with CameraLocks([(id, source), ...]):``."""

    def __init__(self, cameras: Sequence[tuple[str, str]]) -> None:
        super().__init__(
            (
                _name(kind, value),
                f"camera '{camera_id}'",
                f"camera '{camera_id}': its {what} is already run by",
                "on this box; one process per camera",
            )
            for camera_id, source in cameras
            for kind, value, what in (
                ("id", camera_id, "camera id"),
                ("stream", normalised_source(source), f"stream {redact(source)}"),
            )
        )


class FileLocks(_Locks):
    """One process per spool file and per audit log: the same abstract sockets, keyed by the
    resolved path. Not ``fcntl`` locks on the files: SQLite takes and drops its own POSIX locks
    on the spool, and closing any descriptor of a file drops every POSIX lock the process holds
    on it. ``with FileLocks([("spool", path), ("audit log", path)]):``."""

    def __init__(self, files: Sequence[tuple[str, Path]]) -> None:
        super().__init__(
            (
                _name(f"file:{what}", str(path.resolve())),
                f"{what} {path}",
                f"{what} {path} is already used by",
                f"on this box; one 'edge run' per {what}",
            )
            for what, path in files
        )
