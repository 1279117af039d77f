"""The legal gate: checked once before any frame is read, and again on every outgoing payload.

Start-up (``startup_gate``): the policy is in force today, the declared purpose is the policy's,
every declaration field the policy requires is there, every camera has a public notice and a
location, windows are at least the policy's minimum, lines and zones are outputs the policy
allows, and the model only detects (task ``detect``, COCO ids 0-7 meaning what the class filter
assumes, no class such as a face or a plate). Forbidden modes never reach it: the configuration
has no field for them and ``edge.forbidden`` refuses a file that asks for one.

Egress (``EgressGate``): the only way to a sink. A payload passes only if it is a well-formed
``PublishedReport`` (closed schema: no extra field, no id, box, coordinate, image or free text)
that agrees with the policy: its sha256, allowed categories, window length, small-count rule.
Anything else is dropped and the drop written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.aggregate import CountReport
from edge.audit import AuditLog
from edge.config import CameraConfig, Settings
from edge.detect.runtime import ModelInfo
from edge.detections import COUNTED_CLASSES, Category
from edge.errors import PolicyViolation
from edge.forbidden import forbidden_class
from edge.policy import Policy

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Decision:
    """One check of the gate: ``rule`` names it, ``detail`` says what was found or why not."""

    rule: str
    allowed: bool
    detail: str

    def __str__(self) -> str:
        return f"{'allowed' if self.allowed else 'REFUSED'}  {self.rule}: {self.detail}"


@dataclass(frozen=True)
class GateResult:
    decisions: tuple[Decision, ...]

    @property
    def allowed(self) -> bool:
        return all(d.allowed for d in self.decisions)

    @property
    def refusals(self) -> list[Decision]:
        return [d for d in self.decisions if not d.allowed]

    def raise_if_refused(self) -> None:
        if not self.allowed:
            raise PolicyViolation([f"{d.rule}: {d.detail}" for d in self.refusals])


def _declared(value: object) -> bool:
    return value is not None and str(value).strip() != ""


def startup_gate(
    settings: Settings,
    policy: Policy,
    cameras: Sequence[CameraConfig],
    model: ModelInfo | None,
    today: dt.date,
) -> GateResult:
    """Every check the deployment must pass before a frame is read."""
    d: list[Decision] = []
    d.append(
        Decision(
            "policy.validity",
            policy.valid_on(today),
            f"policy '{policy.name}' v{policy.version} is valid from {policy.valid_from} to "
            f"{policy.valid_until}; today is {today}",
        )
    )
    declaration = settings.deployment
    for field in policy.required_declaration:
        if field == "camera_location":
            continue
        value = getattr(declaration, field)
        d.append(
            Decision(
                f"declaration.{field}",
                _declared(value),
                f"declared: {value}"
                if _declared(value)
                else f"missing: the policy requires deployment.{field} (GDPR art. 13 and 30)",
            )
        )
    if _declared(declaration.purpose):
        d.append(
            Decision(
                "declaration.purpose",
                declaration.purpose == policy.purpose,
                f"declared '{declaration.purpose}', the policy allows '{policy.purpose}' only "
                "(GDPR art. 5(1)(b) purpose limitation)",
            )
        )
    if declaration.retention_days is not None:
        longest = policy.retention.audit_days
        d.append(
            Decision(
                "declaration.retention_days",
                declaration.retention_days <= longest,
                f"{declaration.retention_days} days declared, the policy allows at most {longest}",
            )
        )
    seconds = settings.window.seconds
    d.append(
        Decision(
            "window.seconds",
            seconds >= policy.min_window_seconds,
            f"{seconds} s windows, the policy's minimum is {policy.min_window_seconds} s "
            "(shorter windows come closer to following individuals)",
        )
    )
    if not cameras:
        d.append(Decision("cameras", False, "no camera configured"))
    for camera in cameras:
        notice = camera.notice_url or declaration.notice_url
        d.append(
            Decision(
                f"camera[{camera.id}].notice",
                _declared(notice),
                f"public notice {notice}"
                if notice
                else "no public notice: the public must be clearly informed before counting "
                "(CNIL, July 2022; GDPR art. 12-13)",
            )
        )
        if "camera_location" in policy.required_declaration:
            d.append(
                Decision(
                    f"camera[{camera.id}].location",
                    _declared(camera.location),
                    f"located at {camera.location}"
                    if camera.location
                    else "missing: the policy requires the camera's location (GDPR art. 30)",
                )
            )
        for output, items in (("line_counts", camera.lines), ("zone_occupancy", camera.zones)):
            if items:
                d.append(
                    Decision(
                        f"camera[{camera.id}].{output}",
                        output in policy.allowed_outputs,
                        f"{len(items)} configured; the policy allows {policy.allowed_outputs}",
                    )
                )
    if model is not None:
        d.extend(model_decisions(model))
    return GateResult(tuple(d))


def model_decisions(model: ModelInfo) -> list[Decision]:
    """A model may only detect, and its counted class ids must mean what the filter assumes."""
    name = model.path.name
    out = [
        Decision(
            "model.task",
            model.task == "detect",
            f"{name}: task '{model.task}' (only 'detect' is allowed: no pose, segmentation or "
            "classification of people)",
        )
    ]
    wrong = {
        cid: model.names.get(cid)
        for cid, (expected, _) in COUNTED_CLASSES.items()
        if model.names.get(cid) != expected
    }
    out.append(
        Decision(
            "model.classes",
            not wrong,
            f"{name}: counted ids map to "
            + ", ".join(f"{cid}={model.names.get(cid)}" for cid in COUNTED_CLASSES)
            + ("" if not wrong else f"; expected COCO names, got {wrong}"),
        )
    )
    for cid, label in sorted(model.names.items()):
        hit = forbidden_class(label)
        if hit is not None:
            out.append(
                Decision(
                    "model.forbidden_class",
                    False,
                    f"{name}: class {cid} '{label}' means {hit.feature}. {hit.reason}",
                )
            )
    return out


# -- egress ----------------------------------------------------------------------------------

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Count = Annotated[int, Field(ge=0, le=10_000_000)]
CategoryName = Literal["pedestrian", "bike", "vehicle"]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ZoneFigures(_Closed):
    mean: float = Field(ge=0, le=1_000_000)
    max: Count


Iso = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]


def iso(seconds: float) -> str:
    """Seconds on the source's clock (Unix time for live and ``edge run``) as ISO 8601 UTC."""
    moment = dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PublishedReport(_Closed):
    """The only count payload that ever leaves the box: one camera, one window, counts.

    start/end are seconds on the source's clock and window_start/window_end the same instants
    in ISO 8601 UTC; ``edge count`` replays a clip on stream time from 0 (1970-01-01T00:00Z).
    """

    schema_version: Literal[1]
    report_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    camera: Name
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    window_start: Iso
    window_end: Iso
    frames: Count
    observed_s: float = Field(ge=0)
    partial: bool
    lines: dict[Name, dict[Literal["in", "out"], dict[CategoryName, Count]]]
    zones: dict[Name, dict[CategoryName, ZoneFigures]]
    policy_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    notice_url: str = Field(pattern=r"^https?://\S+$", max_length=300)


