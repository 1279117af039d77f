"""Soak test of ``edge run``: live RTSP cameras, a real broker, faults on a schedule, for hours.

Serves ``--clip`` to ``--cameras`` N cameras (one GStreamer RTSP server process each, looping the
clip forever, so one camera can be killed or frozen alone), starts a real Mosquitto, and runs
``edge run -c <generated config> --health-file ...`` as a subprocess for ``--duration-s``. Every
``--fault-every-min`` minutes it injects the next fault of the rotation (``--faults``):

- ``broker``: the broker stopped for ``--broker-down-s`` (~20 s), then started again;
- ``drop``: one camera's server killed for ``--drop-s`` (~30 s), then restarted on its port;
- ``freeze``: one camera's server frozen (SIGSTOP) for ``--freeze-s`` (~20 s), then SIGCONT;
- ``broker+drop``: one camera dropped, and while it is down the broker restarted: on its
  return the box must still say that camera is offline (not republish ``online`` for all);
- ``flap``: the broker restarted five times, a second apart;
- ``disk``: the file system under the spool and the JSON Lines file (a tmpfs of its own,
  mounted as root) filled for ``--disk-full-s`` (~20 s), then freed: window checkpoints fail
  and counting goes on; a hold longer than a window (``--disk-full-s 70``) also makes a
  report wait in memory and go out once the disk is freed.

Every ``--sample-s`` (~10 s) it samples the process from ``/proc`` (RSS, CPU time, threads, open
fds) and frames processed (heartbeat file, and per camera from the ``P/S/stats`` topic). One
subscriber that stays for the whole run (persistent session, fixed client id, QoS 1, so the
broker queues for it across its own restarts) records every ``P/S/<cam>/counts`` report and
every status message. The config has a JSON Lines sink too: that file is the ground truth of
what the egress gate admitted. At the end (SIGTERM, wait for exit) it checks:

- ``delivery``: every report of the JSONL file reached the subscriber; after de-duplication by
  (report_id, content) none is missing and none is extra; raw duplicates (at-least-once
  redeliveries) are counted and reported, not failed;
- ``windows``: per camera, every window from the first reported to the last either reported
  or withheld by the egress gate (watched less than the policy's minimum: audited), none twice;
- ``status``: after start, during and after each fault, within ``--grace-s`` (stall_seconds +
  10 s), every camera's retained ``<cam>/status`` read by a fresh subscriber matches the truth
  (a dropped or frozen camera ``offline``, the others ``online``), and still does just before
  the next change; after stop, every camera ``offline``;
- ``exit``: edge ran the whole time and exited 0 within 10 s of SIGTERM;
- ``threads``, ``fds``: at the end within a small margin of their value after warm-up.

It prints a row per sample and a table of the checks, writes ``OUT/samples.json`` and
``OUT/summary.json`` (least-squares slopes after warm-up: RSS MB per hour, CPU ms per frame per
hour; threads and fds min/max), and exits 1 if a check failed.

    .venv/bin/python -m benchmarks.soak --cameras 2 --duration-s 7200 \\
        --model ../shared/models/yolo11n_320.onnx \\
        --clip ../shared/clips/degirum_traffic2_intersection_960x540.mp4 --out out/soak
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from tests.support.broker import Broker, Subscriber, new_client, start_broker, subscribe
from tests.support.rtsp import RtspServer, start_rtsp_server

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_SHARED_DIR", REPO.parent / "shared"))
PREFIX, SITE = "edge", "soak"
FAULTS = ("broker", "drop", "freeze", "broker+drop", "flap", "disk")
FLAPS = 5  # broker restarts in a "flap" fault, a second apart
DISK_MB = 48  # the tmpfs under the spool and the JSON Lines file, for the "disk" fault
RECORDER_ID = "soak-recorder"
STARTUP_TIMEOUT_S = 120.0  # model load and first connections on a small box
STOP_LIMIT_S = 10.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class SoakOptions:
    """Everything a soak run needs; ``main`` fills it from the command line."""

    out: Path
    cameras: int = 2
    duration_s: float = 7200.0
    model: Path = SHARED / "models" / "yolo11n_320.onnx"
    clip: Path = SHARED / "clips" / "degirum_traffic2_intersection_960x540.mp4"
    target_fps: float = 10.0
    stall_s: float = 5.0
    window_s: int = 60
    fault_every_s: float = 600.0
    first_fault_s: float | None = None  # default: one fault interval, at least the warm-up
    faults: Sequence[str] = FAULTS
    broker_down_s: float = 20.0
    drop_s: float = 30.0
    freeze_s: float = 20.0
    disk_full_s: float = 20.0
    grace_s: float | None = None  # default: stall_s + 10
    sample_s: float = 10.0
    warmup_s: float | None = None  # default: 10 % of the run, at most 5 min
    tail_s: float = 20.0  # quiet time after the last fault, before the stop
    thread_margin: int = 3
    fd_margin: int = 5
    # The source tree whose ``edge`` runs (its ``python -m edge``), e.g. a clean export of HEAD
    # while the working tree is mid-edit; default this checkout.
    edge_root: Path = field(default_factory=lambda: Path(os.environ.get("EDGE_SOAK_ROOT", REPO)))
    verbose: bool = True

    @property
    def grace(self) -> float:
        return self.stall_s + 10.0 if self.grace_s is None else self.grace_s

    @property
    def warmup(self) -> float:
        return min(0.1 * self.duration_s, 300.0) if self.warmup_s is None else self.warmup_s


class EdgeDied(RuntimeError):
    """``edge run`` exited before the end of the soak."""


# -- the edge process and its configuration ----------------------------------------------------


def frame_size(clip: Path) -> tuple[int, int]:
    capture = cv2.VideoCapture(str(clip))
    try:
        w, h = (
            int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()
    if w <= 0 or h <= 0:
        raise SystemExit(f"{clip}: cannot read the frame size")
    return w, h


def write_config(
    path: Path, options: SoakOptions, broker: Broker, urls: dict[str, str], work: Path
) -> None:
    """A live config: the example's deployment declaration, one horizontal line across the
    middle of each camera, MQTT to ``broker`` (stats every 10 s, reconnect within 5 s) and a
    JSON Lines sink (the ground truth of what the egress gate admitted)."""
    example = yaml.safe_load((REPO / "examples" / "tud-campus.yaml").read_text())
    w, h = frame_size(options.clip)
    data = {
        "model_dir": str(options.model.resolve().parent),
        "deployment": example["deployment"],
        "policy": {
            "file": str(options.edge_root.resolve() / "policies/cnil-statistics.yaml"),
            "sha256": example["policy"]["sha256"],
        },
        "cameras": [
            {
                "id": camera,
                "location": f"soak test camera {camera}",
                "source": url,
                "transport": "tcp",
                "target_fps": options.target_fps,
                "stall_seconds": options.stall_s,
                "lines": [{"name": "across", "start": [0, h // 2], "end": [w, h // 2]}],
            }
            for camera, url in urls.items()
        ],
        "detector": {"model": str(options.model.resolve()), "providers": ["cpu"]},
        "window": {"seconds": options.window_s},
        "mqtt": {
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "topic_prefix": PREFIX,
            "site": SITE,
            "client_id": "edge-soak",
            "stats_interval_s": 10,
            "reconnect_min_s": 1,
            "reconnect_max_s": 5,
        },
        "spool": {"path": str(work / "disk" / "spool.sqlite")},
        "sinks": {"jsonl": str(work / "disk" / "reports.jsonl")},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def start_edge(
    options: SoakOptions, config: Path, health: Path, log: Path
) -> subprocess.Popen[bytes]:
    root = str(options.edge_root.resolve())
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edge",
                "-v",
                "--audit-log",
                str(config.parent / "audit.jsonl"),
                "run",
                "-c",
                str(config),
                "--health-file",
                str(health),
            ],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def tail(path: Path, n: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


# -- sampling (cheap: a few /proc reads every 10 s) ---------------------------------------------


def proc_figures(pid: int) -> dict[str, float]:
    """RSS (MB), CPU time (s, user + system), threads and open fds of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    utime, stime = int(fields[11]), int(fields[12])
    return {
        "rss_mb": int(values["VmRSS"].split()[0]) / 1024,
        "cpu_s": (utime + stime) / CLK_TCK,
        "threads": int(values["Threads"]),
        "fds": sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()),
    }


