"""The one configuration tree: a YAML file, overridden by ``EDGE_*`` environment variables.

Every section forbids unknown keys, so a typo is an error rather than a silently ignored
setting. Errors are reported one per line, named by their YAML path (``cameras[0].source``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Final, Literal, Union, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from edge.analytics.geometry import Anchor, polygon_is_simple
from edge.analytics.riders import RiderConfig
from edge.analytics.track import TrackerConfig
from edge.errors import ConfigError, PolicyViolation, validation_lines
from edge.health import HEALTH_FILE_ENV
from edge.legal.forbidden import (
    find_forbidden,
    find_forbidden_in_environment,
    personal_data,
    public_name_problem,
)
from edge.schema import (
    NAME_RE,
    SHA256_PATTERN,
    TOPIC_PREFIX_PATTERN,
    URL_MAX_LENGTH,
    URL_PATTERN,
    Direction,
    Name,
)
from edge.vision.motion import MotionConfig
from edge.yaml_io import number_problems, read_yaml

MAX_COORDINATE: Final = 100_000.0  # pixels; far beyond any sensor, far below float overflow
Coordinate = Annotated[float, Field(ge=-MAX_COORDINATE, le=MAX_COORDINATE, allow_inf_nan=False)]
"""A point's x or y in frame pixels: finite and bounded, so geometry never overflows."""
Point = tuple[Coordinate, Coordinate]
Provider = Literal["cpu", "cuda", "tensorrt", "openvino"]  # ONNX Runtime execution providers
SHARED_MODEL_DIR = Path("../shared/models")
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the checkout or install: policies/, models/


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _public_name(name: str) -> str:
    """Names are public: one that names a forbidden use or looks like personal data is refused."""
    problem = public_name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


def _public_location(location: str | None) -> str | None:
    """A location is free text on the public notice: a place, never a resident."""
    found = None if location is None else personal_data(location)
    if found is not None:
        raise ValueError(f"looks like personal data ({found}); the location is public")
    return location


PublicName = Annotated[Name, AfterValidator(_public_name)]
"""A camera id, line, zone or site name: a slug (``NAME_PATTERN``) that is safe to publish."""


class LineConfig(Section):
    """A counting line from ``start`` (A) to ``end`` (B), in frame pixels (x right, y down).

    ``in`` is a move of the anchor from the right-hand side to the left-hand side of someone
    walking from A to B on screen; ``out`` is the opposite.
    """

    name: PublicName
    start: Point
    end: Point
    anchor: Anchor = "bottom_center"
    hysteresis: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Dead band each side of the line, as a fraction of the box's extent across "
        "the line: an object must move this far past the line to count, so jitter never counts.",
    )

    @model_validator(mode="after")
    def _not_degenerate(self) -> LineConfig:
        if self.start == self.end:
            raise ValueError(f"line '{self.name}' has the same start and end point {self.start}")
        return self


class ZoneConfig(Section):
    """A polygon in frame pixels; reported as mean and maximum occupancy per window."""

    name: PublicName
    points: list[Point] = Field(min_length=3)
    anchor: Anchor = "bottom_center"

    @field_validator("points")
    @classmethod
    def _simple_polygon(cls, points: list[Point]) -> list[Point]:
        if not polygon_is_simple(np.asarray(points, dtype=np.float64)):
            raise ValueError("polygon has zero area or crosses itself")
        return points


class MovementConfig(Section):
    """A turning movement: objects that passed line ``from`` and then line ``to`` (each in the
    given direction, or either) within ``within_s`` seconds; counted per category and window."""

    model_config = ConfigDict(populate_by_name=True)  # merged with Section's

    name: PublicName
    from_line: Name = Field(alias="from", description="The line passed first.")
    to_line: Name = Field(alias="to", description="The line passed next.")
    from_direction: Direction | None = Field(
        default=None, description="Only passages over ``from`` in this direction; null: either."
    )
    to_direction: Direction | None = Field(
        default=None, description="Only passages over ``to`` in this direction; null: either."
    )
    within_s: float = Field(
        default=30.0, gt=0, le=600, description="Longest time from the first passage to the next."
    )


