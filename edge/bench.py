"""``edge bench``: our pipeline against the detector's limit and Ultralytics, on the same clip,
model and machine, in one run.

Each measured runner works in a fresh process, so that each peak RSS is its own:

- ``limit``: bare ``session.run`` on pre-made inputs, same threads and providers: what ONNX
  Runtime allows;
- ``edge``: the whole pipeline, file decode to report through the egress gate into a JSON Lines
  sink, under the legal gate like any run;
- ``ultralytics``: ``benchmarks/ultralytics_baseline.py`` run by the baseline's own virtual
  environment (``benchmarks/ultralytics-env.sh``), when there is one. It is never imported here.

Every runner reports the same figures: per-frame milliseconds (the first frame is warm-up and not
counted), CPU seconds, peak RSS, RSS over time, and the counts on the camera's first line.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from edge import __version__
from edge.analytics.counting import DIRECTIONS
from edge.analytics.detections import COUNTED_CLASSES
from edge.analytics.evaluation import count_error, read_mot_gt, true_crossings
from edge.config import (
    CameraConfig,
    DetectorConfig,
    LineConfig,
    Settings,
    load_settings,
    with_overrides,
)
from edge.errors import ConfigError, EdgeError, ModelError
from edge.progress import Progress
from edge.vision.live import is_live

Counts = dict[str, dict[str, int]]  # direction -> category -> passages
HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "ultralytics_baseline.py"
DEFAULT_BASELINE_PYTHON = Path("benchmarks/.venv-ultralytics/bin/python")
BASELINE_CLASSES = sorted(COUNTED_CLASSES)
CATEGORY_OF_CLASS = {name: cat.value for name, cat in COUNTED_CLASSES.values()}


@dataclass
class Measurement:
    """What one runner did on one clip with one model."""

    runner: str
    frames: int
    frame_ms: list[float]
    cpu_s: float
    peak_rss_mb: float
    rss_mb: list[tuple[float, float]]  # (seconds since the first frame, MB)
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean per frame, ours only
    counts: Counts | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        total = sum(self.frame_ms)
        return len(self.frame_ms) / total * 1e3 if total else 0.0

    def summary(self) -> dict[str, Any]:
        p50, p95, p99 = np.percentile(np.asarray(self.frame_ms or [0.0]), [50, 95, 99])
        return {
            "runner": self.runner,
            "frames": self.frames,
            "fps": round(self.fps, 2),
            "latency_ms": {"p50": round(p50, 2), "p95": round(p95, 2), "p99": round(p99, 2)},
            "cpu_ms_per_frame": round(self.cpu_s * 1e3 / max(len(self.frame_ms), 1), 2),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()},
            "counts": self.counts,
            **self.notes,
        }


def rss_mb() -> float:
    """Resident set size now, from /proc (0 where there is none)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """The process's high-water mark, model, libraries and all: what a user pays."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Probe:
    """Called once per frame: keeps the frame times, CPU time and RSS samples."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.rss: list[tuple[float, float]] = []
        self._cpu_start = 0.0

    def __call__(self) -> None:
        now = time.perf_counter()
        if not self.marks:  # the first frame is warm-up: CPU time counts from its end
            self._cpu_start = time.process_time()
        self.marks.append(now)
        self.rss.append((round(now - self.marks[0], 3), round(rss_mb(), 1)))

    def measurement(self, runner: str, **extra: Any) -> Measurement:
        return Measurement(
            runner=runner,
            frames=len(self.marks),
            frame_ms=np.round(np.diff(self.marks) * 1e3, 3).tolist(),
            cpu_s=time.process_time() - self._cpu_start,
            peak_rss_mb=peak_rss_mb(),
            rss_mb=self.rss,
            **extra,
        )