def heartbeat_frames(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text())["frames_processed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def latest_stats(recorder: Subscriber) -> dict[str, int]:
    """frames_processed per camera from the newest ``P/S/stats`` message, {} before one."""
    messages = recorder.messages(f"{PREFIX}/{SITE}/stats")
    if not messages:
        return {}
    try:
        cameras = json.loads(messages[-1].payload)["cameras"]
        return {name: int(figures["frames_processed"]) for name, figures in cameras.items()}
    except (ValueError, KeyError, TypeError):
        return {}


# -- retained status, read as a newcomer sees it -------------------------------------------------


def status_topic(camera: str) -> str:
    return f"{PREFIX}/{SITE}/{camera}/status"


def retained_status(broker: Broker, cameras: Sequence[str]) -> dict[str, str]:
    """Every camera's retained status as a fresh subscriber reads it ("" where none)."""
    topics = [status_topic(c) for c in cameras]
    try:
        with subscribe(broker, topics, timeout=3.0) as fresh:
            fresh.wait_for(lambda m: {x.topic for x in m} >= set(topics), 1.0)
            seen = {m.topic: m.payload.decode(errors="replace") for m in fresh.messages()}
    except (OSError, TimeoutError, RuntimeError):  # broker not answering (yet)
        return dict.fromkeys(cameras, "?")
    return {c: seen.get(status_topic(c), "") for c in cameras}


# -- the soak ----------------------------------------------------------------------------------


class Soak:
    def __init__(self, options: SoakOptions) -> None:
        self.o = options
        self.names = [f"cam{i}" for i in range(options.cameras)]
        self.out = options.out
        self.work = options.out / "work"
        self.disk = self.work / "disk"  # spool and JSON Lines: a tmpfs when the disk fault runs
        self.mounted = False
        self.broker: Broker | None = None
        self.servers: dict[str, RtspServer] = {}
        self.recorder: Subscriber | None = None
        self.edge: subprocess.Popen[bytes] | None = None
        self.t0 = 0.0
        self.phase = "start"
        self.samples: list[dict[str, Any]] = []
        self.status_checks: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self._stop_sampling = threading.Event()
        self.sampler = threading.Thread(target=self.sample_loop, name="sampler", daemon=True)
        self.exit_code: int | None = None
        self.stop_s: float | None = None
        self.died: str = ""
        self.stopped = False  # SIGTERM sent: its exit is no longer a failure

    # logging and time

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        if self.o.verbose:
            print(f"[{self.now():7.1f} s] {text}", flush=True)

    def alive(self) -> None:
        if self.edge is not None and not self.stopped and self.edge.poll() is not None:
            raise EdgeDied(f"edge run exited with {self.edge.returncode} at {self.now():.0f} s")

    def sleep_until(self, t: float) -> None:
        """Sleep until run time ``t``, raising EdgeDied if the process ends meanwhile."""
        while (left := t - self.now()) > 0:
            self.alive()
            time.sleep(min(left, 0.5))
        self.alive()

    # setup and teardown

    def setup(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        if "disk" in self.o.faults:  # a small file system of its own, to fill
            self.disk.mkdir(exist_ok=True)
            mounted = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(self.disk)],
                capture_output=True, text=True,
            )  # fmt: skip
            if mounted.returncode != 0:
                raise RuntimeError(f"the disk fault needs root to mount a tmpfs: {mounted.stderr}")
            self.mounted = True
        self.broker = start_broker(self.work / "broker")
        for name in self.names:
            self.servers[name] = start_rtsp_server({name: str(self.o.clip.resolve())})
        client = new_client(self.broker, client_id=RECORDER_ID, persistent=True)
        client.reconnect_delay_set(1, 2)  # back within ~2 s of the broker; it queued for us
        self.recorder = Subscriber(
            client,
            [
                f"{PREFIX}/{SITE}/+/counts",
                f"{PREFIX}/{SITE}/+/status",
                f"{PREFIX}/{SITE}/status",
                f"{PREFIX}/{SITE}/stats",
            ],
        )
        client.connect(self.broker.host, self.broker.port, keepalive=10)
        client.loop_start()
        self.recorder.wait_subscribed(5.0)
        config = self.work / "edge.yaml"
        urls = {name: server.url(name) for name, server in self.servers.items()}
        write_config(config, self.o, self.broker, urls, self.work)
        self.edge = start_edge(self.o, config, self.health_file, self.log_file)
        self.t0 = time.monotonic()
        self.say(f"edge run started (pid {self.edge.pid}), log {self.log_file}")

    @property
    def health_file(self) -> Path:
        return self.work / "health.json"

    @property
    def log_file(self) -> Path:
        return self.out / "edge.log"

    def teardown(self) -> None:
        self.stop_sampling()
        if self.edge is not None and self.edge.poll() is None:
            self.edge.kill()
            self.edge.wait()
        for server in self.servers.values():
            server.stop()
        if self.recorder is not None:
            self.recorder.close()
        if self.broker is not None:
            self.broker.stop()
        if self.mounted:
            subprocess.run(["umount", str(self.disk)], capture_output=True)
            self.mounted = False

    # sampling thread

    def sample_loop(self) -> None:
        assert self.edge is not None and self.recorder is not None
        next_at = self.now()
        while not self._stop_sampling.wait(max(0.0, next_at - self.now())):
            next_at += self.o.sample_s
            if not self.take_sample(self.phase):
                return

    def take_sample(self, phase: str) -> bool:
        """Append and print one sample; False if the process is gone."""
        assert self.edge is not None and self.recorder is not None
        try:
            figures = proc_figures(self.edge.pid)
        except (OSError, ValueError, KeyError):
            return False
        sample = {
            "t": round(self.now(), 2),
            **figures,
            "frames": heartbeat_frames(self.health_file),
            "frames_by_camera": latest_stats(self.recorder),
            "load1": float(Path("/proc/loadavg").read_text().split()[0]),
            "phase": phase,
        }
        self.samples.append(sample)
        self.print_sample(sample)
        return True

    def stop_sampling(self) -> None:
        self._stop_sampling.set()
        if self.sampler.is_alive():
            self.sampler.join(5.0)

    def print_sample(self, s: dict[str, Any]) -> None:
        if not self.o.verbose:
            return
        if len(self.samples) == 1:
            print(
                "|      t s | RSS MB | CPU % | CPU ms/frame | threads | fds |  frames | "
                "per camera (stats) | load1 | phase"
            )
        cpu = per_frame = ""
        if len(self.samples) > 1:
            p = self.samples[-2]
            dt = s["t"] - p["t"]
            cpu = f"{100 * (s['cpu_s'] - p['cpu_s']) / dt:.0f}" if dt > 0 else ""
            if s["frames"] is not None and p["frames"] is not None and s["frames"] > p["frames"]:
                per_frame = f"{1e3 * (s['cpu_s'] - p['cpu_s']) / (s['frames'] - p['frames']):.1f}"
        cams = " ".join(str(s["frames_by_camera"].get(c, "-")) for c in self.names)
        print(
            f"| {s['t']:8.1f} | {s['rss_mb']:6.1f} | {cpu:>5} | {per_frame:>12} | "
            f"{s['threads']:7d} | {s['fds']:3d} | {s['frames'] or 0:7d} | {cams:>18} | "
            f"{s['load1']:5.2f} | {s['phase']}",
            flush=True,
        )

    # status checks

    def expect(self, down: Sequence[str] = ()) -> dict[str, str]:
        return {c: "offline" if c in down else "online" for c in self.names}

    def check_status(
        self, name: str, expected: dict[str, str], within_s: float, hold_until: float | None = None
    ) -> bool:
        """Poll the retained statuses until they match ``expected`` (at most ``within_s``);
        with ``hold_until``, read them again just before that run time: they must still match."""
        assert self.broker is not None
        start = self.now()
        while True:
            self.alive()
            seen = retained_status(self.broker, self.names)
            if seen == expected or self.now() - start >= within_s:
                break
            time.sleep(1.0)
        record = self.record(name, start, within_s, expected, seen, seen == expected)
        if record["passed"] and hold_until is not None and hold_until - self.now() > 1:
            self.sleep_until(hold_until - 1.0)
            record["held_seen"] = retained_status(self.broker, self.names)
            record["held"] = record["held_seen"] == expected
            record["passed"] = record["held"]
            if not record["held"]:
                self.say(f"status FAIL {name}: then {record['held_seen']} before the next change")
        return bool(record["passed"])

    def record(
        self,
        name: str,
        start: float,
        within_s: float,
        expected: dict[str, str],
        seen: dict[str, str],
        passed: bool,
    ) -> dict[str, Any]:
        """Keep (and say) the outcome of one status check."""
        after = round(self.now() - start, 1)
        record = {"name": name, "t": round(start, 1), "within_s": within_s, "expected": expected}
        record.update(seen=seen, matched_after_s=after if passed else None, passed=passed)
        record.update(held=None, held_seen=None)
        self.status_checks.append(record)
        self.say(
            f"status {'ok  ' if passed else 'FAIL'} {name}: "
            + (f"after {after} s" if passed else f"expected {expected}, saw {seen}")
        )
        return record

    def site_online_count(self) -> int:
        """Live (not retained-replay) ``online`` messages on the site status: one per connect."""
        assert self.recorder is not None
        return sum(
            1
            for m in self.recorder.messages(f"{PREFIX}/{SITE}/status")
            if m.payload == b"online" and not m.retain
        )

    def wait_reconnected(self, before: int, name: str) -> None:
        """Until edge has said ``online`` on the site status again after a broker restart."""
        start = self.now()
        while self.site_online_count() <= before and self.now() - start < self.o.grace:
            self.alive()
            time.sleep(0.2)
        ok = self.site_online_count() > before
        site = {"site": "online"}
        self.record(name, start, self.o.grace, site, site if ok else {"site": "?"}, ok)

    # faults

    def fault_span(self, kind: str) -> float:
        g = self.o.grace
        return {
            "broker": self.o.broker_down_s + g,
            "drop": self.o.drop_s + g,
            "freeze": self.o.freeze_s + g,
            "broker+drop": g + 3 + self.o.broker_down_s + g + 5 + g,
            "flap": 2.0 * FLAPS + g,
            "disk": self.o.disk_full_s + g,
        }[kind]

    def schedule(self) -> list[tuple[float, str, str]]:
        """(run time, kind, camera) of every fault that ends before the quiet tail."""
        first = self.o.first_fault_s
        if first is None:
            first = max(self.o.fault_every_s, self.o.warmup)
        plan = []
        end = self.o.duration_s - self.o.tail_s
        t, n = first, 0
        while True:
            kind = self.o.faults[n % len(self.o.faults)]
            if t + self.fault_span(kind) > end:
                return plan
            # the camera rotates too, shifted every round so each kind meets every camera
            camera = self.names[(n + n // len(self.o.faults)) % len(self.names)]
            plan.append((t, kind, camera))
            # a fault longer than the interval pushes the next one back: never two at once
            t, n = t + max(self.o.fault_every_s, self.fault_span(kind) + 5), n + 1

    def inject(self, number: int, kind: str, camera: str) -> None:
        assert self.broker is not None
        g, tag = self.o.grace, f"fault {number} {kind}"
        server = self.servers[camera]
        record: dict[str, Any] = {"number": number, "kind": kind, "start": round(self.now(), 1)}
        self.faults.append(record)
        if kind == "broker":
            before = self.site_online_count()
            self.phase = f"{tag}: broker down"
            self.say(f"{tag}: broker stopped for {self.o.broker_down_s:g} s")
            self.broker.stop()
            self.sleep_until(self.now() + self.o.broker_down_s)
            self.broker.start()
            self.phase = f"{tag}: broker back"
            self.wait_reconnected(before, f"{tag}: edge reconnected")
            self.check_status(f"{tag}: all online after the restart", self.expect(), g)
        elif kind in ("drop", "freeze"):
            record["camera"] = camera
            down_s = self.o.drop_s if kind == "drop" else self.o.freeze_s
            self.phase = f"{tag}: {camera} {'killed' if kind == 'drop' else 'frozen'}"
            self.say(f"{tag}: {camera} {'killed' if kind == 'drop' else 'frozen'} for {down_s:g} s")
            back_at = self.now() + down_s
            if kind == "drop":
                server.kill()
            else:
                server.freeze()
            self.check_status(
                f"{tag}: {camera} offline, others online", self.expect([camera]), g, back_at
            )
            self.sleep_until(back_at)
            if kind == "drop":
                server.start()
            else:
                server.resume()
            self.phase = f"{tag}: {camera} back"
            self.check_status(f"{tag}: all online after {camera} is back", self.expect(), g)
        elif kind == "broker+drop":
            record["camera"] = camera
            self.phase = f"{tag}: {camera} killed"
            self.say(f"{tag}: {camera} killed, then the broker restarted while it is down")
            server.kill()
            self.check_status(
                f"{tag}: {camera} offline before the restart", self.expect([camera]), g
            )
            self.sleep_until(self.now() + 3)
            before = self.site_online_count()
            self.phase = f"{tag}: {camera} killed, broker down"
            self.broker.stop()
            self.sleep_until(self.now() + self.o.broker_down_s)
            self.broker.start()
            self.phase = f"{tag}: {camera} killed, broker back"
            self.wait_reconnected(before, f"{tag}: edge reconnected")
            back_at = self.now() + g + 5
            self.check_status(
                f"{tag}: {camera} still offline after the broker restart",
                self.expect([camera]),
                g,
                back_at,
            )
            self.sleep_until(back_at)
            server.start()
            self.phase = f"{tag}: {camera} back"
            self.check_status(f"{tag}: all online after {camera} is back", self.expect(), g)
        elif kind == "flap":
            before = self.site_online_count()
            self.phase = f"{tag}: broker flapping"
            self.say(f"{tag}: broker restarted {FLAPS} times, a second apart")
            for _ in range(FLAPS):
                self.broker.stop()
                self.sleep_until(self.now() + 1.0)
                self.broker.start()
                self.sleep_until(self.now() + 1.0)
            self.phase = f"{tag}: broker steady"
            self.wait_reconnected(before, f"{tag}: edge reconnected")
            self.check_status(f"{tag}: all online after the flapping", self.expect(), g)
        elif kind == "disk":
            filler = self.disk / "filler"
            self.phase = f"{tag}: disk full"
            self.say(f"{tag}: the spool's disk full for {self.o.disk_full_s:g} s")
            with filler.open("wb") as f:
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError:  # ENOSPC: the disk is full
                    pass
            self.check_status(f"{tag}: cameras online while the disk is full", self.expect(), g)
            self.sleep_until(self.now() + self.o.disk_full_s)
            filler.unlink()
            self.phase = f"{tag}: disk freed"
        else:
            raise ValueError(f"unknown fault {kind!r}")
        record["end"] = round(self.now(), 1)
        self.phase = "steady"

    # the run

    def run(self) -> dict[str, Any]:
        try:
            self.setup()
        except BaseException:  # pytest's skip too (no broker / no GStreamer): nothing to judge
            self.teardown()
            raise
        try:
            self.sampler.start()
            self.phase = "start-up"
            self.check_status("start-up: all online", self.expect(), STARTUP_TIMEOUT_S)
            self.phase = "steady"
            plan = self.schedule()
            self.say(
                f"{len(plan)} faults planned: "
                + ", ".join(f"{k}({c}) at {t:.0f} s" for t, k, c in plan)
            )
            for number, (at, kind, camera) in enumerate(plan, start=1):
                if self.now() > at + 1:
                    self.say(f"fault {number} starts {self.now() - at:.0f} s late")
                self.sleep_until(at)
                self.inject(number, kind, camera)
            self.sleep_until(self.o.duration_s)
            self.stop_edge()
        except EdgeDied as died:
            self.died = str(died)
            self.say(f"{died}; log tail:\n{tail(self.log_file)}")
        finally:
            self.stop_sampling()
            try:
                summary = self.summarise()
            finally:
                self.teardown()
        return summary

    def stop_edge(self) -> None:
        assert self.edge is not None and self.broker is not None
        self.phase = "stop"
        self.stop_sampling()
        self.take_sample("before stop")
        self.say("SIGTERM to edge run")
        self.stopped = True
        sent = time.monotonic()
        self.edge.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.edge.wait(60)
        except subprocess.TimeoutExpired:
            self.edge.kill()
            self.exit_code = self.edge.wait()
        self.stop_s = round(time.monotonic() - sent, 2)
        self.say(f"edge run exited with {self.exit_code} after {self.stop_s} s")
        self.wait_delivered(15.0)
        self.check_status("after stop: all offline", dict.fromkeys(self.names, "offline"), 5.0)

    def wait_delivered(self, timeout: float) -> None:
        """Give the subscriber ``timeout`` s to catch up with every report in the JSONL file."""
        assert self.recorder is not None
        admitted = {key for key, _ in jsonl_reports(self.disk / "reports.jsonl")}
        self.recorder.wait_for(lambda m: admitted <= {k for k, _ in received_reports(m)}, timeout)

    # the verdict

    def summarise(self) -> dict[str, Any]:
        assert self.recorder is not None
        admitted = jsonl_reports(self.disk / "reports.jsonl")
        received = received_reports(self.recorder.messages(f"{PREFIX}/{SITE}/+/counts"))
        delivery = check_delivery(admitted, received)
        withheld = withheld_windows(self.work / "audit.jsonl")
        windows = check_windows([r for _, r in admitted], self.names, self.o.window_s, withheld)
        figures = slopes(self.samples, self.o.warmup)
        checks: dict[str, dict[str, Any]] = {}
        checks["delivery"] = {
            "passed": delivery["missing"] == 0
            and delivery["unexpected"] == 0
            and delivery["admitted"] > 0
            and not delivery["malformed"],
            "detail": f"{delivery['admitted']} admitted, {delivery['missing']} missing, "
            f"{delivery['unexpected']} unexpected, {delivery['raw_duplicates']} raw duplicates",
        }
        checks["windows"] = {
            "passed": all(w["passed"] for w in windows.values()),
            "detail": "; ".join(
                f"{c}: {w['windows']} windows, {w['partial']} partial, {w['withheld']} withheld, "
                f"missing {w['missing']}, twice {w['twice']}"
                for c, w in windows.items()
            ),
        }
        failed = [c["name"] for c in self.status_checks if not c["passed"]]
        checks["status"] = {
            "passed": bool(self.status_checks) and not failed,
            "detail": f"{len(self.status_checks) - len(failed)}/{len(self.status_checks)} right"
            + (f"; wrong: {'; '.join(failed)}" if failed else ""),
        }
        checks["exit"] = {
            "passed": not self.died
            and self.exit_code == 0
            and self.stop_s is not None
            and self.stop_s <= STOP_LIMIT_S,
            "detail": self.died or f"exit code {self.exit_code} after {self.stop_s} s",
        }
        for key, margin in (("threads", self.o.thread_margin), ("fds", self.o.fd_margin)):
            f = figures.get(key)
            checks[key] = {
                "passed": f is not None and abs(f["end"] - f["after_warmup"]) <= margin,
                "detail": "no samples after warm-up"
                if f is None
                else f"after warm-up {f['after_warmup']}, end {f['end']}, "
                f"min {f['min']}, max {f['max']} (margin {margin})",
            }
        summary = {
            "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.o).items()},
            "passed": all(c["passed"] for c in checks.values()),
            "checks": checks,
            "figures": figures,
            "delivery": delivery,
            "windows": windows,
            "status_checks": self.status_checks,
            "faults": self.faults,
            "exit_code": self.exit_code,
            "stop_s": self.stop_s,
            "log": str(self.log_file),
        }
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "samples.json").write_text(json.dumps(self.samples, indent=1))
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary


# -- checks, pure functions of what was recorded ------------------------------------------------

Key = tuple[str, str]  # (report_id, digest of the content)


def report_key(report: dict[str, Any]) -> Key:
    canonical = json.dumps(report, sort_keys=True, separators=(",", ":"))
    return str(report.get("report_id")), hashlib.sha256(canonical.encode()).hexdigest()[:16]


def jsonl_reports(path: Path) -> list[tuple[Key, dict[str, Any]]]:
    if not path.exists():
        return []
    reports = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(report_key(r), r) for r in reports]


