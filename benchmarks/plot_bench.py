"""Plots of an ``edge bench`` run: ``stages.png`` (where each frame's time goes), ``fps.png`` and
``rss.png`` (over the run), drawn from its ``bench.json``. Benchmark-only, so matplotlib stays
out of the package::

    .venv/bin/python -m benchmarks.plot_bench OUT
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def plot(doc: dict[str, Any], out: Path, say: Callable[[str], None]) -> None:
    """stages.png (where each frame's time goes), fps.png and rss.png (over the run)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("plots skipped: pip install matplotlib")
        return
    runs = doc["runs"]
    colours = {"limit": "black", "edge": "tab:green", "ultralytics": "tab:orange"}

    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.9 * len(runs) * 2))
    labels: list[str] = []
    labelled: set[str] = set()  # each legend entry once
    for run in runs:
        for name, r in run["runners"].items():
            mean_ms = 1e3 / r["fps"] if r["fps"] else 0.0
            if name == "edge":
                left = 0.0
                for i, (stage, ms) in enumerate(r["stage_ms"].items()):
                    label = None if stage in labelled else stage
                    ax.barh(len(labels), ms, left=left, color=plt.cm.tab10(i), label=label)
                    labelled.add(stage)
                    left += ms
            else:
                label = None if name in labelled else f"{name} (whole frame)"
                ax.barh(len(labels), mean_ms, color=colours[name], alpha=0.6, label=label)
                labelled.add(name)
            labels.append(f"{run['camera']} {run['model']} {name}")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per frame (edge: by stage)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Where each frame's time goes")
    fig.tight_layout()
    fig.savefig(out / "stages.png", dpi=110)
    plt.close(fig)

    for key, ylabel, name in (("frame_ms", "frames/s (10-frame mean)", "fps.png"),
                              ("rss_mb", "RSS (MB)", "rss.png")):  # fmt: skip
        fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.4 * len(runs)), squeeze=False)
        for ax, run in zip(axes[:, 0], runs, strict=True):
            for runner, series in run["series"].items():
                if key == "frame_ms":
                    ms = np.asarray(series["frame_ms"])
                    if ms.size == 0:
                        continue
                    t = np.cumsum(ms) / 1e3
                    window = min(10, ms.size)
                    fps = 1e3 * window / np.convolve(ms, np.ones(window), "valid")
                    ax.plot(t[window - 1 :], fps, label=runner, color=colours[runner])
                else:
                    points = np.asarray(series["rss_mb"]).reshape(-1, 2)
                    ax.plot(points[:, 0], points[:, 1], label=runner, color=colours[runner])
            ax.set_title(f"{run['camera']} / {run['model']}", fontsize=9)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.legend(fontsize=8)
        axes[-1, 0].set_xlabel("seconds since the first frame")
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder of an edge bench run (bench.json)")
    out = parser.parse_args().out
    plot(json.loads((out / "bench.json").read_text()), out, print)


if __name__ == "__main__":
    main()
