"""``edge run`` on a live camera whose line lies outside its frame (issue 16, item 5): exit 2 and
one line naming ``cameras[0]``, as a clip gets when it opens; before, it ran and counted nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLE, REPO, edge_argv, shared_file

StartServer = Callable[[dict[str, str]], Any]


@pytest.mark.slow
def test_edge_run_stops_on_a_line_outside_a_live_frame(
    rtsp_server: StartServer, tmp_path: Path
) -> None:
    clip = shared_file("clips/degirum_traffic2_intersection_960x540.mp4")
    server = rtsp_server({"traffic": str(clip)})
    data = yaml.safe_load(EXAMPLE.read_text())
    data["cameras"] = [{
        "id": "traffic", "location": "test intersection", "source": server.url("traffic"),
        "lines": [{"name": "across", "start": [0, 200], "end": [1900, 200]}],  # frame is 960 wide
    }]  # fmt: skip
    data["detector"]["model"] = "yolo11n_320.onnx"
    data["sinks"] = {"jsonl": str(tmp_path / "reports.jsonl")}
    data["spool"] = {"path": str(tmp_path / "spool.sqlite")}
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    audit = tmp_path / "audit.jsonl"
    argv = edge_argv("run", "-c", str(config))
    argv[argv.index("--audit-log") + 1] = str(audit)
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "edge: cameras[0].lines[0].end: (1900.0, 200.0) is outside the 960x540 frame"
    ]
    reports = tmp_path / "reports.jsonl"
    assert not reports.exists() or reports.read_text() == ""  # nothing published
    stop = json.loads(audit.read_text().splitlines()[-1])
    assert stop["event"] == "stop" and "outside the 960x540 frame" in stop["error"]
