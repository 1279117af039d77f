"""A dynamic batch axis for a YOLO ONNX detector, checked against the original before writing.

The shared models are Ultralytics exports with ``dynamic=False``: their input is ``1x3xHxW``
and several Reshape nodes carry a constant target shape that starts with 1 (the attention block
of YOLO11 and the DFL box decoding). Running several cameras' frames in one call needs the
batch axis free, so ``make_batch_dynamic``:

* names the batch axis of every input and output ``batch``;
* rewrites each Reshape of image data whose constant shape starts with 1 to start with 0, which
  ONNX reads as "copy the input's axis": the batch, since axis 0 stays the batch axis in these
  graphs (with ``allowzero=1`` a 0 is a real zero, so -1 is used where the shape has none);
* drops the stored intermediate shapes (``value_info``): they say batch 1; ONNX Runtime infers
  its own.

Some graphs cannot have a free batch. Refused before anything runs: a node that mixes the images
of a batch or moves its axis (``DynamicQuantizeLinear``, whose one scale would then cover every
image; a concat, split, softmax or reduction over axis 0; a Transpose of axis 0; a Reshape that
folds the batch into other axes). What these rules miss the check catches: the converted model
must reproduce the original's output at batch 1, and at batch 2 and 4 the outputs of as many
single runs of the original, within ``MAX_RELATIVE_DIFF`` of the output's scale (its largest
absolute value), or nothing is written.

``onnx`` is needed, as for ``edge models quantize``: it comes with ``edge-footfall[quantize]``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.detect.runtime import OnnxRuntime, check_rewrite_paths, save_checked
from edge.errors import ModelError

if TYPE_CHECKING:
    import onnx

BATCH_AXIS = "batch"  # the symbolic name given to axis 0 of every input and output
CHECK_BATCHES = (1, 2, 4)
MAX_RELATIVE_DIFF = 1e-4  # of the output's scale: float noise passes, a mixed-up batch does not
METADATA_KEY = "dynamic_batch"


@dataclass(frozen=True)
class BatchReport:
    """What ``make_batch_dynamic`` changed and how close the converted outputs came."""

    output: Path
    changes: list[str]  # one line per rewritten input, output or node
    max_abs_diff: float  # worst |converted - original| over every checked batch
    max_rel_diff: float  # the same divided by the output's scale
    batches: tuple[int, ...]
    seconds: float


class Unbatchable(Exception):
    """A reason the batch axis cannot be freed; ``make_batch_dynamic`` names the model."""


def _import_onnx(model: Path) -> Any:
    try:
        import onnx
    except ImportError as err:
        raise ModelError(
            f"{model}: a dynamic batch needs the 'onnx' package; install edge-footfall[quantize]"
        ) from err
    return onnx


def make_batch_dynamic(model: Path, output: Path) -> BatchReport:
    """Write a copy of ``model`` whose batch axis is the symbolic ``batch`` to ``output``.

    Nothing is written unless the copy's outputs match the original's (module docstring); the
    error then names the model and the reason on one line. ``output`` is replaced only once the
    copy has loaded in the detector's runtime.
    """
    start = time.monotonic()
    check_rewrite_paths(model, output, "original model")
    onnx = _import_onnx(model)
    info = OnnxRuntime(model).info  # refuses anything but a YOLOv8/YOLO11 detect model
    original = model.read_bytes()
    try:
        converted, changes = dynamic_batch_graph(onnx, onnx.load_from_string(original))
        w, h = info.input_size
        max_abs, max_rel = compare_batches(original, converted.SerializeToString(), (h, w))
    except Unbatchable as why:
        raise ModelError(
            f"{model}: cannot make the batch axis dynamic: {why}; nothing written"
        ) from why
    prop = converted.metadata_props.add()
    prop.key = METADATA_KEY
    prop.value = (
        f"edge models batch: {len(changes)} changes; outputs equal to the original's at batch "
        f"{', '.join(map(str, CHECK_BATCHES))} within {max_rel:.1e} of their scale"
    )
    save_checked(converted.SerializeToString(), output, "model")
    return BatchReport(output, changes, max_abs, max_rel, CHECK_BATCHES, time.monotonic() - start)


def dynamic_batch_graph(onnx: Any, model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """``model`` rewritten in place with a symbolic batch axis, and one line per change.

    Raises ``Unbatchable`` when a node cannot work on a free batch (module docstring).
    """
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    initializers = {init.name: init for init in graph.initializer}
    constants = _constants(onnx, graph)
    ranks = _ranks(onnx, model)
    changes = [
        *_free_axis(graph.input, "input", skip=set(initializers)),
        *_free_axis(graph.output, "output"),
    ]
    carrying = {value.name for value in graph.input} - set(initializers)
    replaced: set[str] = set()
    for node in graph.node:
        if not carrying.intersection(node.input):
            continue
        if node.op_type not in ("Shape", "Size"):  # their outputs are sizes, not image data
            carrying.update(node.output)
        label = f"{node.op_type} '{node.name or node.output[0]}'"
        reason = _hazard(onnx, node, opset, ranks, constants, carrying)
        if reason:
            raise Unbatchable(f"{label} {reason}")
        if node.op_type == "Reshape" and node.input[0] in carrying:
            change = _rewrite_reshape(onnx, graph, node, constants, label)
            if change:
                replaced.add(change[0])
                changes.append(change[1])
    used = {name for node in graph.node for name in node.input}
    for name in replaced - used:
        if name in initializers:
            graph.initializer.remove(initializers[name])
    del graph.value_info[:]  # shapes inferred for batch 1; ORT infers its own
    return model, changes


def _free_axis(values: Any, kind: str, skip: set[str] | None = None) -> list[str]:
    """Axis 0 of each graph input or output becomes ``batch``; it must be a fixed 1 now."""
    changes = []
    for value in values:
        if skip and value.name in skip:
            continue
        dims = value.type.tensor_type.shape.dim
        before = "x".join(d.dim_param or str(d.dim_value) for d in dims)
        if not dims:
            raise Unbatchable(f"{kind} '{value.name}' has no batch axis (shape {before or '[]'})")
        if dims[0].dim_param:
            raise Unbatchable(f"{kind} '{value.name}' already has a dynamic batch ({before})")
        if dims[0].dim_value != 1:
            raise Unbatchable(f"{kind} '{value.name}' has a batch of {dims[0].dim_value}, not 1")
        dims[0].dim_param = BATCH_AXIS  # clears dim_value (a oneof)
        after = "x".join(d.dim_param or str(d.dim_value) for d in dims)
        changes.append(f"{kind} {value.name}: {before} -> {after}")
    return changes


def _constants(onnx: Any, graph: onnx.GraphProto) -> dict[str, npt.NDArray[Any]]:
    """Initializers and ``Constant`` node outputs, as arrays (shape tensors are small)."""
    helper = onnx.numpy_helper
    values = {init.name: helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = helper.to_array(attr.t)
    return values


def _ranks(onnx: Any, model: onnx.ModelProto) -> dict[str, int]:
    """Rank of each tensor the original's shape inference knows, to read negative axes."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model).graph
    except Exception:  # inference is a help here, not a requirement
        inferred = model.graph
    return {
        value.name: len(value.type.tensor_type.shape.dim)
        for value in [*inferred.input, *inferred.value_info, *inferred.output]
        if value.type.tensor_type.HasField("shape")
    }


