"""Ultralytics baseline: `solutions.ObjectCounter` on an ONNX model, timed frame by frame.

Run it with the baseline venv's python (made by benchmarks/ultralytics-env.sh), never the
project's: it imports only the standard library, numpy, cv2 and ultralytics, not `edge`.

    benchmarks/.venv-ultralytics/bin/python benchmarks/ultralytics_baseline.py \\
        --clip ../shared/clips/tud_campus/TUD-Campus.mp4 --model ../shared/models/yolo11n.onnx \\
        --line 320,0,320,480 --classes 0 --json out/ul_tud_yolo11n.json

What is timed: per frame, decode (cv2.VideoCapture.read) + one ObjectCounter call (preprocess,
ONNX Runtime, NMS, tracker, counting, drawing of its annotated frame; show=False). Model load
and one warm-up call on frame 0 are not timed; after the warm-up the clip is re-opened, the
tracker is re-created by Ultralytics' own `on_predict_start` and the counter's state is cleared,
so the timed loop starts cold from frame 0 exactly as an untimed run would. Peak RSS is the
whole process (VmHWM), model load and warm-up included: that is what a user pays.
Threads: by default (--threads 0) Ultralytics keeps its own choice: its select_device sets torch
to cpu_count - 1 threads, which on 2 cores is also its fastest (torch and ONNX Runtime do not
fight over the cores). --threads N forces torch to N threads, set again after the warm-up. ONNX
Runtime keeps its defaults (Ultralytics passes no SessionOptions: intra-op = physical cores).

How Ultralytics 8.4.190 counts on a two-point region (solutions/object_counter.py and
solutions/solutions.py, read from the installed source):
* the point is the box centre ((x1+x2)/2, (y1+y2)/2), stored per track id every frame;
* a track is counted when the segment from its previous centre (last frame it was seen) to its
  current centre intersects the region's line segment (shapely `intersects`, touching included);
* each track id is counted once only (`counted_ids`); ids retired by the tracker are dropped;
* direction ignores the order of the two points. If the line is "vertical" (|x2-x1| < |y2-y1|)
  IN = the centre moved right (x grew), else OUT; otherwise ("horizontal") IN = the centre moved
  down (y grew), else OUT.

Our convention: the line is directed A=(x1,y1) -> B=(x2,y2) and
side(P) = (Bx-Ax)*(Py-Ay) - (By-Ay)*(Px-Ax) (image coordinates, y down; positive = right-hand
side of someone walking A->B). "in" = positive -> negative side, "out" = negative -> positive.
Mapping rule for Ultralytics' raw counts, exact only for an axis-aligned line:
* vertical line (x1 == x2): ours "in" = UL IN (moving right) if y2 > y1, else UL OUT;
* horizontal line (y1 == y2): ours "in" = UL OUT (moving up) if x2 > x1, else UL IN.
For a diagonal line Ultralytics looks only at the sign of dx (or dy), so a crossing that moves
mostly along the line can get the opposite label from the side change; the raw counts can then
not be mapped exactly. The harness therefore also records every counting event (previous and
current centre) and classifies it by the sign of side(current) - side(previous), which is our
convention exactly for any line; that is what `counts_ours_convention` reports.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import importlib.metadata as metadata
import json
import logging
import math
import os
import resource
import sys
import tempfile
import time
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import cv2
import numpy as np

NMS_STAND_IN = "torchvision stand-in: ultralytics TorchNMS.nms"
COCO_CLASSES = 80


class InputError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        raise InputError(message)


def _floats(text: str, n: int, what: str) -> list[float]:
    """Parse `n` comma-separated finite numbers."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"{what}: expected {n} comma-separated numbers, got {text!r}") from None
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise InputError(f"{what}: expected {n} comma-separated numbers, got {text!r}")
    return values


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse and validate the command line (raises InputError)."""
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", required=True, type=Path, help="video file read with cv2")
    p.add_argument("--model", required=True, type=Path, help="ONNX detector (Ultralytics export)")
    p.add_argument("--line", required=True, help="x1,y1,x2,y2 in frame pixels, directed A->B")
    p.add_argument("--classes", default="0,1,2,3,5,7", help="COCO class ids, comma-separated")
    p.add_argument("--conf", type=float, default=0.25, help="detection confidence threshold")
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold")
    p.add_argument("--frames", type=int, default=0, help="frames to time (0 = all)")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: Ultralytics' own default)"
    )
    p.add_argument("--json", required=True, type=Path, help="output JSON file")
    p.add_argument(
        "--tracker", default=None, help="tracker YAML (default: ObjectCounter's own default)"
    )
    p.add_argument(
        "--config-dir", type=Path, default=None, help="YOLO_CONFIG_DIR (default: fresh temp dir)"
    )
    args = p.parse_args(argv)

    if not args.clip.is_file():
        raise InputError(f"--clip: no such file: {args.clip}")
    if args.model.suffix.lower() != ".onnx" or not args.model.is_file():
        raise InputError(f"--model: not an existing .onnx file: {args.model}")
    args.line = _floats(args.line, 4, "--line")
    if args.line[:2] == args.line[2:]:
        raise InputError("--line: the two points are the same")
    try:
        args.classes = sorted({int(c) for c in args.classes.split(",")})
    except ValueError:
        raise InputError(f"--classes: expected integers, got {args.classes!r}") from None
    if not all(0 <= c < COCO_CLASSES for c in args.classes):
        raise InputError(f"--classes: ids must be in 0..{COCO_CLASSES - 1}")
    if not 0.0 < args.conf <= 1.0:
        raise InputError("--conf: must be in (0, 1]")
    if not 0.0 < args.iou <= 1.0:
        raise InputError("--iou: must be in (0, 1]")
    if args.frames < 0:
        raise InputError("--frames: must be >= 0")
    if args.threads < 0:
        raise InputError("--threads: must be >= 0")
    if not args.json.parent.is_dir():
        raise InputError(f"--json: directory does not exist: {args.json.parent}")
    if args.config_dir is not None and args.config_dir.exists() and not args.config_dir.is_dir():
        raise InputError(f"--config-dir: not a directory: {args.config_dir}")
    return args


def install_nms_workaround() -> str:
    """Make `import torchvision` usable by Ultralytics; return which NMS it will use.

    The torchvision builds available here are CUDA builds whose compiled ops do not load with
    CPU torch (`operator torchvision::nms does not exist`, raised by `import torchvision`).
    Ultralytics imports torchvision before predicting and then calls `torchvision.ops.nms`
    (utils/nms.py, only when "torchvision" is in sys.modules). If the real one fails, a
    stand-in module is registered whose `ops.nms` is Ultralytics' own `TorchNMS.nms`
    (ultralytics/utils/nms.py, documented to match torchvision exactly). Must run before
    ultralytics is imported; `bind_torch_nms` then binds the real function.
    """
    import torch

    try:
        import torchvision

        torchvision.ops.nms(torch.zeros((1, 4)), torch.ones(1), 0.5)
        return "torchvision"
    except Exception:  # CUDA-built torchvision raises RuntimeError on import
        pass
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]  # drop what the failed import left half-initialised

    def nms(boxes: Any, scores: Any, iou_threshold: float) -> Any:
        """Delegate to Ultralytics' TorchNMS.nms (replaced by it once ultralytics is loaded)."""
        from ultralytics.utils.nms import TorchNMS

        return TorchNMS.nms(boxes, scores, iou_threshold)

    tv = types.ModuleType("torchvision", "Stand-in: only ops.nms, from Ultralytics' TorchNMS.")
    ops = types.ModuleType("torchvision.ops", "Stand-in: nms = ultralytics TorchNMS.nms.")
    ops.nms = nms  # type: ignore[attr-defined]
    tv.ops = ops  # type: ignore[attr-defined]
    tv.__version__ = metadata.version("torchvision")  # type: ignore[attr-defined]
    tv.__path__ = []  # a package, so `import torchvision.ops` resolves from sys.modules
    tv.__spec__ = importlib.machinery.ModuleSpec("torchvision", None, is_package=True)
    ops.__spec__ = importlib.machinery.ModuleSpec("torchvision.ops", None)
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.ops"] = ops
    return NMS_STAND_IN


