"""The graph rewrite of ``edge models batch`` on one-node graphs: which Reshapes it changes and
how, and which batch-1 assumptions it refuses before anything runs."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge.detect.batch import Unbatchable, dynamic_batch_graph


def graph_of(
    nodes: list[onnx.NodeProto],
    inits: dict[str, list[int]],
    out_shape: list[int],
    opset: int = 13,
) -> onnx.ModelProto:
    """x (1, 3, 4, 4) -> nodes -> y, with int64 initializers."""
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def shape_of(model: onnx.ModelProto, node: int) -> list[int]:
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [int(v) for v in inits[model.graph.node[node].input[1]]]


def test_a_leading_1_becomes_0_and_a_shared_shape_is_replaced_once() -> None:
    model = graph_of(
        [
            helper.make_node("Reshape", ["x", "s"], ["a"], name="r1"),
            helper.make_node("Relu", ["a"], ["b"]),
            helper.make_node("Reshape", ["b", "s"], ["y"], name="r2"),
        ],
        {"s": [1, 48]},
        [1, 48],
    )
    rewritten, changes = dynamic_batch_graph(onnx, model)
    assert changes == [
        "input x: 1x3x4x4 -> batchx3x4x4",
        "output y: 1x48 -> batchx48",
        "Reshape 'r1': shape [1, 48] -> [0, 48]",
        "Reshape 'r2': shape [1, 48] -> [0, 48]",
    ]
    assert shape_of(rewritten, 0) == shape_of(rewritten, 2) == [0, 48]
    assert [i.name for i in rewritten.graph.initializer] == ["s_batch"]  # the old one, unused, goes


def test_allowzero_takes_minus_1_and_a_constant_reshape_is_left_alone() -> None:
    model = graph_of(
        [
            helper.make_node("Reshape", ["x", "s"], ["a"], name="r", allowzero=1),
            helper.make_node("Reshape", ["bias", "bias_shape"], ["b"], name="bias"),
            helper.make_node("Add", ["a", "b"], ["y"]),
        ],
        {"s": [1, 3, 16], "bias": [1, 2, 3], "bias_shape": [1, 3, 1]},
        [1, 3, 16],
    )
    rewritten, changes = dynamic_batch_graph(onnx, model)
    assert changes[-1] == "Reshape 'r': shape [1, 3, 16] -> [-1, 3, 16]"
    assert shape_of(rewritten, 1) == [1, 3, 1]  # a bias, not image data: no batch to free


def node(op: str, inputs: list[str], **attrs: object) -> onnx.NodeProto:
    return helper.make_node(op, inputs, ["y"], name="n", **attrs)


@pytest.mark.parametrize(
    ("nodes", "inits", "opset", "reason"),
    [
        ([node("Reshape", ["x", "s"])], {"s": [3, 16]}, 13, "folds the batch axis into others"),
        (
            [node("Reshape", ["x", "s"], allowzero=1)],
            {"s": [1, -1, 16]},
            14,
            "has shape [1, -1, 16] with allowzero=1 and a -1 already",
        ),
        ([node("Transpose", ["x"], perm=[1, 0, 2, 3])], {}, 13, "moves the batch axis"),
        ([node("Softmax", ["x"], axis=0)], {}, 12, "works along the batch axis"),
        ([node("Concat", ["x", "x"], axis=-4)], {}, 13, "works along the batch axis"),
        ([node("ReduceMean", ["x"])], {}, 13, "reduces over every axis, the batch too"),
        ([node("ReduceMax", ["x"], axes=[0, 2])], {}, 13, "reduces over the batch axis"),
        ([node("Squeeze", ["x"])], {}, 13, "drops every axis of size 1, the batch too"),
        ([node("Slice", ["x", "st", "en"])], {"st": [0], "en": [1]}, 13, "slices the batch axis"),
        ([node("DynamicQuantizeLinear", ["x"])], {}, 13, "one quantisation scale"),
    ],
)
def test_batch_1_assumptions_are_refused_by_name(
    nodes: list[onnx.NodeProto], inits: dict[str, list[int]], opset: int, reason: str
) -> None:
    model = graph_of(nodes, inits, [1, 48], opset)
    with pytest.raises(Unbatchable, match=rf"^{nodes[0].op_type} 'n' .*{re.escape(reason)}"):
        dynamic_batch_graph(onnx, model)


@pytest.mark.parametrize(
    ("nodes", "opset"),
    [
        ([node("Softmax", ["x"], axis=1)], 12),  # flattens at axis 1: one row per image
        ([node("Softmax", ["x"], axis=-1)], 13),
        ([node("Transpose", ["x"], perm=[0, 2, 3, 1])], 13),
        ([node("ReduceMax", ["x"], axes=[-1])], 13),
    ],
)
def test_per_image_work_is_accepted(nodes: list[onnx.NodeProto], opset: int) -> None:
    _, changes = dynamic_batch_graph(onnx, graph_of(nodes, {}, [1, 48], opset))
    assert changes[0] == "input x: 1x3x4x4 -> batchx3x4x4"


def test_a_graph_without_a_batch_of_1_is_refused() -> None:
    model = graph_of([node("Relu", ["x"])], {}, [2, 48])
    with pytest.raises(Unbatchable, match=r"^output 'y' has a batch of 2, not 1$"):
        dynamic_batch_graph(onnx, model)