class CameraConfig(Section):
    id: PublicName = Field(
        description="Camera id, used in topics and reports: 1-32 lowercase letters, digits, _-."
    )
    location: Annotated[str | None, AfterValidator(_public_location)] = Field(
        default=None, max_length=200, description="Where the camera is, as on the public notice."
    )
    notice_url: str | None = Field(
        default=None,
        pattern=URL_PATTERN,
        description="This camera's own public notice, when not the deployment's.",
    )
    source: str = Field(
        min_length=1,
        description="Clip path, image folder, rtsp(s)://, http(s):// (MJPEG) or /dev/videoN.",
    )
    target_fps: float | None = Field(
        default=None, gt=0, le=120, description="Process at most this many frames per second."
    )
    transport: Literal["tcp", "udp"] = Field(default="tcp", description="RTSP transport.")
    stall_seconds: float = Field(
        default=5.0, ge=0.5, le=120, description="No frame for this long: reconnect."
    )
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    movements: list[MovementConfig] = Field(
        default_factory=list, description="Turning movements between two of the lines."
    )

    @field_validator("source")
    @classmethod
    def _supported_source(cls, source: str) -> str:
        scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", source)
        if scheme and scheme.group(1).lower() not in ("rtsp", "rtsps", "http", "https"):
            raise ValueError(
                f"unsupported scheme '{scheme.group(1)}': expected rtsp://, rtsps://, "
                "http(s):// (MJPEG), /dev/videoN or a file path"
            )
        if scheme and not re.match(r"^[a-z]+://[^/\s]+", source, re.IGNORECASE):
            raise ValueError("a stream URL needs a host, e.g. rtsp://192.0.2.10:554/stream1")
        if source.startswith("/dev/") and not re.fullmatch(r"/dev/video\d+", source):
            raise ValueError("a USB camera is /dev/videoN")
        return source

    @model_validator(mode="after")
    def _unique_names(self) -> CameraConfig:
        lines = [line.name for line in self.lines]
        names = lines + [zone.name for zone in self.zones] + [m.name for m in self.movements]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(
                f"line, zone and movement names must be unique, repeated: {duplicates}"
            )
        for i, movement in enumerate(self.movements):
            for end in (movement.from_line, movement.to_line):
                if end not in lines:
                    raise ValueError(f"movements[{i}]: no line '{end}' on this camera ({lines})")
            if movement.from_line == movement.to_line:
                raise ValueError(f"movements[{i}]: 'from' and 'to' must be two different lines")
        return self

    def check_fits(self, frame_size: tuple[int, int], where: str) -> None:
        """Refuse geometry outside the frame, once the source tells its size."""
        w, h = frame_size
        named_points = [
            (f"lines[{i}].{field}", point)
            for i, line in enumerate(self.lines)
            for field, point in (("start", line.start), ("end", line.end))
        ] + [
            (f"zones[{i}].points", point)
            for i, zone in enumerate(self.zones)
            for point in zone.points
        ]
        errors = [
            f"{where}.{name}: {point} is outside the {w}x{h} frame"
            for name, point in named_points
            if not (0 <= point[0] <= w and 0 <= point[1] <= h)
        ]
        if errors:
            raise ConfigError(errors)


class DetectorConfig(Section):
    """The YOLO ONNX file and how ONNX Runtime runs it; ``device_id`` serves ``cuda`` and
    ``tensorrt``, ``fp16`` and ``engine_cache`` only ``tensorrt``, ``openvino_device`` only
    ``openvino``."""

    model: Path = Field(
        default=Path("yolo11n.onnx"),
        description="ONNX file; a bare name is looked up in model_dir.",
    )
    confidence: float = Field(default=0.25, gt=0, lt=1, description="Lowest score kept.")
    iou: float = Field(default=0.7, gt=0, le=1, description="Class-wise NMS IoU threshold.")
    providers: list[Provider] = Field(
        default=["cpu"],
        min_length=1,
        description="In order of preference; unavailable ones are skipped with a warning, CPU "
        "ends the list. With tensorrt, CUDA runs the nodes TensorRT cannot. openvino needs "
        "the onnxruntime-openvino wheel instead of onnxruntime.",
    )
    threads: int | None = Field(default=None, ge=1, le=64, description="ORT intra-op threads.")
    max_detections: int = Field(default=300, ge=1, le=3000)
    fp16: bool = Field(default=True, description="TensorRT builds an FP16 engine (else FP32).")
    engine_cache: Path | None = Field(
        default=Path("var/trt-cache"),
        description="Where TensorRT keeps its engines, one folder per model file and precision: "
        "a build takes minutes on a Jetson, so put it on a volume. Created if missing; null "
        "builds at every start.",
    )
    device_id: int = Field(default=0, ge=0, le=15, description="GPU for cuda and tensorrt.")
    region_margin: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Detect only on the rectangle around a camera's lines and zones, grown by "
        "this fraction of the frame's larger side (edge.detect.roi): the model sees that region "
        "at a higher resolution and nothing outside it. Used when the region is at most 60 % "
        "of the frame; null (the default) always detects on the whole frame. Objects cut by "
        "the rectangle's edge are detected worse: give a margin of at least an object's size.",
    )
    openvino_device: str = Field(
        default="CPU",
        pattern=r"^(CPU|NPU|GPU(\.[0-9]+)?|(AUTO|HETERO|MULTI):[A-Z0-9.,]+)$",
        description="OpenVINO device_type: CPU, GPU, GPU.1, NPU, or e.g. AUTO:GPU,CPU.",
    )