def measure_limit(
    model: Path, clip: str, frames: int, threads: int | None, detector: DetectorConfig
) -> Measurement:
    """(a) ``session.run`` alone on letterboxed frames of the clip, made before the clock starts."""
    from edge.detect.runtime import OnnxRuntime
    from edge.detect.yolo import letterbox
    from edge.vision.sources import open_source

    runtime = OnnxRuntime.configured(model, detector, threads)
    source = open_source(clip, "bench")
    blobs = []
    for frame in source:  # a few distinct inputs: the cost does not depend on the picture
        blobs.append(letterbox(frame.image, runtime.info.input_size)[0])
        if len(blobs) == min(frames, 8):
            break
    source.close()
    runtime.run(blobs[0])
    probe = Probe()
    bar = Progress(frames, "limit")
    for i in range(frames):
        runtime.run(blobs[i % len(blobs)])
        probe()
        bar.advance()
    bar.close()
    return probe.measurement("limit", notes={"providers": runtime.providers})


def measure_edge(
    config: Path, camera_id: str, model: Path, frames: int, threads: int | None, sink: Path
) -> Measurement:
    """(b) ``edge.app.count``: decode, motion gate, detect, track, count, aggregate, egress gate."""
    from edge.app import build_detector, count
    from edge.publish.sinks import JsonlSink

    settings = _settings_for(config, model, threads)
    camera = next(c for c in settings.cameras if c.id == camera_id)
    detector = build_detector(settings)
    jsonl = JsonlSink(sink)
    probe = Probe()
    try:
        result = count(
            settings, camera, audit_log=sink.parent / "audit.jsonl", detector=detector,
            progress=False, sinks=[jsonl], max_frames=frames or None, on_frame=probe,
        )  # fmt: skip
    finally:
        jsonl.close()
    line = camera.lines[0].name if camera.lines else None
    counts = result.line_totals()[line] if line else None
    stage_ms = result.times.mean_per_frame(result.frames)
    return probe.measurement(
        "edge",
        stage_ms=stage_ms,
        counts=counts,
        notes={
            "providers": result.providers,
            "frames_detected": result.frames - result.skipped,
            "reports": len(result.windows),
        },
    )


def _settings_for(config: Path, model: Path, threads: int | None) -> Settings:
    return with_overrides(load_settings(config), {"detector": {"model": model, "threads": threads}})


def _child(conn: Connection, work: Callable[..., Measurement], args: tuple[Any, ...]) -> None:
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        conn.send(work(*args))
    except EdgeError as err:
        conn.send(err)
    conn.close()


def in_fresh_process(work: Callable[..., Measurement], *args: Any) -> Measurement:
    """``work(*args)`` in a new interpreter, so its memory high-water mark is its own."""
    context = mp.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(send, work, args))
    process.start()
    send.close()
    try:
        answer = receive.recv()
    except EOFError:
        process.join()
        answer = EdgeError(f"{work.__name__} died with exit code {process.exitcode}")
    process.join()
    if isinstance(answer, EdgeError):
        raise answer
    return answer  # type: ignore[no-any-return]