class CameraStats(_Closed):
    """Health of one camera: figures about the machine and the stream, nothing about the scene."""

    frames_received: Count
    frames_processed: Count
    frames_dropped: Count
    fps: float = Field(ge=0, le=10_000)
    detector_ms_p50: float = Field(ge=0, le=1e6)
    detector_ms_p95: float = Field(ge=0, le=1e6)
    frame_age_ms_p50: float = Field(ge=0, le=1e9)
    frame_age_ms_p95: float = Field(ge=0, le=1e9)
    reconnects: Count
    stalls: Count
    offline_s: float = Field(ge=0, le=1e9)
    online: bool


class StatsMessage(_Closed):
    schema_version: Literal[1]
    time: Iso
    cameras: dict[Name, CameraStats]
    spool_depth: Count
    reports_published: Count
    reports_dropped: Count


class NoticeMessage(_Closed):
    """The public information notice, retained on the broker for anyone to read."""

    schema_version: Literal[1]
    policy: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    policy_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    notice_url: str = Field(pattern=r"^https?://\S+$", max_length=300)
    notice: str = Field(max_length=20_000)


class Sink(Protocol):
    """Where admitted reports go (stdout, a JSON Lines file, MQTT); reached only via the gate."""

    def send(self, report: PublishedReport) -> None: ...


