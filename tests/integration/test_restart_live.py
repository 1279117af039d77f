"""``edge run`` on a real RTSP camera, killed with SIGKILL and started again inside a window:
the window goes on (no partial report), and a second process on the camera is refused."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import EXAMPLE, REPO, edge_argv, shared_file, wait_until

StartServer = Callable[[dict[str, str]], Any]
WINDOW_S = 3600  # a run of ~20 s straddles no window edge, but once in ~180


def saved(db: Path) -> tuple[int, int, float] | None:
    """(window index, frames, observed s) of the camera's open window, as persisted."""
    if not db.exists():
        return None
    with sqlite3.connect(db, timeout=5) as con:
        try:
            row = con.execute("SELECT window_index, state FROM window_state").fetchone()
        except sqlite3.OperationalError:
            return None
    if row is None:
        return None
    state = json.loads(row[1])
    return int(row[0]), int(state["frames"]), float(state["observed"])


def config(tmp_path: Path, camera_id: str, url: str) -> Path:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cameras"] = [{
        "id": camera_id, "location": "test intersection", "source": url,
        "lines": [{"name": "across", "start": [0, 270], "end": [960, 270]}],
    }]  # fmt: skip
    data["detector"]["model"] = "yolo11n_320.onnx"
    data["window"] = {"seconds": WINDOW_S}
    data["sinks"] = {"jsonl": str(tmp_path / "reports.jsonl")}
    data["spool"] = {"path": str(tmp_path / "var" / "spool.sqlite")}
    path = tmp_path / f"{camera_id}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def start(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        edge_argv("run", "-c", str(path)), cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_a_killed_run_is_continued_and_a_second_process_is_refused(
    rtsp_server: StartServer, tmp_path: Path
) -> None:
    clip = shared_file("clips/degirum_traffic2_intersection_960x540.mp4")
    server = rtsp_server({"traffic": str(clip)})
    url = server.url("traffic")
    db = tmp_path / "var" / "spool.sqlite"
    first = start(config(tmp_path, "traffic", url))
    try:
        assert wait_until(lambda: (saved(db) or (0, 0, 0.0))[1] > 10, 30), first.stderr
        # Another id on the same stream (spelt with credentials): refused, naming the holder.
        renamed = config(tmp_path, "renamed", url.replace("rtsp://", "rtsp://viewer:hunter2@"))
        other = subprocess.run(
            edge_argv("run", "-c", str(renamed)),
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.returncode != 0
        assert f"already run by process {first.pid}" in other.stderr, other.stderr
        assert "camera 'renamed'" in other.stderr and "hunter2" not in other.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    at_kill = saved(db)
    assert at_kill is not None
    second = start(config(tmp_path, "traffic", url))  # the same camera again: its lock is free
    try:
        assert wait_until(lambda: (saved(db) or (0, 0, 0.0))[1] > at_kill[1] + 10, 30)
    finally:
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    after = saved(db)
    assert after is not None
    jsonl = tmp_path / "reports.jsonl"
    reports = [json.loads(x) for x in jsonl.read_text().splitlines()] if jsonl.exists() else []
    if after[0] == at_kill[0]:  # one window: it goes on, nothing published, frames add up
        assert reports == []
        assert after[1] > at_kill[1] + 10 and after[2] > at_kill[2]
    else:  # the hour turned during the test: that window was published once, whole
        assert [r["start"] for r in reports] == [at_kill[0] * WINDOW_S]