class WindowConfig(Section):
    seconds: int = Field(default=60, ge=1, le=86400, description="Aggregation window length.")


class TlsConfig(Section):
    ca_file: Path = Field(description="CA certificate that signed the broker's certificate.")
    cert_file: Path | None = Field(default=None, description="Client certificate, if required.")
    key_file: Path | None = Field(default=None, description="Client certificate's key.")


class MqttConfig(Section):
    """Broker connection. Topics: ``<topic_prefix>/<site>/<camera>/counts|status`` and
    ``<topic_prefix>/<site>/status|stats|notice`` (see the README)."""

    enabled: bool = False
    host: str = "localhost"
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="edge", pattern=TOPIC_PREFIX_PATTERN)
    site: PublicName = "site"
    client_id: str | None = Field(default=None, max_length=64, description="Default edge-<site>.")
    username: str | None = None
    password: SecretStr | None = Field(
        default=None, description="Never logged; EDGE_MQTT__PASSWORD."
    )
    tls: TlsConfig | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: int = Field(default=1, ge=1, le=60)
    reconnect_max_s: int = Field(default=60, ge=1, le=3600)
    stats_interval_s: float = Field(default=30.0, ge=1, le=3600)
    home_assistant: bool = Field(default=False, description="Publish Home Assistant discovery.")
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[A-Za-z0-9_-]+$")


class SpoolConfig(Section):
    path: Path = Field(default=Path("var/spool.sqlite"), description="Reports not yet delivered.")
    max_reports: int = Field(default=100_000, ge=10, le=10_000_000)


class SinksConfig(Section):
    """Where admitted reports go besides MQTT (``mqtt.enabled``)."""

    stdout: bool = False
    jsonl: Path | None = Field(default=None, description="Append one JSON line per report.")


class PolicyConfig(Section):
    """The policy in force, pinned: the gate refuses any other file, whatever its path."""

    file: Path = Field(
        default=Path("policies/cnil-statistics.yaml"),
        description="A policy shipped with the package (policies/NAME.yaml) or an absolute "
        "path; never looked up in the working directory.",
    )
    sha256: str | None = Field(
        default=None,
        pattern=SHA256_PATTERN,
        description="The sha256 of the policy the DPO approved (`edge policy show`); required.",
    )

    def path(self) -> Path:
        """Absolute as given, else the shipped policy: a folder named ``policies`` in the
        working directory cannot stand in for the package's."""
        return self.file if self.file.is_absolute() else PACKAGE_ROOT / self.file


Recipient = Annotated[str, Field(min_length=1, max_length=200)]