def measure_ultralytics(
    python: Path, clip: str, model: Path, line: LineConfig, frames: int, conf: float, iou: float
) -> Measurement:
    """(c) The baseline harness in its own environment; its JSON becomes a ``Measurement``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ultralytics.json"
        (x1, y1), (x2, y2) = line.start, line.end
        command = [
            str(python), str(HARNESS), "--clip", clip, "--model", str(model),
            "--line", f"{x1:g},{y1:g},{x2:g},{y2:g}",
            "--classes", ",".join(map(str, BASELINE_CLASSES)),
            "--conf", str(conf), "--iou", str(iou), "--frames", str(frames),
            "--config-dir", tmp, "--json", str(out),
        ]  # fmt: skip
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise EdgeError(f"ultralytics baseline failed (exit {done.returncode}): {last}")
        doc = json.loads(out.read_text())
    counts: Counts = {d: dict.fromkeys(CATEGORY_OF_CLASS.values(), 0) for d in DIRECTIONS}
    for direction, per_class in doc["counts_ours_convention"].items():
        for name, n in per_class.items():
            if name in CATEGORY_OF_CLASS:
                counts[direction][CATEGORY_OF_CLASS[name]] += int(n)
    keep = ("ultralytics_version", "torch_version", "nms", "tracker", "direction_rule")
    return Measurement(
        runner="ultralytics",
        frames=int(doc["frames"]),
        frame_ms=[float(ms) for ms in doc["frame_ms"]],
        cpu_s=float(doc["cpu_ms_per_frame"]) * len(doc["frame_ms"]) / 1e3,
        peak_rss_mb=float(doc["peak_rss_mb"]),
        rss_mb=[(float(t), float(mb)) for t, mb in doc["rss_mb"]],
        counts=counts,
        notes={k: doc[k] for k in keep if k in doc},
    )


def ground_truth(camera: CameraConfig, frames: int, explicit: Path | None) -> Counts | None:
    """True passages on the camera's first line, from a MOTChallenge ``gt/gt.txt`` beside the
    clip (or the one given), over the frames measured; None when there is none."""
    path = explicit or Path(camera.source).parent / "gt" / "gt.txt"
    if not camera.lines or not path.is_file():
        return None
    truth = read_mot_gt(path)
    if frames:
        truth = {k: (idx[idx < frames], xyxy[idx < frames]) for k, (idx, xyxy) in truth.items()}
    crossings = true_crossings(truth, camera.lines[0])
    return {d: {"pedestrian": n} for d, n in crossings.items()}


def _error(truth: Counts, counts: Counts | None) -> float | None:
    if counts is None:
        return None
    t: dict[str, int] = {d: truth[d]["pedestrian"] for d in DIRECTIONS}
    c: dict[str, int] = {d: counts[d]["pedestrian"] for d in DIRECTIONS}
    return round(count_error(t, c), 3)


def ratios(
    limit: Measurement, ours: Measurement, baseline: Measurement | None, truth: Counts | None
) -> dict[str, float | None]:
    """The figures of merit, under the names the issue tracker and the README use."""
    return {
        "pipeline_efficiency": round(ours.fps / limit.fps, 3) if limit.fps else None,
        "speedup_vs_ultralytics": round(ours.fps / baseline.fps, 3)
        if baseline and baseline.fps
        else None,
        "rss_ratio_ultralytics_over_ours": round(baseline.peak_rss_mb / ours.peak_rss_mb, 2)
        if baseline and ours.peak_rss_mb
        else None,
        "count_error_edge": _error(truth, ours.counts) if truth else None,
        "count_error_ultralytics": _error(truth, baseline.counts) if truth and baseline else None,
    }


def machine() -> dict[str, Any]:
    import cv2
    import onnxruntime

    cpu = platform.processor()
    try:
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "edge": __version__,
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
    }


def run_bench(
    config: Path,
    models: Sequence[Path],
    out: Path,
    frames: int = 0,
    threads: int | None = 2,
    baseline_python: Path | None = None,
    gt: dict[str, Path] | None = None,
    command: str = "",
    say: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
    warn_no_baseline: bool = True,
) -> dict[str, Any]:
    """Every recorded camera of ``config`` x every model, each runner in turn; writes
    ``bench.json`` and ``bench.md`` into ``out`` and returns the JSON document (the plots are
    ``benchmarks/plot_bench.py``'s)."""
    settings = load_settings(config)
    cameras = [c for c in settings.cameras if not is_live(c.source)]
    if not cameras:
        raise ConfigError([f"{config}: cameras: no recorded clip to benchmark"])
    for model in models:  # before minutes of work on the others
        if not model.is_file():
            raise ModelError(f"{model}: model file not found")
    if baseline_python is not None and not HARNESS.is_file():
        raise ConfigError([f"{HARNESS}: the Ultralytics harness is missing"])
    if baseline_python is None and warn_no_baseline:
        say(
            "Ultralytics baseline skipped: no environment at benchmarks/.venv-ultralytics "
            "(make it with benchmarks/ultralytics-env.sh)"
        )
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for camera in cameras:
        for model in models:
            say(f"{camera.id} x {model.name}")
            n = frames or _frame_count(camera.source)
            limit = in_fresh_process(
                measure_limit, model, camera.source, n, threads, settings.detector
            )
            sink = out / f"reports-{camera.id}-{model.stem}.jsonl"
            sink.unlink(missing_ok=True)
            ours = in_fresh_process(measure_edge, config, camera.id, model, frames, threads, sink)
            baseline = None
            if baseline_python is not None and camera.lines:
                say("  ultralytics baseline")
                baseline = measure_ultralytics(
                    baseline_python, camera.source, model, camera.lines[0], frames,
                    settings.detector.confidence, settings.detector.iou,
                )  # fmt: skip
            truth = ground_truth(camera, frames, (gt or {}).get(camera.id))
            measured = [m for m in (limit, ours, baseline) if m is not None]
            runs.append(
                {
                    "camera": camera.id,
                    "clip": camera.source,
                    "model": model.name,
                    "line": camera.lines[0].model_dump(mode="json") if camera.lines else None,
                    "ground_truth": truth,
                    "runners": {m.runner: m.summary() for m in measured},
                    "series": {
                        m.runner: {"frame_ms": m.frame_ms, "rss_mb": m.rss_mb} for m in measured
                    },
                    "ratios": ratios(limit, ours, baseline, truth),
                }
            )
    doc = {
        "command": command,
        "machine": machine(),
        "threads": threads,
        "frames": frames or "all",
        "baseline": "ran" if baseline_python else "skipped: no Ultralytics environment",
        "runs": runs,
    }
    (out / "bench.json").write_text(json.dumps(doc, indent=1))
    (out / "bench.md").write_text(markdown(doc))
    say(f"plots: python -m benchmarks.plot_bench {out}")
    return doc


def _frame_count(source: str) -> int:
    from edge.vision.sources import open_source

    clip = open_source(source, "bench")
    clip.close()
    return clip.expected_frames or 100


def markdown(doc: dict[str, Any]) -> str:
    """Three tables: every runner's figures, our per-stage split, and the ratios."""
    m = doc["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}, "
        f"ONNX Runtime {m['onnxruntime']}, OpenCV {m['opencv']}; {doc['threads']} intra-op "
        f"threads; frames: {doc['frames']}; Ultralytics baseline: {doc['baseline']}.",
        "",
        "| camera | model | runner | frames | fps | p50 ms | p95 ms | p99 ms | CPU ms/frame "
        "| peak RSS MB | line in | line out |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in doc["runs"]:
        truth = run["ground_truth"]
        if truth:
            lines.append(
                f"| {run['camera']} | {run['model']} | ground truth | | | | | | | | "
                f"{_cells(truth['in'])} | {_cells(truth['out'])} |"
            )
        for r in run["runners"].values():
            lat, c = r["latency_ms"], r["counts"]
            lines.append(
                f"| {run['camera']} | {run['model']} | {r['runner']} | {r['frames']} | {r['fps']} "
                f"| {lat['p50']} | {lat['p95']} | {lat['p99']} | {r['cpu_ms_per_frame']} "
                f"| {r['peak_rss_mb']} | {_cells(c['in']) if c else ''} "
                f"| {_cells(c['out']) if c else ''} |"
            )
    stages = list(next(iter(doc["runs"]))["runners"]["edge"]["stage_ms"]) if doc["runs"] else []
    lines += [
        "",
        "Our pipeline, milliseconds per frame by stage ('decode' is the wait for the decoding "
        "thread):",
        "",
        "| camera | model | " + " | ".join(stages) + " | frames detected |",
        "|---|---|" + "---|" * (len(stages) + 1),
    ]
    for run in doc["runs"]:
        edge = run["runners"]["edge"]
        cells = " | ".join(str(edge["stage_ms"][s]) for s in stages)
        lines.append(
            f"| {run['camera']} | {run['model']} | {cells} "
            f"| {edge['frames_detected']}/{edge['frames']} |"
        )
    keys = list(next(iter(doc["runs"]))["ratios"]) if doc["runs"] else []
    lines += ["", "| camera | model | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for run in doc["runs"]:
        cells = " | ".join("" if v is None else str(v) for v in run["ratios"].values())
        lines.append(f"| {run['camera']} | {run['model']} | {cells} |")
    return "\n".join(lines) + "\n"


def _cells(counts: dict[str, int]) -> str:
    return ", ".join(f"{c} {n}" for c, n in counts.items() if n) or "0"


def default_baseline_python() -> Path | None:
    return DEFAULT_BASELINE_PYTHON if DEFAULT_BASELINE_PYTHON.is_file() else None
