"""The ONNX Runtime session: created once, providers checked, Ultralytics metadata read.

Everything onnxruntime raises is turned into ``ModelError`` here, naming the file.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.config import Provider
from edge.errors import ModelError

log = logging.getLogger(__name__)

ORT_PROVIDERS: dict[Provider, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


@dataclass(frozen=True)
class ModelInfo:
    """What the detector needs to know about a YOLO ONNX file, read from the file itself."""

    path: Path
    names: dict[int, str]
    input_size: tuple[int, int]  # (width, height)
    batch: int | None  # None when the batch axis is dynamic
    outputs: int  # N candidate boxes per image
    task: str
    metadata: dict[str, str]


def _parse_names(path: Path, raw: str | None, nc: int) -> dict[int, str]:
    if raw is None:
        raise ModelError(f"{path}: no 'names' in the ONNX metadata; export it with Ultralytics")
    try:
        parsed = ast.literal_eval(raw)  # Ultralytics writes a Python dict literal
        names = {int(k): str(v) for k, v in dict(parsed).items()}
    except (ValueError, SyntaxError, TypeError) as err:
        raise ModelError(f"{path}: unreadable 'names' metadata ({err})") from err
    if len(names) != nc:
        raise ModelError(f"{path}: metadata lists {len(names)} classes but the output has {nc}")
    return names


def read_model_info(session: ort.InferenceSession, path: Path) -> ModelInfo:
    """Check the file is a YOLOv8/YOLO11 detector: input (B, 3, H, W), output (B, 4 + nc, N)."""
    metadata = dict(session.get_modelmeta().custom_metadata_map)
    task = metadata.get("task", "detect")
    if task != "detect":
        raise ModelError(f"{path}: task is '{task}', expected a 'detect' model")
    inputs, outputs = session.get_inputs(), session.get_outputs()
    in_shape, out_shape = list(inputs[0].shape), list(outputs[0].shape)
    if len(inputs) != 1 or len(in_shape) != 4 or in_shape[1] != 3:
        raise ModelError(f"{path}: input is {in_shape}, expected one (batch, 3, height, width)")
    if len(outputs) != 1 or len(out_shape) != 3 or not isinstance(out_shape[1], int):
        raise ModelError(
            f"{path}: output is {out_shape}, expected the YOLOv8/YOLO11 layout [1, 4+nc, N]"
        )
    nc = out_shape[1] - 4
    if nc < 1:
        raise ModelError(f"{path}: output is {out_shape}, expected [1, 4+nc, N] with nc >= 1")
    h, w = in_shape[2], in_shape[3]
    if not (isinstance(h, int) and isinstance(w, int)):
        try:
            h, w = ast.literal_eval(metadata["imgsz"])
        except (KeyError, ValueError, SyntaxError) as err:
            raise ModelError(f"{path}: dynamic input size and no 'imgsz' metadata") from err
    return ModelInfo(
        path=path,
        names=_parse_names(path, metadata.get("names"), nc),
        input_size=(int(w), int(h)),
        batch=in_shape[0] if isinstance(in_shape[0], int) else None,
        outputs=out_shape[2] if isinstance(out_shape[2], int) else 0,
        task=task,
        metadata=metadata,
    )


def resolve_providers(requested: Sequence[Provider]) -> list[str]:
    """ORT provider names to ask for, in order; unavailable ones are dropped with a warning.

    CPU always closes the list, so a model with nodes the GPU provider lacks still runs.
    """
    available = set(ort.get_available_providers())
    chosen: list[str] = []
    for name in requested:
        ort_name = ORT_PROVIDERS[name]
        if ort_name in available:
            chosen.append(ort_name)
        else:
            log.warning("execution provider %s is not available here; falling back", ort_name)
    if ORT_PROVIDERS["cpu"] not in chosen:
        chosen.append(ORT_PROVIDERS["cpu"])
    return chosen


class OnnxRuntime:
    """One inference session for the life of the process."""

    def __init__(
        self, path: Path, providers: Sequence[Provider] = ("cpu",), threads: int | None = None
    ) -> None:
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        wanted = resolve_providers(providers)
        try:
            self.session = ort.InferenceSession(str(path), options, providers=wanted)
        except Exception as err:  # ORT raises its own untyped exceptions for every bad file
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"{path}: not a readable ONNX model ({reason})") from err
        in_use = self.session.get_providers()
        for name in wanted:
            if name not in in_use:  # ORT falls back silently, e.g. CUDA without its libraries
                log.warning("execution provider %s failed to load; running without it", name)
        log.info("model %s on %s", path.name, ", ".join(in_use))
        self.providers: list[str] = list(in_use)
        self.info = read_model_info(self.session, path)
        self._input_name = self.session.get_inputs()[0].name
        # Fixed-shape models run on two buffers bound once: ORT neither allocates nor copies an
        # output per frame, which costs about 15 % of a 640x640 inference on a 2-core CPU.
        w, h = self.info.input_size
        nc = len(self.info.names)
        self.input_buffer = np.zeros((1, 3, h, w), np.float32)
        self._output_buffer = np.zeros((1, 4 + nc, max(self.info.outputs, 1)), np.float32)
        self._binding: ort.IOBinding | None = None
        if self.info.batch == 1 and self.info.outputs > 0:
            self._binding = self.session.io_binding()
            self._binding.bind_ortvalue_input(
                self._input_name, ort.OrtValue.ortvalue_from_numpy(self.input_buffer)
            )
            self._binding.bind_ortvalue_output(
                self.session.get_outputs()[0].name,
                ort.OrtValue.ortvalue_from_numpy(self._output_buffer),
            )

    def run(self, blob: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(B, 3, H, W) float32 -> raw output (B, 4 + nc, N), a new array."""
        return np.asarray(self.session.run(None, {self._input_name: blob})[0], dtype=np.float32)

    def run_buffered(self) -> npt.NDArray[np.float32]:
        """Run on ``input_buffer``; the (1, 4 + nc, N) result is overwritten by the next call."""
        if self._binding is None:
            return self.run(self.input_buffer)
        self.session.run_with_iobinding(self._binding)
        return self._output_buffer
