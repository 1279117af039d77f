"""Tiny ONNX graphs for the detector's tests: one Reshape from an image input, with metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
from onnx import TensorProto, helper


def reshape_model(
    path: Path,
    input_shape: Sequence[int | str],
    output_shape: Sequence[int | str],
    shape: Sequence[int],
    metadata: Mapping[str, str],
) -> Path:
    """Write a graph ``images`` (``input_shape``) -> Reshape(``shape``) -> ``output0``
    (``output_shape``; names are symbolic axes) with ``metadata`` to ``path``."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, list(input_shape))
    out = helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(output_shape))
    constant = helper.make_tensor("shape", TensorProto.INT64, [len(shape)], list(shape))
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["images", "shape"], ["output0"])],
        "reshape",
        [inp],
        [out],
        [constant],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path