def bind_torch_nms() -> None:
    """Point the stand-in's ops.nms at TorchNMS.nms itself (after ultralytics is imported)."""
    from ultralytics.utils.nms import TorchNMS

    sys.modules["torchvision.ops"].nms = TorchNMS.nms  # type: ignore[attr-defined]


def rss_mb() -> float:
    """Current resident set size of this process in MB (from /proc/self/statm)."""
    resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (VmHWM from /proc/self/status)."""
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith("VmHWM:"):
            return int(row.split()[1]) * 1024 / 1e6
    raise RuntimeError("VmHWM not found in /proc/self/status")


def cpu_s() -> float:
    """User + system CPU seconds of the whole process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def system_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside)
    return (total - idle) / tick, total / tick


def side(line: Sequence[float], x: float, y: float) -> float:
    """Our side function: positive on the right-hand side of someone walking A->B."""
    ax, ay, bx, by = line
    return (bx - ax) * (y - ay) - (by - ay) * (x - ax)


def raw_to_ours(line: Sequence[float]) -> tuple[dict[str, str] | None, str]:
    """Map Ultralytics' IN/OUT to our in/out for this line: (mapping or None, rule text)."""
    ax, ay, bx, by = line
    vertical = abs(ax - bx) < abs(ay - by)  # Ultralytics' own orientation test
    if ax == bx:
        m = {"in": "IN", "out": "OUT"} if by > ay else {"in": "OUT", "out": "IN"}
        return m, f"vertical line: ours in = Ultralytics {m['in']} (exact)"
    if ay == by:
        m = {"in": "OUT", "out": "IN"} if bx > ax else {"in": "IN", "out": "OUT"}
        return m, f"horizontal line: ours in = Ultralytics {m['in']} (exact)"
    kind = "vertical" if vertical else "horizontal"
    return None, (
        f"diagonal line (Ultralytics treats it as {kind}: IN = moving "
        f"{'right' if vertical else 'down'}): raw counts cannot be mapped exactly; "
        "counts_ours_convention comes from the per-event side change"
    )


