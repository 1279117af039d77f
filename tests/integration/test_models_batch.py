"""``edge models batch`` on the real 320x320 YOLO11n, and the graphs it must refuse.

The conversion runs once per module, through the command line (a few seconds on 2 cores); the
tests then compare the copy with the original in their own sessions, not through the
converter's own check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edge.detect.batch import BATCH_AXIS, MAX_RELATIVE_DIFF, METADATA_KEY, make_batch_dynamic
from edge.detect.detector import YoloDetector
from edge.detect.runtime import OnnxRuntime
from edge.errors import ModelError
from tests.conftest import shared_file
from tests.support.cli import assert_one_line_error, edge


@pytest.fixture(scope="module")
def original() -> Path:
    return shared_file("models/yolo11n_320.onnx")


@pytest.fixture(scope="module")
def converted(
    original: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """``edge models batch yolo11n_320.onnx --out ...``, run once: (new file, the run)."""
    out = tmp_path_factory.mktemp("batch") / "yolo11n_320_batch.onnx"
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    # Module scope: the per-test audit file (``edge_argv``) does not exist yet.
    argv = [sys.executable, "-m", "edge", "--audit-log", str(audit), "models", "batch"]
    run = subprocess.run(
        [*argv, str(original), "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return out, run


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def images(count: int, seed: int) -> npt.NDArray[np.float32]:
    return np.random.default_rng(seed).random((count, 3, 320, 320), dtype=np.float32)


def assert_close(got: npt.NDArray[np.float32], want: npt.NDArray[np.float32]) -> None:
    assert got.shape == want.shape
    scale = float(np.abs(want).max())
    assert float(np.abs(got - want).max()) <= MAX_RELATIVE_DIFF * scale


def test_the_command_prints_each_change_and_the_difference(
    converted: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, run = converted
    lines = run.stdout.rstrip().splitlines()
    assert "  input images: 1x3x320x320 -> batchx3x320x320" in lines
    assert "  output output0: 1x84x2100 -> batchx84x2100" in lines
    reshapes = [line for line in lines if line.startswith("  Reshape '")]
    assert len(reshapes) == 11  # attention (3), per-scale flatten (6), DFL (2)
    assert "  Reshape '/model.23/dfl/Reshape': shape [1, 4, 16, 2100] -> [0, 4, 16, 2100]" in lines
    assert lines[-1].startswith(f"{out}: batch axis dynamic ('batch'), 13 changes; outputs at ")
    assert "batch 1, 2, 4 equal the original's within" in lines[-1]


def test_the_graph_has_a_symbolic_batch_and_keeps_the_metadata(
    converted: tuple[Path, subprocess.CompletedProcess[str]], original: Path
) -> None:
    out, _ = converted
    model, before = onnx.load(str(out)), onnx.load(str(original))
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == BATCH_AXIS
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta.pop(METADATA_KEY).startswith("edge models batch: 13 changes")
    assert meta == {p.key: p.value for p in before.metadata_props}
    info = OnnxRuntime(out).info
    assert (info.batch, info.input_size, info.outputs) == (None, (320, 320), 2100)
    assert "batch       dynamic" in edge("models", "info", str(out)).stdout.splitlines()


def test_batch_1_equals_the_original(
    converted: tuple[Path, subprocess.CompletedProcess[str]], original: Path
) -> None:
    blob = images(1, seed=10)
    want = session(original).run(None, {"images": blob})[0]
    got = session(converted[0]).run(None, {"images": blob})[0]
    assert_close(got, want)


def test_batch_3_equals_three_single_runs(
    converted: tuple[Path, subprocess.CompletedProcess[str]], original: Path
) -> None:
    blob = images(3, seed=11)
    reference = session(original)
    want = np.concatenate([reference.run(None, {"images": blob[i : i + 1]})[0] for i in range(3)])
    got = session(converted[0]).run(None, {"images": blob})[0]
    assert got.shape == (3, 84, 2100)
    assert_close(got, want)


def test_the_detector_finds_the_same_objects_on_bus_jpg(
    converted: tuple[Path, subprocess.CompletedProcess[str]], original: Path
) -> None:
    bus = cv2.imread(str(shared_file("images/bus.jpg")))
    (want,) = YoloDetector(OnnxRuntime(original)).detect([bus])
    batched = YoloDetector(OnnxRuntime(converted[0]))
    (one,) = batched.detect([bus])  # batch 1 on the bound buffers
    two = batched.detect([bus, cv2.flip(bus, 1)])  # one call with batch 2
    assert len(want) >= 5
    for got in (one, two[0]):
        np.testing.assert_allclose(got.xyxy, want.xyxy, atol=0.05)
        np.testing.assert_allclose(got.confidence, want.confidence, atol=1e-4)
        np.testing.assert_array_equal(got.class_id, want.class_id)


def test_an_already_dynamic_model_is_refused(
    converted: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match=r"already has a dynamic batch \(batchx3x320x320\)"):
        make_batch_dynamic(converted[0], tmp_path / "again.onnx")
    assert list(tmp_path.iterdir()) == []


def tiny_detector(path: Path, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> Path:
    """images (1, 3, 32, 32) -> ``nodes`` -> output0 (1, 6, 512), with detector metadata."""
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 512])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.metadata_props.add(key="names", value="{0: 'person', 1: 'bicycle'}")
    onnx.save(model, str(path))
    return path


def shape(name: str, dims: list[int]) -> onnx.TensorProto:
    return helper.make_tensor(name, TensorProto.INT64, [len(dims)], dims)


def folding_model(path: Path) -> Path:
    """Reshapes (1, 3, 32, 32) to (3, 1024): the batch axis is gone, merged with the channels."""
    return tiny_detector(
        path,
        [
            helper.make_node("Reshape", ["images", "fold"], ["folded"], name="fold"),
            helper.make_node("Reshape", ["folded", "out"], ["output0"], name="unfold"),
        ],
        [shape("fold", [3, 1024]), shape("out", [1, 6, 512])],
    )


def computed_shape_model(path: Path) -> Path:
    """The target shape (1, 6, 512) is computed at run time (zeros + shape): no constant to fix."""
    return tiny_detector(
        path,
        [
            helper.make_node("Add", ["zeros", "base"], ["target"], name="target"),
            helper.make_node("Reshape", ["images", "target"], ["output0"], name="reshape"),
        ],
        [shape("zeros", [0, 0, 0]), shape("base", [1, 6, 512])],
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            folding_model,
            "Reshape 'fold' folds the batch axis into others (shape [3, 1024])",
        ),
        (
            computed_shape_model,
            "the converted graph fails at batch 2 (node 'reshape': The input tensor cannot be "
            "reshaped to the requested shape. Input shape:{2,3,32,32}, requested shape:{1,6,512})",
        ),
    ],
)
def test_a_graph_that_cannot_take_a_batch_is_refused_and_nothing_is_written(
    make: object, reason: str, tmp_path: Path
) -> None:
    assert callable(make)
    model = make(tmp_path / "tiny.onnx")
    out = tmp_path / "out" / "tiny_batch.onnx"
    out.parent.mkdir()
    result = edge("models", "batch", str(model), "--out", str(out))
    assert_one_line_error(result, f"{model}: cannot make the batch axis dynamic: ", reason)
    assert result.stderr.rstrip().endswith("; nothing written")
    assert list(out.parent.iterdir()) == []  # no output, no partial file


def test_a_dynamically_quantised_model_is_refused(tmp_path: Path) -> None:
    model = shared_file("models/yolo11n_int8_320.onnx")
    with pytest.raises(ModelError) as caught:
        make_batch_dynamic(model, tmp_path / "int8_batch.onnx")
    (line,) = caught.value.lines
    assert line.startswith(f"{model}: cannot make the batch axis dynamic: DynamicQuantizeLinear")
    assert "one quantisation scale over the whole batch" in line
    assert list(tmp_path.iterdir()) == []