def report_id(camera: str, start: float, policy_sha256: str) -> str:
    """Same camera, window and policy -> same id, so consumers can drop duplicates."""
    return hashlib.sha256(f"{camera}|{start:.3f}|{policy_sha256}".encode()).hexdigest()[:32]


class EgressGate:
    """Builds the payload of each report under the policy and lets only compliant ones out."""

    def __init__(
        self, policy: Policy, audit: AuditLog, sinks: Sequence[Sink], notice_url: str
    ) -> None:
        self._policy = policy
        self._audit = audit
        self._sinks = tuple(sinks)
        self._notice_url = notice_url
        self.published = 0
        self.dropped = 0

    def payload(self, report: CountReport) -> dict[str, Any]:
        """The report as the policy lets it out: allowed categories only, small counts applied."""
        rule = self._policy.small_counts
        allowed = [c for c in Category if c in self._policy.allowed_categories]
        lines = {
            name: {d: {c.value: rule.apply(per[c]) for c in allowed} for d, per in counts.items()}
            for name, counts in report.lines.items()
        }
        zones: dict[str, dict[str, dict[str, float | int]]] = {}
        for name, occupancy in report.zones.items():
            zones[name] = {}
            for c in allowed:
                peak = rule.apply(occupancy.max[c])
                mean = occupancy.mean[c] if peak == occupancy.max[c] else 0.0
                zones[name][c.value] = {"mean": round(mean, 3), "max": peak}
        return {
            "schema_version": SCHEMA_VERSION,
            "report_id": report_id(report.camera_id, report.start, self._policy.sha256),
            "camera": report.camera_id,
            "start": report.start,
            "end": report.end,
            "window_start": iso(report.start),
            "window_end": iso(report.end),
            "frames": report.frames,
            "observed_s": round(report.observed_s, 3),
            "partial": report.partial,
            "lines": lines,
            "zones": zones,
            "policy_sha256": self._policy.sha256,
            "notice_url": self._notice_url,
        }

    def publish(self, report: CountReport, today: dt.date) -> PublishedReport | None:
        """Send one window's report to every sink, if the policy lets it out."""
        if not self._policy.valid_on(today):
            self._audit.append("policy_expired", policy_sha256=self._policy.sha256)
            raise PolicyViolation(
                [f"policy.validity: policy '{self._policy.name}' is not in force on {today}"]
            )
        return self.admit(self.payload(report))

    def admit(self, payload: Any) -> PublishedReport | None:
        """Any payload: sent if it is a compliant ``PublishedReport``, else dropped and audited."""
        try:
            report = PublishedReport.model_validate(payload)
            problem = self._disagreement(report)
        except ValidationError as err:
            report, problem = None, describe_invalid(err)
        if report is None or problem:
            self.dropped += 1
            self._audit.append("egress_drop", reason=problem)
            return None
        for sink in self._sinks:
            sink.send(report)
        self.published += 1
        return report

    def _disagreement(self, report: PublishedReport) -> str:
        policy = self._policy
        if report.policy_sha256 != policy.sha256:
            return "policy_sha256 is not the policy in force"
        if (report.window_start, report.window_end) != (iso(report.start), iso(report.end)):
            return "window_start/window_end do not match start/end"
        if report.end - report.start < policy.min_window_seconds:
            return f"window shorter than {policy.min_window_seconds} s"
        allowed = {c.value for c in policy.allowed_categories}
        counts = [
            (category, n)
            for per_direction in report.lines.values()
            for per in per_direction.values()
            for category, n in per.items()
        ] + [
            (category, figures.max)
            for per in report.zones.values()
            for category, figures in per.items()
        ]
        if any(category not in allowed for category, _ in counts):
            return "a category the policy does not allow"
        if not all(policy.small_counts.allows(n) for _, n in counts):
            return f"a count below the policy's small-count threshold {policy.small_counts.k}"
        return ""


def describe_invalid(err: ValidationError) -> str:
    """Why a payload was refused, by field path and error type only: never its values."""
    parts = [".".join(str(p) for p in e["loc"])[:80] + f" ({e['type']})" for e in err.errors()[:5]]
    more = f" and {err.error_count() - 5} more" if err.error_count() > 5 else ""
    return "not a well-formed report: " + "; ".join(parts) + more