class RecipientsConfig(Section):
    """Who receives the published counts (GDPR art. 13(1)(e)), as the public notice names them.
    Every field is optional so that a missing one shows as "not declared" on the notice and can
    be named by the start-up gate (``undeclared``); ``false`` declares there is no such
    recipient, which is not the same as saying nothing."""

    broker_operator: Recipient | Literal[False] | None = Field(
        default=None, description="Who runs the MQTT broker that receives the counts."
    )
    dashboard: Recipient | Literal[False] | None = Field(
        default=None, description="Who runs the footfall dashboard that shows the counts."
    )
    dashboard_url: str | None = Field(default=None, pattern=URL_PATTERN, max_length=URL_MAX_LENGTH)
    open_data_portal: Recipient | Literal[False] | None = Field(
        default=None, description="Open-data portal that republishes the counts."
    )
    open_data_url: str | None = Field(default=None, pattern=URL_PATTERN, max_length=URL_MAX_LENGTH)
    open_data_licence: Recipient | None = Field(
        default=None, description="Licence of the open data, e.g. 'Licence Ouverte 2.0'."
    )
    open_data_licence_url: str | None = Field(
        default=None, pattern=URL_PATTERN, max_length=URL_MAX_LENGTH
    )
    others: list[Recipient] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _no_details_of_a_denied_recipient(self) -> RecipientsConfig:
        if self.dashboard is False and self.dashboard_url:
            raise ValueError("dashboard is false (none) but dashboard_url is set")
        details = (self.open_data_url, self.open_data_licence, self.open_data_licence_url)
        if self.open_data_portal is False and any(details):
            raise ValueError("open_data_portal is false (none) but its url or licence is set")
        return self

    def undeclared(self) -> list[str]:
        """YAML paths of the recipients facts the notice must give and the file does not."""
        missing = [
            name
            for name in ("broker_operator", "dashboard", "open_data_portal")
            if getattr(self, name) is None
        ]
        if isinstance(self.open_data_portal, str) and self.open_data_licence is None:
            missing.append("open_data_licence")
        return [f"deployment.recipients.{name}" for name in missing]


class DeploymentConfig(Section):
    """The deployment declaration (GDPR art. 13 and 30): who counts, why, on what basis, and
    where the public is told. Fields are optional here so that a missing one is a refusal by
    the legal gate, which names the policy rule that requires it."""

    controller: str | None = Field(default=None, max_length=200)
    purpose: str | None = Field(default=None, max_length=100)
    legal_basis: str | None = Field(default=None, max_length=300)
    dpo_contact: str | None = Field(default=None, max_length=200)
    rights_contact: str | None = Field(
        default=None,
        max_length=200,
        description="Where the public exercises its rights; the notice gives dpo_contact if unset.",
    )
    notice_url: str | None = Field(default=None, pattern=URL_PATTERN, max_length=URL_MAX_LENGTH)
    signage_reference: str | None = Field(default=None, max_length=200)
    retention_days: int | None = Field(
        default=None, ge=1, le=3650, description="Days the controller keeps published counts."
    )
    recipients: RecipientsConfig = Field(default_factory=RecipientsConfig)