# Ops whose ``axis`` (default given, None when required) must not be the batch axis.
_AXIS_OPS: dict[str, int | None] = {
    "Concat": None, "Split": 0, "Gather": 0, "GatherElements": 0, "Flatten": 1, "ArgMax": 0,
    "ArgMin": 0, "TopK": -1, "LayerNormalization": -1, "Softmax": -1, "LogSoftmax": -1,
    "Hardmax": -1,
}  # fmt: skip


def _hazard(
    onnx: Any,
    node: onnx.NodeProto,
    opset: int,
    ranks: dict[str, int],
    constants: dict[str, npt.NDArray[Any]],
    carrying: set[str],
) -> str | None:
    """Why ``node``, which reads image data, cannot run on a free batch; None if no rule says.

    Only the batch-1 assumptions these rules recognise are reported here; the output check
    catches the rest.
    """
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    op, rank = node.op_type, ranks.get(node.input[0])
    data_carries = node.input[0] in carrying
    subgraphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(a.type in subgraphs for a in node.attribute):
        return "runs a subgraph on image data, which this rewrite does not follow"
    if op == "DynamicQuantizeLinear":
        return "computes one quantisation scale over the whole batch (dynamic INT8 model)"
    if op == "Transpose" and data_carries:
        perm = attrs.get("perm")
        if (perm is None and (rank is None or rank > 1)) or (perm is not None and perm[0] != 0):
            return f"moves the batch axis (perm {list(perm) if perm else 'reversed'})"
    if op in _AXIS_OPS and (data_carries or op == "Concat"):
        default = _AXIS_OPS[op]
        if op in ("Softmax", "LogSoftmax", "Hardmax") and opset < 13:
            default = 1  # before opset 13: flatten to 2-D at ``axis``; 0 spans the batch
        axis = attrs.get("axis", default)
        if axis is not None and _normalise(int(axis), rank) == 0:
            return "works along the batch axis (axis 0)"
    axes = _axes(node, attrs, constants)
    if op.startswith("Reduce") and data_carries:
        if axes is None and not attrs.get("noop_with_empty_axes", 0) and not _dynamic_axes(node):
            return "reduces over every axis, the batch too"
        if axes is not None and 0 in {_normalise(a, rank) for a in axes}:
            return "reduces over the batch axis"
    if op == "Squeeze" and data_carries:
        if axes is None and not _dynamic_axes(node):
            return "drops every axis of size 1, the batch too"
        if axes is not None and 0 in {_normalise(a, rank) for a in axes}:
            return "drops the batch axis"
    if op == "Unsqueeze" and data_carries and axes is not None and 0 in axes:
        return "inserts an axis before the batch axis"
    if op == "Slice" and data_carries and len(node.input) > 1:
        starts = constants.get(node.input[1])
        if len(node.input) > 3 and node.input[3]:
            slice_axes = constants.get(node.input[3])
        else:
            slice_axes = None if starts is None else np.arange(starts.size)
        if slice_axes is not None and 0 in {_normalise(int(a), rank) for a in slice_axes}:
            return "slices the batch axis"
    if op == "Resize" and len(node.input) > 3 and node.input[3] in constants:
        sizes = constants[node.input[3]]
        if sizes.size and int(sizes.flat[0]) == 1:
            return "resizes to a fixed batch of 1 (sizes input)"
    if op == "Reshape" and data_carries and node.input[1] in constants:
        shape = constants[node.input[1]]
        if shape.size and int(shape.flat[0]) not in (-1, 0, 1):
            return f"folds the batch axis into others (shape {shape.tolist()})"
    return None