def received_reports(messages: Sequence[Any]) -> list[tuple[Key, dict[str, Any]]]:
    """(key, report) of every counts message that parses; the others as (("", "malformed"), {})."""
    out: list[tuple[Key, dict[str, Any]]] = []
    for m in messages:
        if not m.topic.endswith("/counts"):
            continue
        try:
            report = json.loads(m.payload)
        except ValueError:
            out.append((("", "malformed"), {}))
            continue
        out.append((report_key(report), report))
    return out


def check_delivery(
    admitted: Sequence[tuple[Key, dict[str, Any]]], received: Sequence[tuple[Key, dict[str, Any]]]
) -> dict[str, Any]:
    """Admitted (JSONL) against received (MQTT), de-duplicated by (report_id, content)."""
    want = Counter(k for k, _ in admitted)
    got = Counter(k for k, _ in received)
    missing = sorted(set(want) - set(got))
    unexpected = sorted(k for k in set(got) - set(want) if k != ("", "malformed"))
    return {
        "admitted": len(admitted),
        "admitted_twice": sum(n - 1 for n in want.values()),
        "received_raw": len(received),
        "received_unique": len(set(got)),
        "raw_duplicates": sum(n - 1 for k, n in got.items() if k != ("", "malformed")),
        "missing": len(missing),
        "unexpected": len(unexpected),
        "malformed": got.get(("", "malformed"), 0),
        "missing_ids": [k[0] for k in missing][:20],
        "unexpected_ids": [k[0] for k in unexpected][:20],
    }


