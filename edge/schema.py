"""The wire schema: what a counting box publishes and a dashboard reads, written once.

Both sides import this module, and it imports nothing of the box's runtime (no detector, no
OpenCV, no ONNX Runtime): only pydantic and the standard library.

- Names: the counted categories (``CategoryName``), the line directions (``Direction``) and the
  status values (``Status``), each a ``Literal`` whose values are the only place the strings
  are written; ``CATEGORY_NAMES``, ``DIRECTIONS`` and ``STATUSES`` are read from them.
- Patterns: ``NAME_PATTERN`` (site, camera, line and zone names, which are topic levels too),
  ``URL_PATTERN`` (public notices), ``POLICY_NAME_PATTERN``, ``SHA256_PATTERN``,
  ``REPORT_ID_PATTERN``, ``ISO_PATTERN``, ``TOPIC_PREFIX_PATTERN``, with pydantic field types
  ``Name``, ``Url``, ``PolicyName``, ``Sha256``, ``Iso``, ``Count``.
- Messages: ``PublishedReport`` (with ``ZoneFigures``), ``StatsMessage`` (with
  ``CameraStats``), ``NoticeMessage``, ``AuditHeadMessage``; closed (no extra field), frozen
  and strict.
  ``describe_invalid`` says why a payload is not one of them without repeating its values.
- Topics (``P`` = topic prefix, ``S`` = site, ``C`` = camera)::

      P/S/C/counts   PublishedReport, one per window, QoS 1, not retained
      P/S/C/status   "online" / "offline", retained
      P/S/status     "online" / "offline", retained; "offline" is also the last will
      P/S/stats      StatsMessage, QoS 0
      P/S/notice     NoticeMessage, retained
      P/S/audit      AuditHeadMessage (the audit log's head), retained, QoS 1

  ``Topics`` builds them (and a collector's subscription filters), ``parse_topic`` reads one
  back into site, camera and kind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal, NamedTuple, cast, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "CATEGORY_NAMES",
    "DIRECTIONS",
    "ISO_PATTERN",
    "MOVEMENTS_SCHEMA_VERSION",
    "NAME_PATTERN",
    "NAME_RE",
    "POLICY_NAME_PATTERN",
    "REPORT_ID_PATTERN",
    "SCHEMA_VERSION",
    "SHA256_PATTERN",
    "STATUSES",
    "TOPIC_KINDS",
    "TOPIC_PREFIX_PATTERN",
    "URL_MAX_LENGTH",
    "URL_PATTERN",
    "AuditHeadMessage",
    "CameraStats",
    "CategoryName",
    "Count",
    "Direction",
    "Iso",
    "MovementFigures",
    "MovementsReport",
    "Name",
    "NoticeMessage",
    "ParsedTopic",
    "PolicyName",
    "PublishedReport",
    "Sha256",
    "StatsMessage",
    "Status",
    "TopicKind",
    "Topics",
    "Url",
    "ZoneFigures",
    "describe_invalid",
    "iso",
    "parse_report",
    "parse_topic",
    "report_id",
]

SCHEMA_VERSION: Final = 1
# A report with turning movements: version 1 and a ``movements`` table. A camera without
# movements still publishes version 1, byte for byte, so existing consumers keep working.
MOVEMENTS_SCHEMA_VERSION: Final = 2

# -- names ------------------------------------------------------------------------------------

CategoryName = Literal["pedestrian", "bike", "vehicle"]
CATEGORY_NAMES: tuple[CategoryName, ...] = get_args(CategoryName)

Direction = Literal["in", "out"]
"""``in``: the anchor moved from the right-hand to the left-hand side of someone walking the
line from its start to its end, on screen; ``out``: the opposite (``edge.config.LineConfig``)."""
DIRECTIONS: tuple[Direction, ...] = get_args(Direction)

Status = Literal["online", "offline"]
STATUSES: tuple[Status, ...] = get_args(Status)

# -- patterns ---------------------------------------------------------------------------------

# A slug: 1-32 lowercase letters, digits, "_" and "-", starting with a letter or digit. Names
# are public (every report, topic, Home Assistant entity, the notice and the dashboard show them),
# so they are short identifiers, never sentences; ``edge.config`` also refuses names that look
# like personal data or name a forbidden use.
NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9_-]{0,31}$"
NAME_RE: Final = re.compile(NAME_PATTERN)
URL_PATTERN: Final = r"^https?://\S+$"
URL_MAX_LENGTH: Final = 300
POLICY_NAME_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,63}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
REPORT_ID_PATTERN: Final = r"^[0-9a-f]{32}$"
ISO_PATTERN: Final = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
TOPIC_PREFIX_PATTERN: Final = r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$"

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
Url = Annotated[str, Field(pattern=URL_PATTERN, max_length=URL_MAX_LENGTH)]
PolicyName = Annotated[str, Field(pattern=POLICY_NAME_PATTERN)]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]
Iso = Annotated[str, Field(pattern=ISO_PATTERN)]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
# Seconds since 1970 up to the last second of year 9999: ``iso`` (and so ``window_start``)
# cannot go further, and a database's 64-bit integer holds it.
Seconds = Annotated[float, Field(ge=0, le=253_402_300_799)]
# A running total since the process started: 25 fps for a year is 8e8 frames.
Total = Annotated[int, Field(ge=0, le=2**53)]

# -- messages ---------------------------------------------------------------------------------


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ZoneFigures(_Closed):
    mean: float = Field(ge=0, le=1_000_000)
    max: Count


def iso(seconds: float) -> str:
    """Seconds on the source's clock (Unix time for live and ``edge run``) as ISO 8601 UTC."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_id(camera: str, start: float, policy_sha256: str) -> str:
    """Same camera, window and policy -> same id, so consumers can drop duplicates."""
    return hashlib.sha256(f"{camera}|{start:.3f}|{policy_sha256}".encode()).hexdigest()[:32]