def _normalise(axis: int, rank: int | None) -> int | None:
    """A non-negative axis, or None when it is negative and the rank is unknown."""
    if axis >= 0:
        return axis
    return None if rank is None else axis + rank


def _axes(
    node: onnx.NodeProto, attrs: dict[str, Any], constants: dict[str, npt.NDArray[Any]]
) -> list[int] | None:
    """The ``axes`` of a Reduce/Squeeze/Unsqueeze: attribute (older opsets) or constant input."""
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(node.input) > 1 and node.input[1] in constants:
        return [int(a) for a in constants[node.input[1]].reshape(-1)]
    return None


def _dynamic_axes(node: onnx.NodeProto) -> bool:
    """The axes come from a tensor computed at run time: no verdict, the check decides."""
    return len(node.input) > 1 and bool(node.input[1])


def _rewrite_reshape(
    onnx: Any,
    graph: onnx.GraphProto,
    node: onnx.NodeProto,
    constants: dict[str, npt.NDArray[Any]],
    label: str,
) -> tuple[str, str] | None:
    """Point a Reshape whose constant shape starts with 1 at a copy starting with 0 (or -1).

    Returns (the old shape tensor's name, the change line), or None when nothing is baked in.
    A fresh initializer is used because the old one may feed other nodes.
    """
    shape = constants.get(node.input[1])
    if shape is None or shape.size == 0 or int(shape.flat[0]) != 1:
        return None  # computed at run time, or already 0 / -1: the check decides
    allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
    free = shape.astype(np.int64).copy()
    if not allowzero:
        free[0] = 0  # copy the input's axis 0: the batch
    elif -1 not in shape:
        free[0] = -1
    else:
        raise Unbatchable(f"{label} has shape {shape.tolist()} with allowzero=1 and a -1 already")
    old, new = node.input[1], f"{node.input[1]}_{BATCH_AXIS}"
    if new not in constants:
        graph.initializer.append(onnx.numpy_helper.from_array(free, new))
        constants[new] = free
    node.input[1] = new
    return old, f"{label}: shape {shape.tolist()} -> {free.tolist()}"