def withheld_windows(audit: Path) -> list[tuple[str, float]]:
    """(camera, window start) of every live window the egress gate withheld (watched for less
    than the policy's minimum: a fault in it, the run's first and last partial windows)."""
    out = []
    for line in audit.read_text().splitlines() if audit.exists() else []:
        entry = json.loads(line)
        if entry.get("event") == "window_withheld" and "window_start" in entry:
            start = dt.datetime.fromisoformat(entry["window_start"].replace("Z", "+00:00"))
            out.append((entry["camera"], start.timestamp()))
    return out


def check_windows(
    reports: Sequence[dict[str, Any]],
    cameras: Sequence[str],
    window_s: int,
    withheld: Sequence[tuple[str, float]] = (),
) -> dict[str, dict[str, Any]]:
    """Per camera: every window from the first to the last either reported or withheld (and
    audited), and only once."""
    starts: dict[str, list[float]] = defaultdict(list)
    held: dict[str, list[float]] = defaultdict(list)
    partial: Counter[str] = Counter()
    for r in reports:
        starts[r["camera"]].append(float(r["start"]))
        partial[r["camera"]] += bool(r["partial"])
    for camera, start in withheld:
        held[camera].append(start)
    out = {}
    for camera in cameras:
        mine = sorted(starts.get(camera, []))
        if not mine:
            out[camera] = {"windows": 0, "partial": 0, "withheld": len(held[camera]),
                           "missing": [], "twice": [], "passed": False}  # fmt: skip
            continue
        present = Counter(round(s / window_s) for s in mine + held[camera])
        first, last = min(round(s / window_s) for s in mine), max(round(s / window_s) for s in mine)
        missing = [k * window_s for k in range(first, last + 1) if k not in present]
        twice = [k * window_s for k, n in present.items() if n > 1]
        out[camera] = {
            "windows": len(mine),
            "partial": partial[camera],
            "withheld": len(held[camera]),
            "first": first * window_s,
            "last": last * window_s,
            "missing": missing,
            "twice": twice,
            "passed": not missing and not twice,
        }
    return out