class DashboardConfig(Section):
    """``edge dashboard``: the collector and web UI that keeps the published counts of every site.

    It reads the broker settings of ``mqtt`` (host, port, username, password, tls, topic_prefix)
    and subscribes to ``<topic_prefix>/<site>/...`` for each entry of ``sites``.
    """

    database: SecretStr = Field(
        default=SecretStr("sqlite:///var/dashboard.sqlite"),
        description="SQLAlchemy URL: sqlite:///PATH (default) or "
        "postgresql+psycopg://USER:PASSWORD@HOST/DB; a secret (EDGE_DASHBOARD__DATABASE).",
    )
    sites: list[str] = Field(
        default=["+"],
        min_length=1,
        description="Sites to collect, as MQTT topic levels; '+' is every site on the broker.",
    )
    client_id: str = Field(
        default="edge-dashboard",
        max_length=64,
        description="MQTT client id of the persistent session that keeps messages while down.",
    )
    listen_host: str = Field(default="127.0.0.1", description="Web UI and API address.")
    listen_port: int = Field(default=8080, ge=1, le=65535)
    timezone: str = Field(
        default="UTC", description="IANA time zone of days and hours, e.g. Europe/Paris."
    )
    title: str = Field(default="Footfall", max_length=100, description="Title of the web page.")
    licence: str = Field(default="CC-BY-4.0", max_length=100, description="Licence of exports.")
    licence_url: str | None = Field(
        default="https://creativecommons.org/licenses/by/4.0/", pattern=URL_PATTERN
    )
    attribution: str | None = Field(
        default=None, max_length=200, description="Attribution the licence asks re-users to give."
    )
    raw_retention_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="Days each window is kept as received; after that only hourly totals remain.",
    )
    hourly_retention_days: int | None = Field(
        default=None, ge=1, le=36500, description="Days hourly totals are kept; none: forever."
    )
    access: Literal["public", "token"] = Field(
        default="public", description="'public': anyone may read; 'token': the API needs one."
    )
    token: SecretStr | None = Field(
        default=None, description="Read token for access 'token' (EDGE_DASHBOARD__TOKEN)."
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone '{name}', expected e.g. Europe/Paris") from err
        return name

    @field_validator("sites")
    @classmethod
    def _topic_levels(cls, sites: list[str]) -> list[str]:
        for site in sites:
            if site != "+" and not NAME_RE.fullmatch(site):
                raise ValueError(f"site '{site}' is neither '+' nor a site name")
        return sites

    @model_validator(mode="after")
    def _token_when_needed(self) -> DashboardConfig:
        if self.access == "token" and (
            self.token is None or len(self.token.get_secret_value()) < 16
        ):
            raise ValueError("access 'token' needs a token of at least 16 characters")
        return self


def _default_model_dir() -> Path:
    return SHARED_MODEL_DIR if SHARED_MODEL_DIR.is_dir() else Path("models")


class Settings(BaseModel):
    """Root of the configuration. Environment variables win over the YAML file:
    ``EDGE_DETECTOR__CONFIDENCE=0.4`` sets ``detector.confidence`` (``environment_values``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_dir: Path = Field(default_factory=_default_model_dir)
    cameras: list[CameraConfig] = Field(default_factory=list)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    motion: MotionConfig = Field(default_factory=MotionConfig)
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    riders: RiderConfig = Field(default_factory=RiderConfig)
    window: WindowConfig = Field(default_factory=WindowConfig)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    deployment: DeploymentConfig = Field(default_factory=DeploymentConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    sinks: SinksConfig = Field(default_factory=SinksConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = [camera.id for camera in cameras]
        if len(set(ids)) != len(ids):
            raise ValueError(f"camera ids must be unique, got {ids}")
        return cameras

    def model_path(self) -> Path:
        """The detector model: as given if that file exists, else looked up in ``model_dir``."""
        model = self.detector.model
        if model.is_absolute() or model.exists():
            return model
        return self.model_dir / model


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Read, validate and return the settings; ``ConfigError`` lists every problem.

    A configuration asking for a forbidden use (``edge.legal.forbidden``) is refused first, with the
    legal reason, as ``PolicyViolation``.
    """
    data: dict[str, Any] = {}
    if path is not None:
        loaded = read_yaml(path, "configuration")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                [f"{path}: expected a mapping at the top, got {type(loaded).__name__}"]
            )
        keys = [key for key in loaded if not isinstance(key, str)]
        if keys:
            raise ConfigError([f"{path}: a top-level key must be a name, got {keys[0]!r}"])
        data = loaded
    data.update(overrides)
    refusals = [
        *(str(refusal) for refusal in find_forbidden(data)),
        *(str(refusal) for refusal in find_forbidden_in_environment(os.environ, NON_SETTING_ENV)),
    ]
    if refusals:
        raise PolicyViolation(refusals)
    _refuse_audit_location(data)
    _refuse_unknown_environment(os.environ)
    data = _merged(data, environment_values(os.environ))
    problems = number_problems(Settings, data)
    if problems:
        raise ConfigError([f"{path}: {line}" if path else line for line in problems])
    try:
        return Settings(**data)
    except ValidationError as err:
        raise ConfigError(validation_lines(err)) from err


AUDIT_LOG_PLACE = "the audit log's place belongs to the installation: edge --audit-log PATH"


def _refuse_audit_location(data: Mapping[str, Any]) -> None:
    """The audit log is where the service's command line says: a configuration or environment
    that chose it could send its own refusal to a throwaway file."""
    if "audit" in data:
        raise ConfigError([f"audit.path: not a setting; {AUDIT_LOG_PLACE}"])
    for name in os.environ:
        if name.upper().startswith("EDGE_AUDIT"):
            raise ConfigError([f"{name} (audit.path): not a setting; {AUDIT_LOG_PLACE}"])


