"""A heartbeat file for container and service health checks: ``edge run --health-file PATH``
rewrites it every few seconds, ``edge health`` says whether it is fresh and its process alive.

The file holds figures about the process only (time, pid, cameras online, frames processed,
spool depth, broker connection, why delivery fails), never anything about the scene. It is
replaced atomically (a temporary file in the same folder, then renamed), so a reader never sees
half of it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from edge.errors import ConfigError

log = logging.getLogger(__name__)

HEALTH_FILE_ENV = "EDGE_HEALTH_FILE"  # the default path of --health-file and --file
INTERVAL_S = 5.0
MAX_AGE_S = 60.0


@dataclass(frozen=True)
class Heartbeat:
    """What ``edge run`` says about itself: figures only."""

    time: float  # seconds since the epoch when written
    pid: int
    cameras: int
    cameras_online: int
    frames_processed: int
    spool_depth: int | None  # None without MQTT (no spool)
    # Defaults: files from before these figures existed still read, and mean "no MQTT news".
    mqtt_connected: bool | None = None  # None without MQTT
    delivery_error: str = ""  # why spooled reports are not going out; "" when they are


def write_heartbeat(path: Path, beat: Heartbeat) -> None:
    """Replace ``path`` with ``beat`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(asdict(beat), file)
        Path(tmp).chmod(0o644)  # figures only: a monitor running as another user may read them
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_heartbeat(path: Path) -> Heartbeat:
    """The heartbeat in ``path``; ``ValueError`` if it is not one, ``OSError`` if unreadable."""
    data = json.loads(path.read_text(encoding="utf-8"))
    try:
        return Heartbeat(
            time=float(data["time"]),
            pid=int(data["pid"]),
            cameras=int(data["cameras"]),
            cameras_online=int(data["cameras_online"]),
            frames_processed=int(data["frames_processed"]),
            spool_depth=None if data["spool_depth"] is None else int(data["spool_depth"]),
            mqtt_connected=_optional_bool(data.get("mqtt_connected")),
            delivery_error=str(data.get("delivery_error") or ""),
        )
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a heartbeat ({err!r})") from err


def _optional_bool(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise TypeError(f"mqtt_connected is {value!r}, not true, false or null")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def check_health(path: Path, max_age_s: float = MAX_AGE_S, now: float | None = None) -> str:
    """One line describing a healthy run; ``ValueError`` with the one line saying why not."""
    try:
        beat = read_heartbeat(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no heartbeat (is 'edge run --health-file' running?)") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror or err})") from None
    except ValueError as err:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{path}: not a heartbeat ({err})") from None
    age = (time.time() if now is None else now) - beat.time
    if age > max_age_s:
        raise ValueError(f"{path}: stale, written {age:.0f} s ago (limit {max_age_s:g} s)")
    if not pid_alive(beat.pid):
        raise ValueError(f"{path}: process {beat.pid} is not running")
    if beat.delivery_error:  # alive but not delivering: reports pile up in the spool
        reason = " ".join(beat.delivery_error.split())  # one line, whatever the error said
        raise ValueError(f"{path}: reports are not being delivered: {reason}")
    spool = "no spool" if beat.spool_depth is None else f"spool {beat.spool_depth}"
    broker = {None: "", True: ", broker connected", False: ", broker disconnected"}
    return (
        f"healthy: pid {beat.pid}, {beat.cameras_online}/{beat.cameras} cameras online, "
        f"{beat.frames_processed} frames, {spool}{broker[beat.mqtt_connected]}, {age:.0f} s ago"
    )


class HeartbeatWriter:
    """A daemon thread that writes ``figures()`` to ``path`` now and every ``interval_s``;
    ``stop`` removes the file, so a stopped run never looks alive."""

    def __init__(
        self, path: Path, figures: Callable[[], Heartbeat], interval_s: float = INTERVAL_S
    ) -> None:
        self.path = path
        self.figures = figures
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        try:  # at once: a bad path is an error at start, not a silent thread
            self._beat()
        except OSError as err:
            raise ConfigError([f"--health-file: cannot write {self.path} ({err})"]) from err
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval_s + 1.0)
        self.path.unlink(missing_ok=True)

    def _beat(self) -> None:
        write_heartbeat(self.path, self.figures())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._beat()
            except Exception as err:  # a full disk must not kill the run; health goes stale
                log.warning("heartbeat %s not written: %s", self.path, err)
