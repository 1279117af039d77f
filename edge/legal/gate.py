"""The legal gate: checked once before any frame is read, and again on every outgoing payload.

Start-up (``startup_gate``): the policy is the one the configuration pins, in force today, the
declared purpose is the policy's, every declaration field the policy requires is there, every
camera has a public notice and a location, windows are one of the policy's lengths, lines and
zones are outputs the policy allows and pass the disclosure rules (``edge.legal.disclosure``),
and the model only detects (task ``detect``, COCO ids 0-7 meaning what the class filter
assumes, no class such as a face or a plate). Forbidden modes never reach it: the configuration
has no field for them and ``edge.legal.forbidden`` refuses a file that asks for one.

Egress (``EgressGate``): the only way to a sink. A payload passes only if it is a well-formed
``PublishedReport`` (``edge.schema``, closed: no extra field, no id, box, coordinate, image or
free text) that agrees with the policy: its sha256, allowed categories, window length (one of
the policy's), observed time (live windows watched for less than the policy's minimum are
withheld, audited ``window_withheld``), small-count rule. Anything else is dropped and the drop
written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from edge.analytics.aggregate import CountReport
from edge.analytics.detections import COUNTED_CLASSES, Category
from edge.config import CameraConfig, Settings
from edge.detect.manifest import Approval, SiteApprovals, approval_of, sha256_file
from edge.detect.protocol import ModelInfo
from edge.errors import DisclosureRefused, ModelError, PolicyViolation
from edge.legal.audit import AuditLog
from edge.legal.decisions import Decision, GateResult
from edge.legal.disclosure import (
    Cell,
    FrameSize,
    cells_of,
    geometry_decisions,
    hidden_cells,
    window_decision,
    zone_decision,
)
from edge.legal.forbidden import forbidden_class
from edge.legal.policy import Output, Policy
from edge.publish.sinks import Sink
from edge.schema import (
    MOVEMENTS_SCHEMA_VERSION,
    SCHEMA_VERSION,
    PublishedReport,
    describe_invalid,
    iso,
    parse_report,
    report_id,
)


def _count(report: CountReport, cell: Cell) -> int:
    """One cell's count in a window's report: a line's (name, direction, category) or a
    movement's (name, None, category)."""
    name, direction, category = cell
    per = report.movements[name] if direction is None else report.lines[name][direction]
    return per[Category(category)]


def _declared(value: object) -> bool:
    return value is not None and str(value).strip() != ""


