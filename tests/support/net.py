"""Loopback helpers shared by the test servers (Mosquitto, the GStreamer RTSP server)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(port: int, host: str = HOST) -> bool:
    """Something listens on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_serving(
    process: subprocess.Popen[Any],
    serving: Callable[[], bool],
    name: str,
    tail: Callable[[], str],
    stop: Callable[[], None],
    timeout: float,
) -> None:
    """Wait until ``serving()``; if the process exits or ``timeout`` passes, raise with its log
    tail (stopping it first on a timeout)."""
    deadline = time.monotonic() + timeout
    while not serving():
        code = process.poll()
        if code is not None:
            time.sleep(0.05)  # let a reader thread take the last log lines
            raise RuntimeError(f"{name} exited with code {code}:\n{tail()}")
        if time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"{name} not serving within {timeout} s:\n{tail()}")
        time.sleep(0.02)