def fit_per_hour(t: Sequence[float], y: Sequence[float]) -> float | None:
    """Least-squares slope of ``y`` against ``t`` (seconds), per hour; None under 3 points."""
    if len(t) < 3 or max(t) - min(t) <= 0:
        return None
    slope = np.polyfit(np.asarray(t, np.float64) / 3600.0, np.asarray(y, np.float64), 1)[0]
    return round(float(slope), 4)


def slopes(samples: Sequence[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """Figures after the warm-up: RSS and CPU-per-frame trends, threads and fds range."""
    after = [s for s in samples if s["t"] >= warmup_s]
    if not after:
        return {}
    t = [s["t"] for s in after]
    out: dict[str, Any] = {
        "warmup_s": warmup_s,
        "samples_after_warmup": len(after),
        "rss_mb": {
            "after_warmup": round(after[0]["rss_mb"], 1),
            "end": round(after[-1]["rss_mb"], 1),
            "max": round(max(s["rss_mb"] for s in after), 1),
            "slope_mb_per_h": fit_per_hour(t, [s["rss_mb"] for s in after]),
        },
    }
    per_frame_t, per_frame = [], []
    for a, b in itertools.pairwise(after):
        if a["frames"] is not None and b["frames"] is not None and b["frames"] > a["frames"]:
            per_frame_t.append(b["t"])
            per_frame.append(1e3 * (b["cpu_s"] - a["cpu_s"]) / (b["frames"] - a["frames"]))
    wall = after[-1]["t"] - after[0]["t"]
    frames = (
        after[-1]["frames"] - after[0]["frames"]
        if after[-1]["frames"] is not None and after[0]["frames"] is not None
        else None
    )
    out["cpu"] = {
        "percent_mean": round(100 * (after[-1]["cpu_s"] - after[0]["cpu_s"]) / wall, 1)
        if wall > 0
        else None,
        "ms_per_frame_mean": round(1e3 * (after[-1]["cpu_s"] - after[0]["cpu_s"]) / frames, 2)
        if frames
        else None,
        "ms_per_frame_slope_per_h": fit_per_hour(per_frame_t, per_frame),
        "fps": round(frames / wall, 2) if frames is not None and wall > 0 else None,
    }
    for key in ("threads", "fds"):
        values = [int(s[key]) for s in after]
        out[key] = {
            "after_warmup": values[0],
            "end": values[-1],
            "min": min(values),
            "max": max(values),
            "slope_per_h": fit_per_hour(t, values),
        }
    return out


def print_summary(summary: dict[str, Any]) -> None:
    f = summary["figures"]
    print()
    if f:
        rss, cpu = f["rss_mb"], f["cpu"]
        print(f"after warm-up ({f['warmup_s']:.0f} s, {f['samples_after_warmup']} samples):")
        print(
            f"  RSS {rss['after_warmup']} -> {rss['end']} MB (max {rss['max']}), "
            f"slope {rss['slope_mb_per_h']} MB/h"
        )
        print(
            f"  CPU {cpu['percent_mean']} % of a core, {cpu['ms_per_frame_mean']} ms/frame, "
            f"slope {cpu['ms_per_frame_slope_per_h']} ms/frame per h, {cpu['fps']} frames/s"
        )
        for key in ("threads", "fds"):
            print(
                f"  {key}: {f[key]['after_warmup']} -> {f[key]['end']} "
                f"(min {f[key]['min']}, max {f[key]['max']})"
            )
    print()
    print("| check | result | detail |")
    print("|---|---|---|")
    for name, check in summary["checks"].items():
        print(f"| {name} | {'pass' if check['passed'] else 'FAIL'} | {check['detail']} |")
    failed = [c for c in summary["status_checks"] if not c["passed"]]
    for c in failed:
        print(
            f"  status wrong: {c['name']}: expected {c['expected']}, saw {c['seen']}"
            + (f", then {c['held_seen']}" if c["held"] is False else "")
        )
    print(f"\n{'PASSED' if summary['passed'] else 'FAILED'}")


def run_soak(options: SoakOptions) -> dict[str, Any]:
    """Run one soak; returns the summary (also written to ``options.out/summary.json``)."""
    for kind in options.faults:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}: expected one of {', '.join(FAULTS)}")
    if options.window_s < 60:
        raise ValueError("window_s: the policy's minimum is 60 s")
    return Soak(options).run()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = SoakOptions(out=Path("out/soak"))
    parser.add_argument("--cameras", type=int, default=d.cameras)
    parser.add_argument("--duration-s", type=float, default=d.duration_s)
    parser.add_argument("--model", type=Path, default=d.model)
    parser.add_argument("--clip", type=Path, default=d.clip)
    parser.add_argument("--out", type=Path, default=d.out, help="samples.json, summary.json")
    parser.add_argument("--target-fps", type=float, default=d.target_fps)
    parser.add_argument("--stall-s", type=float, default=d.stall_s, help="cameras' stall_seconds")
    parser.add_argument("--fault-every-min", type=float, default=d.fault_every_s / 60)
    parser.add_argument("--first-fault-s", type=float, default=None)
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help=f"rotation, from: {', '.join(FAULTS)}"
    )
    parser.add_argument("--broker-down-s", type=float, default=d.broker_down_s)
    parser.add_argument("--disk-full-s", type=float, default=d.disk_full_s)
    parser.add_argument("--drop-s", type=float, default=d.drop_s)
    parser.add_argument("--freeze-s", type=float, default=d.freeze_s)
    parser.add_argument("--grace-s", type=float, default=None, help="default stall-s + 10")
    parser.add_argument("--sample-s", type=float, default=d.sample_s)
    parser.add_argument("--warmup-s", type=float, default=None, help="default 10 %%, <= 300 s")
    parser.add_argument(
        "--edge-root", type=Path, default=d.edge_root, help="source tree of the edge that runs"
    )
    args = parser.parse_args(argv)
    options = SoakOptions(
        out=args.out,
        cameras=args.cameras,
        duration_s=args.duration_s,
        model=args.model,
        clip=args.clip,
        target_fps=args.target_fps,
        stall_s=args.stall_s,
        fault_every_s=args.fault_every_min * 60,
        first_fault_s=args.first_fault_s,
        faults=[k.strip() for k in args.faults.split(",") if k.strip()],
        broker_down_s=args.broker_down_s,
        drop_s=args.drop_s,
        freeze_s=args.freeze_s,
        disk_full_s=args.disk_full_s,
        grace_s=args.grace_s,
        sample_s=args.sample_s,
        warmup_s=args.warmup_s,
        edge_root=args.edge_root,
    )
    for path in (options.model, options.clip):
        if not path.exists():
            parser.error(f"{path} does not exist")
    summary = run_soak(options)
    print_summary(summary)
    print(f"wrote {options.out / 'samples.json'} and {options.out / 'summary.json'}")
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
