"""The heartbeat behind the container health check: ``edge run --health-file`` writes it,
``edge health`` reads it (exit 0 fresh and alive, 1 otherwise)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from edge.health import Heartbeat, HeartbeatWriter, check_health, read_heartbeat, write_heartbeat
from tests.conftest import EXAMPLE, REPO, edge_argv, wait_until
from tests.support.cli import edge

BEAT = Heartbeat(
    time=0.0, pid=os.getpid(), cameras=2, cameras_online=1, frames_processed=10, spool_depth=None
)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_heartbeat_round_trips_and_holds_figures_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "health.json"
    beat = replace(BEAT, time=time.time(), spool_depth=3)
    write_heartbeat(path, beat)
    assert read_heartbeat(path) == beat
    assert set(json.loads(path.read_text())) == {
        "time", "pid", "cameras", "cameras_online", "frames_processed", "spool_depth",
        "mqtt_connected", "delivery_error",
    }  # fmt: skip
    assert [p.name for p in path.parent.iterdir()] == ["health.json"]  # no temporary left


def test_fresh_heartbeat_of_a_live_process_is_healthy(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_heartbeat(path, replace(BEAT, time=100.0))
    line = check_health(path, max_age_s=60, now=130.0)
    assert line.startswith("healthy: ") and "1/2 cameras online" in line and "no spool" in line


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "no heartbeat"),
        ("{not json", "not a heartbeat"),
        ('{"time": 1}', "not a heartbeat"),
        (json.dumps({**BEAT.__dict__, "time": 100.0}), "stale, written 61 s ago"),
    ],
)
def test_missing_broken_or_stale_heartbeat_is_unhealthy(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "health.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=reason):
        check_health(path, max_age_s=60, now=161.0)


def test_a_heartbeat_in_the_older_format_still_reads(tmp_path: Path) -> None:
    """Files written before the MQTT figures existed: missing keys mean "no MQTT news"."""
    path = tmp_path / "health.json"
    old = {k: v for k, v in asdict(BEAT).items() if k not in {"mqtt_connected", "delivery_error"}}
    path.write_text(json.dumps({**old, "time": 100.0}))
    assert read_heartbeat(path) == replace(BEAT, time=100.0)
    assert check_health(path, max_age_s=60, now=130.0).startswith("healthy: ")


def test_mqtt_figures_round_trip_and_a_bad_one_is_not_a_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    beat = replace(BEAT, time=100.0, spool_depth=0, mqtt_connected=False, delivery_error="")
    write_heartbeat(path, beat)
    assert read_heartbeat(path) == beat
    assert "broker disconnected" in check_health(path, max_age_s=60, now=130.0)
    path.write_text(json.dumps({**asdict(beat), "mqtt_connected": "yes"}))
    with pytest.raises(ValueError, match="not a heartbeat"):
        check_health(path, max_age_s=60, now=130.0)


def test_failing_delivery_is_unhealthy_in_one_line(tmp_path: Path) -> None:
    """Regression: a live process whose drain thread failed (reports piling up in the spool)
    still looked healthy."""
    path = tmp_path / "health.json"
    error = "mqtt: delivery failed: DatabaseError: database disk image\nis malformed"
    write_heartbeat(
        path, replace(BEAT, time=100.0, spool_depth=7, mqtt_connected=True, delivery_error=error)
    )
    with pytest.raises(ValueError, match=r"not being delivered: .*DatabaseError") as failed:
        check_health(path, max_age_s=60, now=130.0)
    assert "\n" not in str(failed.value)


def test_heartbeat_of_a_dead_process_is_unhealthy(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    pid = dead_pid()
    write_heartbeat(path, replace(BEAT, time=time.time(), pid=pid))
    with pytest.raises(ValueError, match=f"process {pid} is not running"):
        check_health(path)


def test_writer_beats_periodically_and_removes_the_file_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    frames = iter(range(1000))
    writer = HeartbeatWriter(
        path, lambda: replace(BEAT, time=time.time(), frames_processed=next(frames)), 0.05
    )
    writer.start()
    assert read_heartbeat(path).frames_processed == 0  # written at once
    assert wait_until(lambda: read_heartbeat(path).frames_processed >= 2, 5)
    writer.stop()
    assert not path.exists()


def test_edge_health_exit_codes(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    write_heartbeat(path, replace(BEAT, time=time.time()))
    ok = edge("health", "--file", str(path))
    assert ok.returncode == 0 and ok.stdout.startswith("healthy: "), ok.stdout + ok.stderr
    write_heartbeat(path, replace(BEAT, time=time.time() - 120))
    stale = edge("health", "--file", str(path), "--max-age", "60")
    assert stale.returncode == 1 and "stale" in stale.stdout
    assert len(stale.stdout.splitlines()) == 1
    write_heartbeat(path, replace(BEAT, time=time.time(), pid=dead_pid()))
    dead = edge("health", "--file", str(path))
    assert dead.returncode == 1 and "is not running" in dead.stdout
    missing = edge("health", "--file", str(tmp_path / "none.json"))
    assert missing.returncode == 1 and "no heartbeat" in missing.stdout
    unnamed = edge("health")  # neither --file nor EDGE_HEALTH_FILE: unhealthy, not a crash
    assert unnamed.returncode == 1 and "no heartbeat file given" in unnamed.stdout


@pytest.mark.slow
def test_edge_run_writes_a_heartbeat_that_edge_health_finds_healthy(
    tmp_path: Path, tud_clip: Path, yolo11n: Path
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["model_dir"] = str(yolo11n.parent)
    data["cameras"][0]["source"] = str(tud_clip)
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    path = tmp_path / "var" / "health.json"
    process = subprocess.Popen(
        edge_argv("run", "-c", str(config)),
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "EDGE_HEALTH_FILE": str(path)},
    )  # fmt: skip
    try:
        assert wait_until(path.exists, 120), process.stderr
        # Paused, it stays alive and its heartbeat fresh however long the check takes to start.
        process.send_signal(signal.SIGSTOP)
        beat = read_heartbeat(path)
        assert beat.pid == process.pid and beat.cameras == 1
        result = subprocess.run(  # the file EDGE_HEALTH_FILE names, as in the image
            [sys.executable, "-m", "edge", "health"], capture_output=True, text=True,
            timeout=60, env={**os.environ, "EDGE_HEALTH_FILE": str(path)},
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith(f"healthy: pid {process.pid}, ")
    finally:
        process.send_signal(signal.SIGCONT)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert not path.exists()  # a stopped run never looks alive
    after = edge("health", "--file", str(path))
    assert after.returncode == 1 and "no heartbeat" in after.stdout


def test_an_unwritable_health_file_is_a_one_line_error(tmp_path: Path, yolo11n: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["model_dir"] = str(yolo11n.parent)
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    (tmp_path / "file").write_text("")
    result = edge("run", "-c", str(config), "--health-file", str(tmp_path / "file" / "h.json"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("edge: --health-file: cannot write ")
    assert len(result.stderr.splitlines()) == 1
