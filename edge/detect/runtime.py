"""The ONNX Runtime session: created once, providers checked, Ultralytics metadata read.

Everything onnxruntime raises is turned into ``ModelError`` here, naming the file.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from edge.config import DetectorConfig, Provider
from edge.detect.protocol import ModelInfo
from edge.errors import ConfigError, ModelError
from edge.memory import return_freed_memory

log = logging.getLogger(__name__)

# Telemetry off whatever the environment says: ``edge/__init__`` sets ORT_DISABLE_TELEMETRY=1
# before onnxruntime is imported (the switch ONNX Runtime reads once, at start), and its API
# switches events off here too, again before each session (``OnnxRuntime``).
ort.disable_telemetry_events()

ORT_PROVIDERS: dict[Provider, str] = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    # Only in the onnxruntime-openvino wheel, which replaces onnxruntime (the ``openvino`` extra).
    "openvino": "OpenVINOExecutionProvider",
}
# From this release the OpenVINO EP takes its thread count in ``load_config`` (a JSON string);
# ``num_of_threads`` is deprecated there, and earlier releases know only it.
OPENVINO_LOAD_CONFIG_FROM = (1, 23)


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


def engine_dir(cache: Path, model: Path, fp16: bool) -> Path:
    """The TensorRT engine folder for this model file and precision, absolute and writable.

    ONNX Runtime names an engine after the model's file name and graph, not its weights, input
    size or precision, so a retrained ``yolo11n.onnx`` would silently reuse the old engine: one
    folder per file content (sha256) and precision avoids that. Old folders can be deleted.
    """
    digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]  # once, at start
    folder = cache.resolve() / f"{model.stem}-{digest}-{'fp16' if fp16 else 'fp32'}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError([f"detector.engine_cache: cannot write to {folder} ({reason})"]) from err
    return folder


def resolve_providers(
    requested: Sequence[Provider],
    model: Path,
    *,
    fp16: bool = True,
    engine_cache: Path | None = None,
    device_id: int = 0,
    openvino_device: str = "CPU",
    threads: int | None = None,
) -> list[tuple[str, dict[str, str]]]:
    """(ORT provider name, options) pairs for ``ort.InferenceSession(providers=...)``, in order.

    Unavailable providers are dropped with a warning; CPU closes the list when not listed, so a
    model with nodes the GPU providers lack still runs. ORT gives TensorRT the subgraphs it can
    build and each other node to the next provider that has it, so when TensorRT is chosen, CUDA
    follows it (when available, even unlisted) and keeps those nodes on the GPU.

    - ``tensorrt``: on GPU ``device_id``, an FP16 engine when ``fp16``. With ``engine_cache``, the
      engine built at the first start (minutes on a Jetson) is kept in ``engine_dir`` and loaded
      in seconds afterwards; the layer timing cache, shared by all models, sits in
      ``engine_cache`` itself. Without it, every start builds the engine again.
    - ``cuda``: on GPU ``device_id``.
    - ``openvino``: on OpenVINO's ``openvino_device`` (``device_type``: CPU, GPU, NPU, AUTO:...).
      OpenVINO runs its nodes on its own threads (8 by default, its documentation says), so
      ``threads`` (ORT's intra-op count) is passed on to it; ORT's own pool then runs only the
      nodes OpenVINO leaves to the CPU provider.
    """
    available = set(ort.get_available_providers())
    gpu = {"device_id": str(device_id)}
    chosen: list[tuple[str, dict[str, str]]] = []
    for name in dict.fromkeys([*requested, "cpu"]):  # in order, once each
        ort_name = ORT_PROVIDERS[name]
        if ort_name not in available:
            log.warning("execution provider %s is not available here; falling back", ort_name)
        elif name == "tensorrt":
            chosen.append((ort_name, _tensorrt_options(model, fp16, engine_cache) | gpu))
            if "cuda" not in requested and ORT_PROVIDERS["cuda"] in available:
                chosen.append((ORT_PROVIDERS["cuda"], dict(gpu)))
        elif name == "openvino":
            chosen.append((ort_name, openvino_options(openvino_device, threads)))
        else:
            chosen.append((ort_name, dict(gpu) if name == "cuda" else {}))
    return chosen


def openvino_options(device: str, threads: int | None) -> dict[str, str]:
    """OpenVINO EP options: ``device_type`` and, when set, the inference thread count in the
    form this onnxruntime-openvino release documents (``OPENVINO_LOAD_CONFIG_FROM``)."""
    options = {"device_type": device}
    if threads:
        release = tuple(int(part) for part in ort.__version__.split(".")[:2] if part.isdigit())
        if release >= OPENVINO_LOAD_CONFIG_FROM:
            hardware = device.split(":")[0].split(".")[0]  # the load_config key: CPU, GPU, AUTO
            config = {hardware: {"INFERENCE_NUM_THREADS": str(threads)}}
            options["load_config"] = json.dumps(config)
        else:
            options["num_of_threads"] = str(threads)
    return options


def _tensorrt_options(model: Path, fp16: bool, engine_cache: Path | None) -> dict[str, str]:
    options = {"trt_fp16_enable": str(fp16)}
    if engine_cache is None:
        log.warning("detector.engine_cache is null: TensorRT builds its engine at every start")
        return options
    folder = engine_dir(engine_cache, model, fp16)
    log.info("TensorRT engine cache %s; building an engine takes minutes on a Jetson", folder)
    return options | {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(folder),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(folder.parent),
    }


def check_rewrite_paths(model: Path, output: Path, source: str) -> None:
    """What a command that writes a model made from another (``edge models quantize``,
    ``edge models batch``) checks before any work: the model exists, the output's folder does,
    and the output is not the ``source`` model itself."""
    if not model.is_file():
        raise ModelError(f"{model}: model file not found")
    if not output.parent.is_dir():
        raise ModelError(f"{output}: output folder {output.parent} does not exist")
    if output.exists() and output.resolve() == model.resolve():
        raise ModelError(f"{output}: is the {source} itself; choose another output file")


def save_checked(data: bytes, output: Path, what: str) -> None:
    """Write ``data`` beside ``output``, load it as the detector will, then rename over
    ``output``: a reader never sees half a file, and a model the runtime refuses never replaces
    a working one. ``what`` names the model in the error."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        partial.write_bytes(data)
        OnnxRuntime(partial)
        partial.replace(output)
    except OSError as err:
        raise ModelError(f"{output}: cannot write the {what} ({err.strerror})") from err
    finally:
        partial.unlink(missing_ok=True)


class OnnxRuntime:
    """One inference session for the life of the process."""

    def __init__(
        self,
        path: Path,
        providers: Sequence[Provider] = ("cpu",),
        threads: int | None = None,
        *,
        fp16: bool = True,
        engine_cache: Path | None = None,
        device_id: int = 0,
        openvino_device: str = "CPU",
    ) -> None:
        """``providers`` and the device settings as in ``resolve_providers``; ``self.providers`` is
        what ORT actually uses, a requested provider that failed to load reported as a warning."""
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        ort.disable_telemetry_events()
        options = ort.SessionOptions()
        # The memory pattern pre-plans one block for every activation of a run and keeps it:
        # 35 MB more peak RSS for yolo11n at 640 (a third of ours), no measurable speed-up on
        # CPU (benchmarks/results/2026-12-01-speed). The arena still reuses the buffers.
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = threads
        wanted = resolve_providers(
            providers,
            path,
            fp16=fp16,
            engine_cache=engine_cache,
            device_id=device_id,
            openvino_device=openvino_device,
            threads=threads,
        )
        try:
            self.session = ort.InferenceSession(str(path), options, providers=wanted)
        except Exception as err:  # ORT raises its own untyped exceptions for every bad file
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelError(f"{path}: not a readable ONNX model ({reason})") from err
        return_freed_memory()  # the load's temporary copies: 12 MB for yolo11n, else kept in RSS
        in_use = self.session.get_providers()
        for name, _ in wanted:
            if name not in in_use:  # ORT falls back silently, e.g. CUDA without its libraries
                log.warning("execution provider %s failed to load; running without it", name)
        log.info("model %s on %s", path.name, ", ".join(in_use))
        self.providers: list[str] = list(in_use)
        self.info = read_model_info(self.session, path)
        self._input_name = self.session.get_inputs()[0].name
        # Fixed-shape models run on two buffers bound once: ORT neither allocates nor copies an
        # output per frame, which costs about 15 % of a 640x640 inference on a 2-core CPU. A
        # dynamic batch (``edge models batch``) binds the same batch-1 buffers for one frame.
        w, h = self.info.input_size
        nc = len(self.info.names)
        self.input_buffer = np.zeros((1, 3, h, w), np.float32)
        self._output_buffer = np.zeros((1, 4 + nc, max(self.info.outputs, 1)), np.float32)
        self._binding: ort.IOBinding | None = None
        if self.info.batch in (1, None) and self.info.outputs > 0:
            self._binding = self.session.io_binding()
            self._binding.bind_ortvalue_input(
                self._input_name, ort.OrtValue.ortvalue_from_numpy(self.input_buffer)
            )
            self._binding.bind_ortvalue_output(
                self.session.get_outputs()[0].name,
                ort.OrtValue.ortvalue_from_numpy(self._output_buffer),
            )

    @classmethod
    def configured(cls, path: Path, detector: DetectorConfig, threads: int | None) -> OnnxRuntime:
        """A session with the providers and device settings of the ``detector`` section."""
        return cls(
            path,
            detector.providers,
            threads,
            fp16=detector.fp16,
            engine_cache=detector.engine_cache,
            device_id=detector.device_id,
            openvino_device=detector.openvino_device,
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