def make_counter_class(base: type) -> type:
    """Subclass ObjectCounter to record every counting event; counting itself is unchanged."""

    class RecordingCounter(base):  # type: ignore[misc, valid-type]
        """ObjectCounter that also keeps (class, previous centre, current centre, IN/OUT)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.events: list[tuple[int, tuple[float, float], tuple[float, float], str]] = []

        def count_objects(
            self,
            current_centroid: tuple[float, float],
            track_id: int,
            prev_position: tuple[float, float] | None,
            cls: int,
        ) -> None:
            n_in, n_out = self.in_count, self.out_count
            super().count_objects(current_centroid, track_id, prev_position, cls)
            if (self.in_count, self.out_count) != (n_in, n_out) and prev_position is not None:
                label = "IN" if self.in_count > n_in else "OUT"
                self.events.append((int(cls), prev_position, current_centroid, label))

        def clear_counts(self) -> None:
            """Forget all tracks and counts (after the warm-up frame)."""
            self.in_count = self.out_count = 0
            self.counted_ids.clear()
            self.classwise_count.clear()
            self.track_history.clear()
            self.events.clear()

    return RecordingCounter


def ours_from_events(
    events: list[tuple[int, tuple[float, float], tuple[float, float], str]],
    line: Sequence[float],
    names: dict[int, str],
    classes: list[int],
) -> tuple[dict[str, dict[str, int]], int]:
    """Classify each counting event by our side change; return counts and unresolved events."""
    counts: dict[str, dict[str, int]] = {d: {names[c]: 0 for c in classes} for d in ("in", "out")}
    unresolved = 0
    for cls, (px, py), (cx, cy), _ in events:
        change = side(line, cx, cy) - side(line, px, py)
        if change == 0:  # moved along the line while touching it: no side change
            unresolved += 1
            continue
        d = "in" if change < 0 else "out"
        counts[d][names[cls]] = counts[d].get(names[cls], 0) + 1
    return counts, unresolved


def ort_intra_op_threads(counter: Any) -> int | None:
    """intra_op_num_threads of Ultralytics' ONNX Runtime session (0 = ORT default)."""
    with contextlib.suppress(Exception):
        session = counter.model.predictor.model.backend.session
        return int(session.get_session_options().intra_op_num_threads)
    return None


def percentile_ms(values: np.ndarray, q: float) -> float:
    """q-th percentile (linear interpolation) rounded to 0.01 ms."""
    return round(float(np.percentile(values, q)), 2)