def compare_batches(
    original: bytes, converted: bytes, size: tuple[int, int]
) -> tuple[float, float]:
    """(max |diff|, max |diff| / scale) of the converted model against the original.

    Random images (fixed seed) of ``size`` (height, width): at batch 1 against the original's
    output, at each larger batch in ``CHECK_BATCHES`` against that many single runs. Raises
    ``Unbatchable`` when a batch does not run, has the wrong shape or differs too much.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the verdict is ours, on one line: no ORT log lines

    def session(data: bytes) -> ort.InferenceSession:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    reference, candidate = session(original), session(converted)
    name = reference.get_inputs()[0].name
    rng = np.random.default_rng(0)
    images = rng.random((max(CHECK_BATCHES), 3, *size), dtype=np.float32)
    singles = [reference.run(None, {name: images[i : i + 1]}) for i in range(len(images))]
    worst_abs = worst_rel = 0.0
    for batch in CHECK_BATCHES:
        try:
            outputs = candidate.run(None, {name: images[:batch]})
        except Exception as err:  # ORT raises untyped errors
            reason = f"the converted graph fails at batch {batch} ({_ort_reason(err)})"
            raise Unbatchable(reason) from err
        for k, got in enumerate(outputs):
            want = np.concatenate([single[k] for single in singles[:batch]])
            got = np.asarray(got)
            if got.shape != want.shape:
                shapes = f"output {k} is {got.shape}, expected {want.shape}"
                raise Unbatchable(f"at batch {batch} {shapes}")
            diff = float(np.max(np.abs(got.astype(np.float64) - want)))
            scale = float(np.max(np.abs(want))) or 1.0
            rel = diff / scale
            if not rel <= MAX_RELATIVE_DIFF:  # NaN fails too
                against = "the original" if batch == 1 else f"{batch} single runs of the original"
                raise Unbatchable(
                    f"at batch {batch} the outputs differ from {against} by {diff:.3g} "
                    f"({rel:.1e} of their scale {scale:.3g}; limit {MAX_RELATIVE_DIFF:.0e})"
                )
            worst_abs, worst_rel = max(worst_abs, diff), max(worst_rel, rel)
    return worst_abs, worst_rel


def _ort_reason(err: Exception) -> str:
    """ORT's run error, short: the failing node and its message without C++ file and function."""
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    node = re.search(r"Name:'([^']*)'", line)
    message = line.split("Status Message:")[-1].strip()
    message = message.rsplit(" was false. ", 1)[-1]  # ORT_ENFORCE: "<file:line> <check> was false."
    return f"node '{node.group(1)}': {message}" if node else message
