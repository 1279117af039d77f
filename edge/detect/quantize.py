"""Static INT8 quantisation of a YOLO detector, calibrated on frames of the camera's own clip.

A static QDQ model runs its convolutions on 8-bit integers with activation ranges measured once
on real frames, so no per-frame ``DynamicQuantizeLinear`` is paid (why the shared, dynamically
quantised ``*_int8.onnx`` files are slower than float32). The ranges come from the scene the
model will see: frames spread evenly over a recording of that camera.

Choices, measured with ONNX Runtime 1.32 on an x86 CPU (AVX-512 VNNI):

* activations uint8, weights int8 (U8S8): the CPU provider fuses each QDQ group into
  ``QLinearConv`` on MLAS's u8 x s8 kernels; with int8 activations it left most convolutions as
  DequantizeLinear -> float Conv -> QuantizeLinear, 2x slower than float32.
* every operator quantised, not only Conv: SiLU then runs as QLinearSigmoid + QLinearMul between
  integer convolutions; leaving it in float costs a Quantize/Dequantize pair per layer and
  loses the speed-up.
* MinMax calibration: Percentile (99.99) agreed better with float32 detections at 320x320 but
  worse at 640x640, Entropy no better; both counted TUD-Campus crossings worse (5-8 errors in
  25 against 5) and took 2.5x the time and 1.7x the memory.
* the box decoding stays float32 (``box_decoding_nodes``): quantised, it lost 30-100 % of the
  detections.

``onnx`` is needed here and nowhere else, so it is an optional extra (``edge-footfall[quantize]``)
imported only when a model is quantised.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from edge.detect.runtime import OnnxRuntime, check_rewrite_paths, save_checked
from edge.detect.yolo import letterbox
from edge.errors import EdgeError, ModelError, SourceError
from edge.vision.sources import open_source

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

QUANTIZATION_TAG = "static-int8-qdq"
# Per-channel weights need the ``axis`` attribute of DequantizeLinear, which arrived in opset 13.
MIN_OPSET = 13
QUANTIZED_OPS = frozenset(
    {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "QLinearConv"}
)


@dataclass(frozen=True)
class QuantizeReport:
    """What ``quantize_model`` wrote, for the command line to print."""

    output: Path
    calibration_frames: int
    size_before: int  # bytes
    size_after: int  # bytes
    seconds: float
    quantize_nodes: int  # QuantizeLinear nodes in the output
    excluded_nodes: int  # nodes of the box decoding left in float32


def read_calibration_frames(clip: Path, frames: int) -> list[npt.NDArray[np.uint8]]:
    """Up to ``frames`` frames spread evenly over a clip or image folder (fewer if it is short).

    The source thins itself to the right rate, so frames in between are only grabbed, not
    converted: a long recording costs little more than a short one.
    """
    if frames < 1:
        raise SourceError(f"{clip}: calibration needs at least 1 frame, got {frames}")
    if not clip.exists():
        raise SourceError(f"{clip}: clip not found")
    source = open_source(str(clip), "calibration")
    count, fps = source.expected_frames, source.fps
    if count is not None and count > frames:
        source.close()
        source = open_source(str(clip), "calibration", target_fps=fps * frames / count)
    try:
        images = [frame.image for _, frame in zip(range(frames), source, strict=False)]
    finally:
        source.close()
    if not images:
        raise SourceError(f"{clip}: no frame could be decoded for calibration")
    return images


class _FrameReader:
    """ORT ``CalibrationDataReader`` over frames, letterboxed exactly as the detector does.

    Letterboxing happens as the calibrator asks, so only one input blob lives at a time.
    """

    def __init__(
        self,
        input_name: str,
        images: Sequence[npt.NDArray[np.uint8]],
        input_size: tuple[int, int],
        progress: Callable[[int], None] | None,
    ) -> None:
        self.input_name = input_name
        self.images = images
        self.input_size = input_size
        self.progress = progress
        self._next = 0
        self._ran = False  # a frame was handed out and has run by the time we are called again

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        if self._ran and self.progress is not None:
            self.progress(1)
        self._ran = self._next < len(self.images)
        if not self._ran:
            return None
        blob, _ = letterbox(self.images[self._next], self.input_size)
        self._next += 1
        return {self.input_name: blob}


def box_decoding_nodes(graph: onnx.GraphProto) -> list[str]:
    """Names of the nodes after the head's last learned convolutions: the box decoding.

    A learned convolution is a Conv with more than one output channel (or weights of unknown
    shape). Every node that neither is one nor feeds one is the YOLOv8/YOLO11 decoding: the
    Reshape/Concat of the three scales, the DFL (Softmax over 16 bins, then its fixed 1-channel
    Conv), the anchor arithmetic and the class Sigmoid. Quantised, these lose the detections:
    box coordinates up to the input size and scores in [0, 1] cannot share one 8-bit scale.
    """
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    learned = [
        node
        for node in graph.node
        if node.op_type == "Conv"
        and len(node.input) > 1
        and shapes.get(node.input[1], [2, 0])[0] > 1
    ]
    feeding = {node.name for node in learned}
    queue = deque(name for node in learned for name in node.input)
    while queue:
        node = producer.get(queue.popleft())
        if node is not None and node.name not in feeding:
            feeding.add(node.name)
            queue.extend(node.input)
    return [node.name for node in graph.node if node.name not in feeding]


def _import_tools(model: Path) -> tuple[Any, Any]:
    """``onnx`` and ``onnxruntime.quantization``, or a ModelError saying how to get them."""
    try:
        import onnx
        from onnxruntime import quantization
    except ImportError as err:
        raise ModelError(
            f"{model}: quantising needs the '{err.name or 'onnx'}' package; "
            "install edge-footfall[quantize]"
        ) from err
    return onnx, quantization


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def quantize_model(
    model: Path,
    clip: Path,
    output: Path,
    frames: int = 64,
    per_channel: bool = True,
    progress: Callable[[int], None] | None = None,
) -> QuantizeReport:
    """Write a static INT8 QDQ copy of a float32 YOLO detector to ``output``, calibrated on
    ``frames`` frames spread over ``clip``.

    ``progress`` is called with 1 after each calibration frame has run (``Progress.advance``
    fits). The output keeps the Ultralytics metadata the detector reads and records how it was
    made. ``output`` is replaced only once the new model has loaded in the detector's runtime.
    """
    start = time.monotonic()
    if frames < 1:
        raise SourceError(f"{clip}: calibration needs at least 1 frame, got {frames}")
    check_rewrite_paths(model, output, "float32 model")
    onnx, quantization = _import_tools(model)
    info = OnnxRuntime(model).info  # refuses anything but a YOLOv8/YOLO11 detect model
    source = onnx.load(str(model))
    already = sorted({node.op_type for node in source.graph.node} & QUANTIZED_OPS)
    if already:
        raise ModelError(
            f"{model}: already quantised ({', '.join(already)}); give the float32 model"
        )
    images = read_calibration_frames(clip, frames)

    metadata = {prop.key: prop.value for prop in source.metadata_props}
    with tempfile.TemporaryDirectory(prefix="edge-quantize-") as tmp:
        try:
            result, excluded = _quantize(
                onnx,
                quantization,
                model,
                source,
                Path(tmp),
                images,
                info.input_size,
                per_channel,
                progress,
            )
        except EdgeError:
            raise
        except Exception as err:  # onnx and ORT raise untyped errors from deep inside
            raise ModelError(f"{model}: quantisation failed ({_first_line(err)})") from err
    _set_metadata(
        result,
        {
            **{prop.key: prop.value for prop in result.metadata_props},
            **metadata,
            "quantization": QUANTIZATION_TAG,
            "calibration_frames": str(len(images)),
            "calibration_clip": clip.name,
        },
    )
    save_checked(result.SerializeToString(), output, "quantised model")
    return QuantizeReport(
        output=output,
        calibration_frames=len(images),
        size_before=model.stat().st_size,
        size_after=output.stat().st_size,
        seconds=time.monotonic() - start,
        quantize_nodes=sum(node.op_type == "QuantizeLinear" for node in result.graph.node),
        excluded_nodes=len(excluded),
    )


def _quantize(
    onnx: Any,
    quantization: Any,
    model: Path,
    source: onnx.ModelProto,
    tmp: Path,
    images: Sequence[npt.NDArray[np.uint8]],
    input_size: tuple[int, int],
    per_channel: bool,
    progress: Callable[[int], None] | None,
) -> tuple[onnx.ModelProto, list[str]]:
    """Pre-process, calibrate and quantise in ``tmp``: (quantised model, nodes kept float32).

    A graph without box decoding to keep in float32 is refused: quantised, it would find nothing.
    """
    upgraded, prepared, quantized = (tmp / f"{name}.onnx" for name in ("up", "prep", "q"))
    opset = next((o.version for o in source.opset_import if o.domain in ("", "ai.onnx")), 0)
    if per_channel and opset < MIN_OPSET:
        source = onnx.version_converter.convert_version(source, MIN_OPSET)
    onnx.save(source, str(upgraded))
    # Fixed-shape YOLO exports need no symbolic shape inference (and so no sympy).
    quantization.quant_pre_process(upgraded, prepared, skip_symbolic_shape=True)
    graph = onnx.load(str(prepared)).graph
    excluded = box_decoding_nodes(graph)
    kept = {node.name for node in graph.node} - set(excluded)
    decoded = {out for node in graph.node if node.name in excluded for out in node.output}
    if graph.output[0].name not in decoded or not any(
        node.op_type == "Conv" and node.name in kept for node in graph.node
    ):
        raise ModelError(
            f"{model}: no box decoding after the head's convolutions; "
            "expected a YOLOv8/YOLO11 detect export"
        )
    reader = _FrameReader(graph.input[0].name, images, input_size, progress)
    chatter = io.StringIO()  # the calibrators print their progress to stdout
    try:
        with contextlib.redirect_stdout(chatter):
            quantization.quantize_static(
                prepared,
                quantized,
                reader,
                quant_format=quantization.QuantFormat.QDQ,
                per_channel=per_channel,
                activation_type=quantization.QuantType.QUInt8,
                weight_type=quantization.QuantType.QInt8,
                nodes_to_exclude=excluded,
                calibrate_method=quantization.CalibrationMethod.MinMax,
            )
    finally:
        log.debug("quantiser output: %s", chatter.getvalue().strip())
    return onnx.load(str(quantized)), excluded


def _set_metadata(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    """Replace the model's ``metadata_props`` by ``metadata``: the quantiser may drop them."""
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
