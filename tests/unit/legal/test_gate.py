"""The legal gate: forbidden uses, the deployment declaration, the model, the policy's dates and
window, the egress gate's closed schema, and the run that persists no pixel."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.analytics.aggregate import WindowAggregator
from edge.analytics.counting import CountEvent
from edge.analytics.detections import Category
from edge.config import load_settings
from edge.detect.protocol import ModelInfo
from edge.errors import PolicyViolation
from edge.legal.audit import AuditLog, verify_audit
from edge.legal.forbidden import _CLASS_FEATURES, FORBIDDEN, find_forbidden
from edge.legal.gate import EgressGate, model_decisions, startup_gate
from edge.legal.policy import DEFAULT_POLICY, Policy, load_policy
from edge.publish.sinks import CollectSink
from tests.conftest import EXAMPLE, REPO, shared_file
from tests.integration.test_detector import tiny_model
from tests.support.cli import edge

TODAY = dt.date(2026, 11, 22)
POLICY = load_policy(REPO / DEFAULT_POLICY)
STRICT = load_policy(REPO / "policies" / "cnil-statistics-strict.yaml")
COCO = {0: "person", 1: "bicycle", 2: "car", 3: "motorcycle", 4: "airplane", 5: "bus",
        6: "train", 7: "truck", 10: "fire hydrant", 12: "parking meter"}  # fmt: skip


def example(**changes: Any) -> dict[str, Any]:
    """The shipped example configuration as a dict, with top-level sections changed."""
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data.update(changes)
    return data


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def gate_for(data: dict[str, Any], today: dt.date = TODAY, policy: Policy = POLICY) -> list[str]:
    """The refusals of the start-up gate for a configuration dict, as 'rule: detail' lines."""
    settings = load_settings(None, **data)
    # No model: its decisions (allow-list, task, classes) are tested on their own below.
    result = startup_gate(settings, policy, settings.cameras, None, today)
    return [f"{d.rule}: {d.detail}" for d in result.refusals]


# -- forbidden uses: refused with the rule, not ignored -------------------------------------

FORBIDDEN_REQUESTS = {
    "face detection or recognition": {"mode": "face_recognition"},
    "biometric identification": {"detector": {"biometric_identification": True}},
    "re-identification or appearance embeddings": {"tracker": {"reid": {"embeddings": 128}}},
    "attribute inference (age, gender, emotion, ...)": {"features": ["count", "gender"]},
    "licence-plate reading": {"plate_reader": {"enabled": True}},
    "crowd, density or gathering alerts": {"crowd_density_threshold": 20},
    "stationary-vehicle, parking or wrong-way alerts": {"illegal_parking": {"after_s": 300}},
    "loitering or dwell time": {"zones_dwell_seconds": 30},
    "abandoned objects": {"abandoned_object_detection": True},
    "events of décret 2023-828 (weapons, falls, intrusion, fire, crowd movement)": {
        "analytics": ["weapon"]
    },
    "alerts or abnormal-event detection": {"alerts": {"webhook": "https://x"}},
    "per-object speed output": {"speed": {"unit": "km/h"}},
    "frame or snapshot recording or streaming": {"record": True},
}


def test_every_forbidden_feature_has_a_test() -> None:
    assert set(FORBIDDEN_REQUESTS) == {f.feature for f in FORBIDDEN}
    assert set(_CLASS_FEATURES) <= {f.feature for f in FORBIDDEN}


@pytest.mark.parametrize("feature", sorted(FORBIDDEN_REQUESTS))
def test_forbidden_feature_is_refused_with_its_reason(tmp_path: Path, feature: str) -> None:
    path = write(tmp_path, example(**FORBIDDEN_REQUESTS[feature]))
    with pytest.raises(PolicyViolation) as caught:
        load_settings(path)
    (line,) = caught.value.lines
    expected = next(f for f in FORBIDDEN if f.feature == feature)
    assert f"{feature} is refused. {expected.reason}" in line


@pytest.mark.parametrize(
    "text",
    ["faceRecognition", "face-recognition", "FACE_DETECTION", "licence plate", "wrong_way_alert"],
)
def test_spellings_are_matched_on_words(text: str) -> None:
    assert list(find_forbidden({"mode": text}))


@pytest.mark.parametrize("key", ["max_age_seconds", "licence", "fallback", "stream", "retain"])
def test_ordinary_words_are_not_refused(key: str) -> None:
    assert not list(find_forbidden({key: 1}))


def test_the_shipped_example_asks_for_nothing_forbidden() -> None:
    assert not list(find_forbidden(example()))


def test_cli_refusal_exits_3_with_the_legal_reason_and_is_audited(
    tmp_path: Path, audit_in_tmp: Path
) -> None:
    result = edge("count", "-c", str(write(tmp_path, example(mode="face_recognition"))))
    assert result.returncode == 3
    (entry,) = [json.loads(line) for line in audit_in_tmp.read_text().splitlines()]
    assert entry["event"] == "start_refused"
    assert entry["refusals"][0].startswith("mode: face_recognition: face detection")
    assert (
        "refused: mode: face_recognition: face detection or recognition is refused."
        in result.stderr
    )
    assert "EU AI Act art. 5(1)(h)" in result.stderr


# -- the deployment declaration ------------------------------------------------------------------

DECLARED = example()["deployment"]


@pytest.mark.parametrize("field", sorted(set(DECLARED) - {"notice_url", "recipients"}))
def test_missing_declaration_field_is_refused(field: str) -> None:
    deployment = {k: v for k, v in DECLARED.items() if k != field}
    assert gate_for(example(deployment=deployment)) == [
        f"declaration.{field}: missing: the policy requires deployment.{field} "
        "(GDPR art. 13 and 30)"
    ]


@pytest.mark.parametrize("field", ["broker_operator", "dashboard", "open_data_portal", None])
def test_undeclared_recipients_are_refused(field: str | None) -> None:
    recipients = {k: v for k, v in DECLARED["recipients"].items() if k != field}
    deployment = (
        {**DECLARED, "recipients": recipients}
        if field
        else {k: v for k, v in DECLARED.items() if k != "recipients"}
    )
    (refusal,) = gate_for(example(deployment=deployment))
    assert refusal.startswith("declaration.recipients: missing: deployment.recipients.")
    assert (field or "broker_operator") in refusal


def test_missing_notice_is_refused_per_camera() -> None:
    deployment = {k: v for k, v in DECLARED.items() if k != "notice_url"}
    refusals = gate_for(example(deployment=deployment))
    assert "camera[tud-campus].notice: no public notice" in " | ".join(refusals)
    assert len(refusals) == 2  # the declaration field and the camera without a notice
    data = example(deployment=deployment)
    data["cameras"][0]["notice_url"] = "https://example.org/this-camera"
    assert gate_for(data) == [
        "declaration.notice_url: missing: the policy requires deployment.notice_url "
        "(GDPR art. 13 and 30)"
    ]


def test_missing_camera_location_is_refused() -> None:
    data = example()
    del data["cameras"][0]["location"]
    assert gate_for(data) == [
        "camera[tud-campus].location: missing: the policy requires the camera's location "
        "(GDPR art. 30)"
    ]


def test_another_purpose_is_refused() -> None:
    (refusal,) = gate_for(example(deployment={**DECLARED, "purpose": "public order"}))
    assert refusal.startswith("declaration.purpose: declared 'public order'")


def test_retention_longer_than_the_policy_is_refused() -> None:
    (refusal,) = gate_for(example(deployment={**DECLARED, "retention_days": 3000}))
    assert "3000 days declared, the policy allows at most 365" in refusal


def test_the_example_passes() -> None:
    assert gate_for(example()) == []


# -- windows, validity dates, outputs ------------------------------------------------------------


@pytest.mark.parametrize("today", [dt.date(2025, 12, 31), dt.date(2029, 1, 1)])
def test_policy_outside_its_dates_is_refused(today: dt.date) -> None:
    (refusal,) = gate_for(example(), today=today)
    assert refusal.startswith(
        "policy.validity: policy 'cnil-statistics' v1 is valid from 2026-01-01"
    )


def test_an_output_the_policy_does_not_allow_is_refused() -> None:
    lines_only = POLICY.model_copy(update={"allowed_outputs": ["line_counts"]})
    data = example()
    data["cameras"][0]["zones"] = [{"name": "z", "points": [[0, 0], [10, 0], [10, 10]]}]
    data["policy"]["sha256"] = lines_only.sha256
    (refusal,) = gate_for(data, policy=lines_only)
    assert refusal.startswith("camera[tud-campus].zone_occupancy: 1 configured")


# -- the model ----------------------------------------------------------------------------------


def refused_rules(model: ModelInfo) -> list[str]:
    return [d.rule for d in model_decisions(model) if not d.allowed]


def test_the_real_coco_models_pass(yolo11n: Path) -> None:
    from edge.detect.runtime import OnnxRuntime

    assert refused_rules(OnnxRuntime(yolo11n).info) == []
    assert refused_rules(OnnxRuntime(shared_file("models/yolov8n.onnx")).info) == []


@pytest.mark.parametrize(
    ("names", "rule"),
    [
        ({0: "face"}, "model.forbidden_class"),
        ({**COCO, 80: "license_plate"}, "model.forbidden_class"),
        ({**COCO, 81: "handgun"}, "model.forbidden_class"),
        ({0: "head", 1: "bicycle"}, "model.classes"),  # id 0 is not a person: filter would lie
    ],
)
def test_model_classes_beyond_counting_are_refused(names: dict[int, str], rule: str) -> None:
    model = ModelInfo(Path("x.onnx"), names, (640, 640), 1, 8400, "detect", {})
    assert rule in refused_rules(model)


@pytest.mark.parametrize("task", ["pose", "segment", "classify", "obb"])
def test_model_tasks_other_than_detection_are_refused(task: str) -> None:
    model = ModelInfo(Path("x.onnx"), COCO, (640, 640), 1, 8400, task, {})
    assert "model.task" in refused_rules(model)


def test_policy_check_refuses_a_plate_model_file(tmp_path: Path) -> None:
    names = {**COCO, 8: "licence plate"}
    model = tiny_model(tmp_path / "plates.onnx", [1, 4 + 13, 64], {"task": "detect", "names": str(
        {i: names.get(i, f"c{i}") for i in range(13)})})  # fmt: skip
    env = {**os.environ, "EDGE_DETECTOR__MODEL": str(model)}
    import subprocess

    from tests.conftest import edge_argv

    # Approved for this site: the refusal left is the class name, not the allow-list.
    approve = edge("models", "approve", str(model), "--reason", "gate test", "--by", "dpo")
    assert approve.returncode == 0, approve.stderr
    result = subprocess.run(
        edge_argv("policy", "check", "-c", str(EXAMPLE)),
        cwd=REPO, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 3
    assert "REFUSED  model.forbidden_class: plates.onnx: class 8 'licence plate'" in result.stdout
    assert result.stdout.strip().endswith("deployment REFUSED (1 reasons)")


def test_policy_check_allows_the_example() -> None:
    result = edge("policy", "check", "-c", str(EXAMPLE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("deployment may start")
    assert f"sha256 {POLICY.sha256}" in result.stdout


# -- policies -------------------------------------------------------------------------------------


def test_policy_sha256_ignores_layout_but_not_meaning(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / DEFAULT_POLICY).read_text())
    reordered = tmp_path / "p.yaml"
    reordered.write_text(
        yaml.safe_dump(dict(reversed(list(data.items()))), default_flow_style=True)
    )
    assert load_policy(reordered).sha256 == POLICY.sha256
    data["min_window_seconds"] = 120
    changed = tmp_path / "q.yaml"
    changed.write_text(yaml.safe_dump(data))
    assert load_policy(changed).sha256 != POLICY.sha256


def test_policy_unknown_key_is_an_error(tmp_path: Path) -> None:
    from edge.errors import ConfigError

    data = yaml.safe_load((REPO / DEFAULT_POLICY).read_text())
    data["allow_faces"] = True
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="allow_faces: Extra inputs are not permitted"):
        load_policy(path)


def test_policy_show_prints_the_sha() -> None:
    result = edge("policy", "show")
    assert result.returncode == 0
    assert f"# sha256 {POLICY.sha256}" in result.stdout
    assert "min_window_seconds: 60" in result.stdout


# -- the egress gate ------------------------------------------------------------------------------


def make_gate(tmp_path: Path, policy: Policy = POLICY) -> tuple[EgressGate, CollectSink, AuditLog]:
    audit = AuditLog(tmp_path / "egress.jsonl")
    sink = CollectSink()
    # Recorded: these reports are one frame long; the observed-time rule is test_disclosure's.
    gate = EgressGate(policy, audit, [sink], "https://example.org/n", recorded=True)
    return gate, sink, audit


def one_report(counts: dict[Category, int], zone_max: int = 0, seconds: int = 60) -> Any:
    agg = WindowAggregator("cam", ["door"], ["hall"], seconds=seconds)
    events = [CountEvent("door", "in", c, 1.0) for c, n in counts.items() for _ in range(n)]
    agg.add(1.0, events, {"hall": np.array([zone_max, 0, 0])})
    (report,) = agg.close()
    return report


def test_a_report_goes_out_with_the_policy_and_notice(tmp_path: Path) -> None:
    gate, sink, _ = make_gate(tmp_path)
    sent = gate.publish(one_report({Category.PEDESTRIAN: 2}), TODAY)
    assert sent is not None and sink.reports == [sent]
    doc = sent.model_dump()
    assert doc["lines"]["door"]["in"]["pedestrian"] == 2
    assert doc["policy_sha256"] == POLICY.sha256
    assert doc["notice_url"] == "https://example.org/n"


def test_small_counts_are_suppressed_under_the_strict_policy(tmp_path: Path) -> None:
    gate, _, _ = make_gate(tmp_path, STRICT)
    report = one_report({Category.PEDESTRIAN: 2, Category.VEHICLE: 5}, zone_max=1, seconds=300)
    sent = gate.publish(report, TODAY)
    assert sent is not None
    assert sent.lines["door"]["in"] == {"pedestrian": 0, "bike": 0, "vehicle": 5}
    assert sent.zones["hall"]["pedestrian"].max == 0
    assert sent.zones["hall"]["pedestrian"].mean == 0.0
    # A payload that does not apply the rule is dropped.
    payload = gate.payload(report)
    payload["lines"]["door"]["in"]["pedestrian"] = 2
    assert gate.admit(payload) is None


def test_egress_drops_anything_else_and_audits_it(tmp_path: Path) -> None:
    gate, sink, audit = make_gate(tmp_path)
    good = gate.payload(one_report({Category.BIKE: 1}))
    for bad in (
        {**good, "track_id": 7},
        {**good, "boxes": [[1, 2, 3, 4]]},
        {**good, "camera": "cam with spaces"},
        {**good, "end": good["start"] + 30},
        {**good, "policy_sha256": "0" * 64},
        {**good, "lines": {"door": {"in": {"pedestrian": -1}}}},
        {**good, "lines": {"door": {"in": {"face": 1}}}},
        {**good, "frames": "71"},
        {**good, "observed_s": float("nan")},
        "a string",
        None,
    ):
        assert gate.admit(bad) is None
    assert gate.admit(good) is not None
    assert len(sink.reports) == 1
    audit.close()
    entries = [json.loads(line) for line in (tmp_path / "egress.jsonl").read_text().splitlines()]
    assert [e["event"] for e in entries] == ["egress_drop"] * 11
    assert all("7" not in e["reason"] and "1, 2, 3" not in e["reason"] for e in entries)
    assert verify_audit(tmp_path / "egress.jsonl").ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.dictionaries(st.text(min_size=1, max_size=12), json_values, min_size=1, max_size=3),
       replace=st.dictionaries(st.sampled_from(["camera", "start", "end", "frames", "lines",
                                                "zones", "partial", "report_id", "notice_url"]),
                               json_values, max_size=2))  # fmt: skip
def test_nothing_but_a_well_formed_report_gets_through(
    tmp_path: Path, extra: dict[str, Any], replace: dict[str, Any]
) -> None:
    gate, _, audit = make_gate(tmp_path)
    try:
        good = gate.payload(one_report({Category.VEHICLE: 3}))
        tampered = {**good, **replace, **extra}
        admitted = gate.admit(tampered)
        if admitted is not None:
            # Only possible when nothing was really added and what replaced a field is valid.
            assert set(tampered) == set(good)
            assert admitted.model_dump() == json.loads(json.dumps(tampered))
    finally:
        audit.close()
        (tmp_path / "egress.jsonl").unlink()


def test_policy_running_out_stops_publishing(tmp_path: Path) -> None:
    gate, sink, _ = make_gate(tmp_path)
    with pytest.raises(PolicyViolation, match="not in force on 2029-01-01"):
        gate.publish(one_report({Category.BIKE: 1}), dt.date(2029, 1, 1))
    assert sink.reports == []


# -- notice -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_notice_names_controller_purpose_rights_and_what_is_never_done(fmt: str) -> None:
    result = edge("notice", "-c", str(EXAMPLE), "--format", fmt, "--lang", "en")
    assert result.returncode == 0
    text = result.stdout
    for fact in ("Example city council", "dpo@example.org", "statistics", "recognise faces",
                 "number plates", "CNIL", "https://example.org/footfall-counting",
                 "Sign FC-01", POLICY.sha256, "Campus path, TUD"):  # fmt: skip
        assert fact in text
    assert text.startswith("<!doctype html>") == (fmt == "html")


# -- audit verify from the command line ----------------------------------------------------------


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    path = tmp_path / "a.jsonl"
    with AuditLog(path) as log:
        for i in range(5):
            log.append("tick", n=i)
    return path


def test_audit_verify_ok(audit_file: Path) -> None:
    result = edge("audit", "verify", str(audit_file))
    assert result.returncode == 0
    assert result.stdout.startswith("ok: 5 entries, chain intact")


@pytest.mark.parametrize(
    ("tamper", "line"),
    [
        (lambda lines: [lines[0], lines[1].replace('"n":1', '"n":9'), *lines[2:]], 2),
        (lambda lines: lines[:2] + lines[3:], 3),
        (lambda lines: [lines[0], lines[2], lines[1], *lines[3:]], 2),
    ],
    ids=["altered byte", "deleted line", "swapped lines"],
)
def test_audit_verify_names_the_first_broken_entry(
    audit_file: Path, tamper: Any, line: int
) -> None:
    lines = audit_file.read_text().splitlines(keepends=True)
    audit_file.write_text("".join(tamper(lines)))
    result = edge("audit", "verify", str(audit_file))
    assert result.returncode == 1
    assert f"line {line}" in result.stderr


# -- a whole run persists no pixel --------------------------------------------------------------

MEDIA = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".mp4", ".avi",
         ".mkv", ".mov", ".ts", ".h264", ".npy", ".raw", ".yuv"}  # fmt: skip


def media_files(*roots: Path) -> set[Path]:
    return {
        p for root in roots if root.exists() for p in root.rglob("*")
        if p.suffix.lower() in MEDIA and ".venv" not in p.parts and ".git" not in p.parts
    }  # fmt: skip


@pytest.mark.slow
def test_a_whole_run_writes_no_image_or_video_and_audits_zero_frames_persisted(
    tmp_path: Path, audit_in_tmp: Path, tud_clip: Path
) -> None:
    import tempfile

    roots = (REPO, Path(tempfile.gettempdir()))  # the working directory and the temp directory
    before = media_files(*roots)
    result = edge("count", "-c", str(EXAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    assert media_files(*roots) == before
    entries = [json.loads(line) for line in audit_in_tmp.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["start", "stop"]
    stop = entries[-1]
    assert stop["frames_processed"] == 71
    assert stop["frames_persisted"] == 0
    assert stop["reports_published"] == 1 and stop["reports_dropped"] == 0
    assert entries[0]["policy_sha256"] == POLICY.sha256
    # The rules themselves, not only their name and hash: a DPO reads them off the log.
    assert json.loads(entries[0]["policy_canonical"]) == json.loads(POLICY.canonical)
    assert verify_audit(audit_in_tmp).ok
