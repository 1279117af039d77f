"""A model with a symbolic batch axis (``edge models batch``) runs one frame exactly as a batch-1
model does: same bound buffers, same output; several frames go in one call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge.detect.detector import YoloDetector
from edge.detect.runtime import OnnxRuntime
from tests.support.onnx_models import reshape_model

NAMES = {"task": "detect", "names": "{0: 'person', 1: 'bicycle'}"}


def batch_model(path: Path, batch: int | str) -> Path:
    """images (B, 3, 32, 32) -> output0 (B, 6, 512): the same values, reshaped per image."""
    first = 0 if isinstance(batch, str) else batch  # 0: copy the input's batch (ONNX Reshape)
    return reshape_model(path, [batch, 3, 32, 32], [batch, 6, 512], [first, 6, 512], NAMES)


@pytest.fixture
def fixed(tmp_path: Path) -> OnnxRuntime:
    return OnnxRuntime(batch_model(tmp_path / "fixed.onnx", 1))


@pytest.fixture
def dynamic(tmp_path: Path) -> OnnxRuntime:
    return OnnxRuntime(batch_model(tmp_path / "dynamic.onnx", "batch"))


def test_a_symbolic_batch_is_read_as_dynamic_with_the_same_sizes(
    fixed: OnnxRuntime, dynamic: OnnxRuntime
) -> None:
    assert fixed.info.batch == 1
    assert dynamic.info.batch is None
    assert dynamic.info.input_size == fixed.info.input_size == (32, 32)
    assert dynamic.info.outputs == fixed.info.outputs == 512
    assert dynamic.info.names == fixed.info.names


def test_one_frame_runs_on_the_bound_buffers_as_with_batch_1(
    fixed: OnnxRuntime, dynamic: OnnxRuntime
) -> None:
    blob = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    results = []
    for runtime in (fixed, dynamic):
        runtime.input_buffer[...] = blob
        first = runtime.run_buffered()
        assert runtime.run_buffered() is first  # the bound output, reused: no copy per frame
        assert first.shape == (1, 6, 512)
        results.append(first.copy())
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[1], blob.reshape(1, 6, 512))


def test_the_detector_gives_the_same_detections_one_frame_or_several(
    dynamic: OnnxRuntime,
) -> None:
    # Random 32x32 frames: no padding, and pixels above 0.25 in the score rows: boxes to keep.
    rng = np.random.default_rng(2)
    frames = [rng.integers(0, 256, (32, 32, 3), np.uint8) for _ in range(2)]
    detector = YoloDetector(dynamic)
    singles = [detector.detect([frame])[0] for frame in frames]
    batched = detector.detect(frames)  # one call with batch 2
    assert [len(d) for d in batched] == [len(d) for d in singles]
    assert all(len(d) > 0 for d in singles)
    for one, many in zip(singles, batched, strict=True):
        np.testing.assert_array_equal(one.xyxy, many.xyxy)
        np.testing.assert_array_equal(one.confidence, many.confidence)