class PublishedReport(_Closed):
    """The only count payload that ever leaves the box: one camera, one window, counts.

    start/end are seconds on the source's clock and window_start/window_end the same instants
    in ISO 8601 UTC; ``edge count`` replays a clip on stream time from 0 (1970-01-01T00:00Z).
    """

    schema_version: Literal[1]
    report_id: str = Field(pattern=REPORT_ID_PATTERN)
    camera: Name
    start: Seconds
    end: Seconds
    window_start: Iso
    window_end: Iso
    frames: Count
    observed_s: float = Field(ge=0)
    partial: bool
    lines: dict[Name, dict[Direction, dict[CategoryName, Count]]]
    zones: dict[Name, dict[CategoryName, ZoneFigures]]
    policy_sha256: Sha256
    notice_url: Url

    @model_validator(mode="after")
    def _window_forward(self) -> PublishedReport:
        """A window ends after it starts: the box never makes another, a store must not keep one."""
        if self.start >= self.end:
            raise ValueError("start: not before end")
        return self

    @property
    def movement_counts(self) -> dict[str, dict[CategoryName, int]]:
        """movement -> category -> objects; none before version 2."""
        return {}


class MovementFigures(_Closed):
    """One turning movement in a window: objects that passed line ``origin``, then line
    ``destination`` (both lines of the report), per category."""

    origin: Name
    destination: Name
    counts: dict[CategoryName, Count]


class MovementsReport(PublishedReport):
    """Version 2: a ``PublishedReport`` with turning movements (``edge.config.MovementConfig``)."""

    schema_version: Literal[2]  # type: ignore[assignment]
    movements: dict[Name, MovementFigures]

    @model_validator(mode="after")
    def _between_its_lines(self) -> MovementsReport:
        for name, figures in self.movements.items():
            if {figures.origin, figures.destination} - set(self.lines):
                raise ValueError(f"movements.{name}: origin and destination must be its lines")
        return self

    @property
    def movement_counts(self) -> dict[str, dict[CategoryName, int]]:
        return {name: dict(figures.counts) for name, figures in self.movements.items()}


def parse_report(payload: object) -> PublishedReport:
    """A count payload of any published version (raises ``ValidationError``)."""
    version = payload.get("schema_version") if isinstance(payload, dict) else None
    model = MovementsReport if version == MOVEMENTS_SCHEMA_VERSION else PublishedReport
    return model.model_validate(payload)