def open_clip(path: Path) -> cv2.VideoCapture:
    """Open a clip with cv2; raise InputError if it cannot be read."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputError(f"--clip: cv2 cannot open {path}")
    return cap


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up, run the timed loop and return the result record."""
    config_dir = args.config_dir or Path(tempfile.mkdtemp(prefix="yolo-config-"))
    config_dir.mkdir(parents=True, exist_ok=True)
    os.environ["YOLO_OFFLINE"] = "1"  # no network: no downloads, no telemetry, no pip AutoUpdate
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir)
    os.environ["YOLO_AUTOINSTALL"] = "False"  # never pip-install into the venv at run time
    os.environ["YOLO_VERBOSE"] = "False"

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    nms = install_nms_workaround()

    import ultralytics
    from ultralytics import YOLO, solutions
    from ultralytics.solutions.config import SolutionConfig
    from ultralytics.trackers.track import on_predict_start

    if nms == NMS_STAND_IN:
        bind_torch_nms()
    for handler in logging.getLogger("ultralytics").handlers:  # its errors: stderr, not stdout
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)

    cap = open_clip(args.clip)
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise InputError(f"--clip: no frame could be decoded from {args.clip}")
    height, width = frame.shape[:2]

    tracker = args.tracker or SolutionConfig().tracker
    line = args.line
    try:
        t_setup = time.perf_counter()
        model = YOLO(str(args.model), task="detect")
        counter = make_counter_class(solutions.ObjectCounter)(
            model=model,
            region=[(line[0], line[1]), (line[2], line[3])],
            classes=args.classes,
            conf=args.conf,
            iou=args.iou,
            tracker=tracker,
            show=False,
            verbose=False,
        )
        setup_s = time.perf_counter() - t_setup
        # Warm-up on frame 0 (ORT session, predictor, tracker, first inference), untimed.
        t_warm = time.perf_counter()
        counter(frame)
        warmup_ms = (time.perf_counter() - t_warm) * 1e3
    except Exception as exc:  # a model (or tracker) Ultralytics cannot load or run
        first = (str(exc).strip().splitlines() or [""])[0]
        raise InputError(
            f"--model/--tracker: Ultralytics failed: {type(exc).__name__}: {first}"
        ) from exc
    names: dict[int, str] = dict(counter.names)
    on_predict_start(counter.model.predictor, persist=False)  # fresh tracker, ids from 1
    counter.clear_counts()
    # Ultralytics' select_device (run by the warm-up) resets torch to cpu_count - 1 threads.
    ul_torch_threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    process_threads = sum(1 for _ in Path("/proc/self/task").iterdir())
    imgsz = [int(v) for v in counter.model.predictor.imgsz]

    cap = open_clip(args.clip)
    frame_ms: list[float] = []
    rss: list[list[float]] = []
    load_before = os.getloadavg()
    sys0 = system_cpu_s()
    cpu0 = cpu_s()
    t0 = time.perf_counter()
    while args.frames == 0 or len(frame_ms) < args.frames:
        t_frame = time.perf_counter()
        ok, frame = cap.read()
        if not ok:
            break
        counter(frame)
        t_end = time.perf_counter()
        frame_ms.append(round((t_end - t_frame) * 1e3, 3))
        rss.append([round(t_end - t0, 4), round(rss_mb(), 1)])
    wall_s = time.perf_counter() - t0
    cpu_used = cpu_s() - cpu0
    sys1 = system_cpu_s()
    busy_s, total_s = sys1[0] - sys0[0], sys1[1] - sys0[1]
    cap.release()
    n = len(frame_ms)
    if n == 0:
        raise InputError(f"--clip: no frame could be decoded from {args.clip}")
    if args.frames and n < args.frames:
        print(f"note: clip has only {n} frames (--frames {args.frames})", file=sys.stderr)

    mapping, rule = raw_to_ours(line)
    ours, unresolved = ours_from_events(counter.events, line, names, args.classes)
    classwise = {k: dict(v) for k, v in counter.classwise_count.items()}
    ours_from_raw = None
    if mapping is not None:
        ours_from_raw = {
            d: {names[c]: classwise.get(names[c], {}).get(mapping[d], 0) for c in args.classes}
            for d in ("in", "out")
        }
    lat = np.asarray(frame_ms)
    return {
        "tool": "ultralytics solutions.ObjectCounter",
        "ultralytics_version": ultralytics.__version__,
        "torch_version": torch.__version__,
        "onnxruntime_version": metadata.version("onnxruntime"),
        "opencv_version": cv2.__version__,
        "nms": nms,
        "tracker": tracker,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "torch_threads_ultralytics_default": ul_torch_threads,
        "ort_intra_op_threads": ort_intra_op_threads(counter),
        "ort_threads_note": "Ultralytics passes no SessionOptions: 0 = ORT default "
        "(one intra-op thread per physical core)",
        "cpu_count": os.cpu_count(),
        "process_threads": process_threads,
        "clip": str(args.clip),
        "clip_size": [width, height],
        "model": str(args.model),
        "imgsz": imgsz,
        "line": line,
        "classes": args.classes,
        "class_names": [names[c] for c in args.classes],
        "conf": args.conf,
        "iou": args.iou,
        "frames": n,
        "wall_s": round(wall_s, 3),
        "fps": round(n / wall_s, 2),
        "latency_ms": {
            "p50": percentile_ms(lat, 50),
            "p95": percentile_ms(lat, 95),
            "p99": percentile_ms(lat, 99),
            "mean": round(float(lat.mean()), 2),
            "max": round(float(lat.max()), 2),
        },
        "cpu_ms_per_frame": round(cpu_used * 1e3 / n, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "machine_load": {
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            "busy_pct_all_cores": round(100 * busy_s / total_s, 1) if total_s else None,
            "other_processes_cpu_s": round(busy_s - cpu_used, 2),
            "note": "CPU used on the machine by other processes during the timed loop "
            "(/proc/stat busy minus this process); > 0 means the figures are contended",
        },
        "setup_s": round(setup_s, 3),
        "warmup_ms": round(warmup_ms, 1),
        "rss_mb": rss,
        "frame_ms": frame_ms,
        "counts_raw": {
            "in_count": counter.in_count,
            "out_count": counter.out_count,
            "classwise": classwise,
        },
        "counts_ours_convention": ours,
        "counts_ours_method": "each Ultralytics counting event classified by the sign of "
        "side(current centre) - side(previous centre): negative = in, positive = out",
        "counts_ours_unresolved": unresolved,
        "counts_ours_from_raw_mapping": ours_from_raw,
        "mapping_exact": mapping is not None,
        "direction_rule": {
            "ultralytics": "box centre; counted once per track id when the segment from its "
            "previous to its current centre intersects the line segment; if |x2-x1| < |y2-y1| "
            "IN = moved right else OUT, otherwise IN = moved down else OUT; point order ignored",
            "ours": "A=(x1,y1)->B=(x2,y2), side(P)=(Bx-Ax)*(Py-Ay)-(By-Ay)*(Px-Ax), "
            "in = positive->negative side, out = negative->positive",
            "mapping": rule,
        },
        "warmup": "one untimed ObjectCounter call on frame 0 (after model load); then the clip "
        "is re-opened, the tracker re-created (ultralytics on_predict_start) and the counter "
        "cleared, so the timed loop covers frames 0..N-1 from a cold tracker",
        "timing": "latency = cap.read() + counter(frame) per frame; fps = frames / wall_s of "
        "the loop; cpu = getrusage user+sys of the whole process over the loop / frames; "
        "peak_rss = VmHWM of the whole process (model load and warm-up included); rss_mb = "
        "[seconds since loop start, MB] from /proc/self/statm after each frame",
    }


def summary(r: dict[str, Any]) -> str:
    """One-line human summary."""
    ours = r["counts_ours_convention"]
    lat = r["latency_ms"]
    return (
        f"{Path(r['model']).name} on {Path(r['clip']).name}: {r['frames']} frames, "
        f"{r['fps']} fps, p50/p95/p99 {lat['p50']}/{lat['p95']}/{lat['p99']} ms, "
        f"cpu {r['cpu_ms_per_frame']} ms/frame, peak RSS {r['peak_rss_mb']} MB, "
        f"others' cpu {r['machine_load']['other_processes_cpu_s']} s, "
        f"raw IN {r['counts_raw']['in_count']} OUT {r['counts_raw']['out_count']}, "
        f"ours in {sum(ours['in'].values())} out {sum(ours['out'].values())}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 on success, 2 on bad input."""
    try:
        args = parse_args(argv)
        with contextlib.redirect_stdout(sys.stderr):  # keep stdout clean of library prints
            result = run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(summary(result), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