# The project's ``EDGE_*`` variables that set no setting: read by the commands, tests, benchmarks
# and deployment scripts named, never by ``Settings``.
NON_SETTING_ENV: Final = frozenset(
    {
        HEALTH_FILE_ENV,  # edge run / edge health: the heartbeat file (edge.health)
        "EDGE_SHARED_DIR",  # tests and benchmarks: the shared models and clips
        "EDGE_SOAK_ROOT",  # benchmarks/soak.py: the tree it runs
        "EDGE_MODELS",  # deploy/compose.yaml: the models folder it mounts
        "EDGE_IMAGE",  # scripts/image-test.sh: the image it tests
        "EDGE_IMAGE_CACHE",  # scripts/image-test.sh: its cache
        "EDGE_TEST_ARTIFACTS",  # tests/integration/test_dashboard_browser.py: screenshots
    }
)


def _refuse_unknown_environment(environ: Mapping[str, str]) -> None:
    """An ``EDGE_*`` variable that sets nothing is an error, like an unknown key in the file:
    ignored, ``EDGE_MODE=...`` would look accepted."""
    errors = [
        f"{name}: no such setting; a variable sets one as EDGE_SECTION__KEY, e.g. "
        f"EDGE_DETECTOR__CONFIDENCE{_did_you_mean(name)}"
        for name in sorted(environ)
        if name.upper().startswith("EDGE_")
        and name.upper() not in NON_SETTING_ENV
        and not _sets_a_setting(name[len("EDGE_") :])
    ]
    if errors:
        raise ConfigError(errors)


def _field_at(rest: str) -> FieldInfo | None:
    """The field ``EDGE_<rest>`` sets (any case, ``__`` between a section and its keys), or
    ``None``."""
    model: type[BaseModel] | None = Settings
    field = None
    for key in rest.lower().split("__"):
        field = model.model_fields.get(key) if model is not None else None
        if field is None:
            return None
        model = next(
            (t for t in (field.annotation, *get_args(field.annotation))
             if isinstance(t, type) and issubclass(t, BaseModel)),
            None,
        )  # fmt: skip
    return field


def _sets_a_setting(rest: str) -> bool:
    return _field_at(rest) is not None


def _is_structured(annotation: Any) -> bool:
    """A list, mapping or section: given as JSON in a variable."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_is_structured(arg) for arg in get_args(annotation))
    if origin in (list, tuple, dict, set, frozenset):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the ``EDGE_*`` variables set, nested like the file: any case, ``__`` between a
    section and its keys, JSON for a list or a section, a string otherwise (validated like the
    file's values). Read here rather than by pydantic-settings, whose import alone costs 14 MB of
    RSS (it loads asyncio and ssl). Variables that set nothing were refused before."""
    values: dict[str, Any] = {}
    for name in sorted(environ, key=lambda n: (n.count("__"), n)):  # a section, then its keys
        if not name.upper().startswith("EDGE_") or name.upper() in NON_SETTING_ENV:
            continue
        rest = name[len("EDGE_") :]
        field = _field_at(rest)
        if field is None:
            continue
        value: Any = environ[name]
        if _is_structured(field.annotation):
            try:
                value = json.loads(value)
            except ValueError as err:
                raise ConfigError(
                    [f"{name}: expected JSON (a list or a section), got {value[:40]!r} ({err})"]
                ) from err
        for key in reversed(rest.lower().split("__")):
            value = {key: value}
        values = _merged(values, value)
    return values


def _did_you_mean(name: str) -> str:
    rest = name[len("EDGE_") :]
    for i, ch in enumerate(rest):
        if ch == "_" and _sets_a_setting(f"{rest[:i]}__{rest[i + 1 :]}"):
            return f" (did you mean EDGE_{rest[:i]}__{rest[i + 1 :]}?)"
    return ""


def config_sha256(settings: Settings) -> str:
    """sha256 of the canonical JSON of the settings in force; secrets (``SecretStr``) dump as
    asterisks, so the hash never depends on, or reveals, a password."""
    canonical = json.dumps(
        settings.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def with_overrides(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    """``settings`` with ``changes`` (nested like the file: ``{"detector": {"model": ...}}``),
    validated like the file; flags win over the environment, which wins over the file."""
    try:
        return Settings(**_merged(settings.model_dump(), changes))
    except ValidationError as err:
        raise ConfigError(validation_lines(err)) from err