class CameraStats(_Closed):
    """Health of one camera: figures about the machine and the stream, nothing about the scene."""

    frames_received: Total
    frames_processed: Total
    frames_dropped: Total  # replaced by a newer frame, or beyond target_fps, before processing
    fps: float = Field(ge=0, le=10_000)
    detector_ms_p50: float = Field(ge=0, le=1e6)
    detector_ms_p95: float = Field(ge=0, le=1e6)
    frame_age_ms_p50: float = Field(ge=0, le=1e9)
    frame_age_ms_p95: float = Field(ge=0, le=1e9)
    reconnects: Total
    stalls: Total
    offline_s: float = Field(ge=0, le=1e9)
    online: bool


class StatsMessage(_Closed):
    schema_version: Literal[1]
    time: Iso
    cameras: dict[Name, CameraStats]
    spool_depth: Count
    reports_published: Total
    reports_dropped: Total
    delivery: Literal["ok", "failing"] = "ok"  # the spool's drain to the broker
    delivery_errors: Total = 0  # failed drain passes since the start


class NoticeMessage(_Closed):
    """The public information notice, retained on the broker for anyone to read."""

    schema_version: Literal[1]
    policy: PolicyName
    policy_sha256: Sha256
    notice_url: Url
    notice: str = Field(max_length=20_000)


class AuditHeadMessage(_Closed):
    """The head of the box's audit log, retained: a copy kept off the box, against which a log
    cut short or rewritten and re-chained fails ``edge audit verify --expect-head``."""

    schema_version: Literal[1]
    site: Name
    time: Iso
    entries: int = Field(ge=1, le=2**53)  # the head is entry number ``entries``
    head: Sha256  # that entry's hash


def describe_invalid(err: ValidationError) -> str:
    """Why a payload was refused, by field path and error type only: never its values."""
    parts = [".".join(str(p) for p in e["loc"])[:80] + f" ({e['type']})" for e in err.errors()[:5]]
    more = f" and {err.error_count() - 5} more" if err.error_count() > 5 else ""
    return "not a well-formed report: " + "; ".join(parts) + more


# -- topics -----------------------------------------------------------------------------------

TopicKind = Literal["counts", "status", "stats", "notice", "audit"]
TOPIC_KINDS: tuple[TopicKind, ...] = get_args(TopicKind)
_CAMERA_KINDS: Final = ("counts", "status")  # P/S/C/kind
_SITE_KINDS: Final = ("status", "stats", "notice", "audit")  # P/S/kind


@dataclass(frozen=True)
class Topics:
    """The topics of one site under ``prefix``; ``site`` (and ``camera``) may be the MQTT
    single-level wildcard ``+`` to build subscription filters."""

    prefix: str
    site: str

    def counts(self, camera: str) -> str:
        return f"{self.prefix}/{self.site}/{camera}/counts"

    def camera_status(self, camera: str) -> str:
        return f"{self.prefix}/{self.site}/{camera}/status"

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.site}/status"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/{self.site}/stats"

    @property
    def notice(self) -> str:
        return f"{self.prefix}/{self.site}/notice"

    @property
    def audit(self) -> str:
        return f"{self.prefix}/{self.site}/audit"

    def filters(self) -> tuple[str, ...]:
        """Subscription filters for every topic of this site, of every camera."""
        return (
            self.counts("+"), self.camera_status("+"), self.status, self.stats, self.notice,
            self.audit,
        )  # fmt: skip


class ParsedTopic(NamedTuple):
    site: str
    camera: str | None  # None for the site's own topics
    kind: TopicKind


def parse_topic(topic: str, prefix: str) -> ParsedTopic:
    """``P/site/camera/kind`` or ``P/site/kind`` -> (site, camera or None, kind).

    Raises ``ValueError`` saying why (safe to log: it never repeats the topic) for a topic
    outside ``prefix``, of an unknown shape or kind, or whose site or camera is not a name.
    """
    if not topic.startswith(prefix + "/"):
        raise ValueError("topic outside the prefix")
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) == 3 and parts[2] in _CAMERA_KINDS:
        site, camera, kind = parts
    elif len(parts) == 2 and parts[1] in _SITE_KINDS:
        (site, kind), camera = parts, None
    else:
        raise ValueError("unknown topic")
    if not all(NAME_RE.fullmatch(name) for name in (site, camera) if name is not None):
        raise ValueError("topic: site or camera is not a name")
    return ParsedTopic(site, camera, cast(TopicKind, kind))  # one of the kinds checked above