def startup_gate(
    settings: Settings,
    policy: Policy,
    cameras: Sequence[CameraConfig],
    model: ModelInfo | None,
    today: dt.date,
    *,
    approved: SiteApprovals | None = None,
    frame_sizes: Mapping[str, FrameSize] | None = None,
) -> GateResult:
    """Every check the deployment must pass before a frame is read. ``approved``: the site's
    model approvals (``load_site_approvals``); without them only shipped models pass.
    ``frame_sizes``: each camera's frame size where known (recordings), for the size rules."""
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
    undeclared = declaration.recipients.undeclared()
    d.append(
        Decision(
            "declaration.recipients",
            not undeclared,
            "declared: broker, dashboard and open data"
            if not undeclared
            else f"missing: {', '.join(undeclared)} (GDPR art. 13(1)(e): the public notice "
            "names every recipient of the counts; write false where there is none)",
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
    pin = settings.policy.sha256
    d.append(
        Decision(
            "policy.pin",
            pin == policy.sha256,
            f"the configuration pins {pin}" + ("" if pin == policy.sha256 else
            f", the policy file {settings.policy.file} is {policy.sha256}: a different policy is "
            "refused (pin the one the DPO approved: policy.sha256, as `edge policy show` prints)"),
        )
    )  # fmt: skip
    d.append(window_decision(settings.window.seconds, policy))
    if any(camera.zones for camera in cameras):
        d.append(zone_decision(policy))
    if not cameras:
        d.append(Decision("cameras", False, "no camera configured"))
    d.append(
        Decision(
            "names",
            True,
            "camera ids, line, zone and site names are public slugs, and with camera locations "
            "were checked for personal data and forbidden uses when the configuration loaded",
        )
    )
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
        outputs: tuple[tuple[Output, Sequence[object]], ...] = (
            ("line_counts", camera.lines),
            ("zone_occupancy", camera.zones),
            ("turning_movements", camera.movements),
        )
        for output, items in outputs:
            if items:
                d.append(
                    Decision(
                        f"camera[{camera.id}].{output}",
                        output in policy.allowed_outputs,
                        f"{len(items)} configured; the policy allows {policy.allowed_outputs}",
                    )
                )
        d.extend(geometry_decisions(camera, policy, (frame_sizes or {}).get(camera.id)))
    if model is not None:
        d.extend(model_decisions(model, approved))
    return GateResult(tuple(d))


def model_decisions(model: ModelInfo, approved: SiteApprovals | None = None) -> list[Decision]:
    """A model may only detect, and its counted class ids must mean what the filter assumes.
    Labels can lie (two output channels swapped keep every name), so the file itself must be
    on the allow-list: the shipped manifest or the site's audited approvals, by sha256."""
    name = model.path.name
    try:
        verdict = approval_of(sha256_file(model.path), name, approved)
    except ModelError as err:
        verdict = Approval(False, "", str(err))
    out = [
        Decision("model.approved", verdict.allowed, verdict.detail),
        Decision(
            "model.task",
            model.task == "detect",
            f"{name}: task '{model.task}' (only 'detect' is allowed: no pose, segmentation or "
            "classification of people)",
        ),
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

# A window counts as watched for the policy's minimum when it was watched for all of it but a
# frame interval or so: the first and last frame periods of a window are estimates.
OBSERVED_SLACK = 0.98


class EgressGate:
    """Builds the payload of each report under the policy and lets only compliant ones out."""

    def __init__(
        self,
        policy: Policy,
        audit: AuditLog,
        sinks: Sequence[Sink],
        notice_url: str | Mapping[str, str],
        *,
        recorded: bool = False,
    ) -> None:
        """``notice_url``: the public notice of every camera, or one per camera id.
        ``recorded``: the reports come from recordings, whose owner has the pixels already, so
        a window's observed time is not checked (a clip shorter than a window still counts)."""
        self._policy = policy
        self._audit = audit
        self._sinks = tuple(sinks)
        self._notice_url = notice_url
        self._min_observed_s = 0.0 if recorded else policy.min_window_seconds * OBSERVED_SLACK
        self.published = 0
        self.dropped = 0
        self.withheld = 0

    @property
    def zone_min_objects(self) -> int:
        return self._policy.disclosure.zone_min_objects

    def check_frame(self, camera: CameraConfig, frame_size: FrameSize) -> None:
        """A camera's geometry against its frame's size, once known; refusals are audited and
        end the run before anything of that camera is published."""
        refused = [d for d in geometry_decisions(camera, self._policy, frame_size) if not d.allowed]
        if refused:
            lines = [f"{d.rule}: {d.detail}" for d in refused]
            self._audit.append("geometry_refused", camera=camera.id, refusals=list(lines))
            raise DisclosureRefused(lines)

    def payload(self, report: CountReport) -> dict[str, Any]:
        """The report as the policy lets it out: allowed categories only, small counts applied,
        and under a suppressing policy every cell a small group could be derived from hidden."""
        rule = self._policy.small_counts
        allowed = [c for c in Category if c in self._policy.allowed_categories]
        cells = cells_of(report.lines, report.movements)
        counts = [_count(report, cell) if Category(cell[2]) in allowed else 0 for cell in cells]
        hidden = hidden_cells(counts, report.overlap, rule.k) if rule.rule == "suppress" else set()
        lines: dict[str, dict[str, dict[str, int]]] = {}
        movements: dict[str, dict[str, Any]] = {
            name: {"origin": origin, "destination": destination, "counts": {}}
            for name, (origin, destination) in report.movement_lines.items()
        }
        for i, (name, d, category) in enumerate(cells):
            if Category(category) not in allowed:
                continue
            shown = 0 if i in hidden else counts[i]
            if d is None:
                movements[name]["counts"][category] = shown
            else:
                lines.setdefault(name, {}).setdefault(d, {})[category] = shown
        zones: dict[str, dict[str, dict[str, float | int]]] = {}
        for name, occupancy in report.zones.items():
            zones[name] = {}
            for c in allowed:
                peak = rule.apply(occupancy.max[c])
                mean = occupancy.mean[c] if peak == occupancy.max[c] else 0.0
                zones[name][c.value] = {"mean": round(mean, 3), "max": peak}
        return {
            "schema_version": MOVEMENTS_SCHEMA_VERSION if report.movements else SCHEMA_VERSION,
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
            **({"movements": movements} if report.movements else {}),
            "policy_sha256": self._policy.sha256,
            "notice_url": (
                self._notice_url
                if isinstance(self._notice_url, str)
                else self._notice_url.get(report.camera_id, "")
            ),
        }

    def publish(self, report: CountReport, today: dt.date) -> PublishedReport | None:
        """Send one window's report to every sink, if the policy lets it out."""
        if not self._policy.valid_on(today):
            self._audit.append("policy_expired", policy_sha256=self._policy.sha256)
            raise PolicyViolation(
                [f"policy.validity: policy '{self._policy.name}' is not in force on {today}"]
            )
        if report.observed_s < self._min_observed_s:  # never published alone: see disclosure
            self.withheld += 1
            self._audit.append(
                "window_withheld",
                camera=report.camera_id,
                window_start=iso(report.start),
                observed_s=round(report.observed_s, 3),
                reason=f"watched less than the policy's {self._policy.min_window_seconds} s",
            )
            return None
        return self.admit(self.payload(report))

    def admit(self, payload: Any) -> PublishedReport | None:
        """Any payload: sent if it is a compliant ``PublishedReport``, else dropped and audited."""
        try:
            report = parse_report(payload)
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
        if report.end - report.start not in policy.windows:
            return f"a window of {report.end - report.start:g} s, not one of {policy.windows} s"
        if report.observed_s < self._min_observed_s:
            return f"watched {report.observed_s:g} s, less than {policy.min_window_seconds} s"
        allowed = {c.value for c in policy.allowed_categories}
        counts = (
            [
                (category, n)
                for per_direction in report.lines.values()
                for per in per_direction.values()
                for category, n in per.items()
            ]
            + [
                (category, figures.max)
                for per in report.zones.values()
                for category, figures in per.items()
            ]
            + [
                (category, n)
                for per in report.movement_counts.values()
                for category, n in per.items()
            ]
        )
        if any(category not in allowed for category, _ in counts):
            return "a category the policy does not allow"
        if not all(policy.small_counts.allows(n) for _, n in counts):
            return f"a count below the policy's small-count threshold {policy.small_counts.k}"
        return ""
