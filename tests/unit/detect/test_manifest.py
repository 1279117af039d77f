"""Only approved models run (issue 15, item 6): labels can lie, the sha256 cannot.

Every tampered model here is made from the real shared model with the ``onnx`` package: two
output channels swapped (person and car, bicycle and motorcycle), the class names swapped or
renamed, one weight nudged, only the description changed. Each keeps a plausible Ultralytics
file; each is refused until a DPO approves it with ``edge models approve``, and a site list
edited by hand (an entry without its audit entry, a copied or altered one) is refused too.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import helper, numpy_helper

from edge.app import count
from edge.config import load_settings
from edge.detect.manifest import (
    SITE_LIST_NAME,
    approval_of,
    approve_model,
    load_manifest,
    load_site_approvals,
    revoke_model,
    sha256_file,
    site_list_path,
)
from edge.detect.runtime import OnnxRuntime
from edge.errors import ConfigError, PolicyViolation
from edge.legal.audit import verify_audit
from edge.legal.decisions import Decision
from edge.legal.gate import model_decisions
from tests.conftest import EXAMPLE, REPO, edge_argv, shared_file

Edit = Callable[[onnx.ModelProto], None]


def _swap_channels(a: int, b: int) -> Edit:
    """A Gather on the output's channel axis: classes a and b trade scores, names unchanged."""

    def edit(model: onnx.ModelProto) -> None:
        graph = model.graph
        out = graph.output[0].name
        channels = graph.output[0].type.tensor_type.shape.dim[1].dim_value
        for node in graph.node:
            node.output[:] = [f"{out}_raw" if o == out else o for o in node.output]
        order = list(range(channels))
        order[4 + a], order[4 + b] = 4 + b, 4 + a
        graph.initializer.append(numpy_helper.from_array(np.array(order, np.int64), "swap_idx"))
        graph.node.append(helper.make_node("Gather", [f"{out}_raw", "swap_idx"], [out], axis=1))

    return edit


def _names(change: Callable[[dict[int, str]], None]) -> Edit:
    def edit(model: onnx.ModelProto) -> None:
        for prop in model.metadata_props:
            if prop.key == "names":
                names = ast.literal_eval(prop.value)
                change(names)
                prop.value = str(names)

    return edit


def _swap_names(names: dict[int, str]) -> None:
    names[0], names[2] = names[2], names[0]


def _rename_last(names: dict[int, str]) -> None:
    names[79] = "brosse à dents"


def _nudge_weight(model: onnx.ModelProto) -> None:
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    array = numpy_helper.to_array(largest).copy()
    array.flat[0] += np.float32(1e-3)
    largest.CopyFrom(numpy_helper.from_array(array, largest.name))


def _describe(model: onnx.ModelProto) -> None:
    for prop in model.metadata_props:
        if prop.key == "description":
            prop.value += " (retrained)"


VARIANTS: dict[str, Edit] = {
    "person-car channels swapped": _swap_channels(0, 2),
    "bicycle-motorcycle channels swapped": _swap_channels(1, 3),
    "person-car names swapped": _names(_swap_names),
    "a class renamed": _names(_rename_last),
    "one weight nudged": _nudge_weight,
    "description only": _describe,
}
SHARED = ["yolo11n_320.onnx", "yolo11n.onnx"]


def tampered(source: Path, edit: Edit, out: Path) -> Path:
    model = onnx.load(str(source))
    edit(model)
    onnx.save(model, str(out))
    return out


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """Every variant of every shared model, made once for the module."""
    folder = tmp_path_factory.mktemp("tampered")
    made = {}
    for shared in SHARED:
        source = shared_file(f"models/{shared}")
        for i, (variant, edit) in enumerate(VARIANTS.items()):
            made[shared, variant] = tampered(source, edit, folder / f"v{i}_{shared}")
    return made


def model_approved(path: Path, audit_log: Path) -> Decision:
    decisions = model_decisions(OnnxRuntime(path).info, load_site_approvals(audit_log))
    (decision,) = [d for d in decisions if d.rule == "model.approved"]
    return decision


def test_every_shipped_model_in_shared_is_on_the_allow_list() -> None:
    manifest = load_manifest()
    assert manifest.models
    for entry in manifest.models:
        path = shared_file(f"models/{entry.file}")
        verdict = approval_of(sha256_file(path), path.name, None)
        assert (verdict.allowed, verdict.how) == (True, "shipped"), verdict.detail


def test_swapped_channels_really_swap_what_is_counted(
    variants: dict[tuple[str, str], Path],
) -> None:
    """The attack is real: the same image gives the person scores in the car channel."""
    source = OnnxRuntime(shared_file("models/yolo11n_320.onnx"))
    swapped = OnnxRuntime(variants["yolo11n_320.onnx", "person-car channels swapped"])
    assert swapped.info.names == source.info.names  # the labels say nothing
    blob = np.random.default_rng(3).random((1, 3, 320, 320), np.float32)
    a, b = source.run(blob), swapped.run(blob)
    np.testing.assert_array_equal(b[:, 4 + 0], a[:, 4 + 2])
    np.testing.assert_array_equal(b[:, 4 + 2], a[:, 4 + 0])
    np.testing.assert_array_equal(b[:, :4], a[:, :4])


@pytest.mark.parametrize("shared", SHARED)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_tampered_model_is_refused_naming_file_and_sha256(
    variants: dict[tuple[str, str], Path], variant: str, shared: str, audit_in_tmp: Path
) -> None:
    path = variants[shared, variant]
    decision = model_approved(path, audit_in_tmp)
    assert not decision.allowed
    assert decision.detail.startswith(f"{path.name} sha256 {sha256_file(path)}: ")
    assert f"edge --audit-log {audit_in_tmp} models approve {path.name} --reason" in (
        decision.detail
    )


@pytest.mark.parametrize(
    "variant", ["person-car channels swapped", "a class renamed", "one weight nudged"]
)
def test_an_approved_model_passes_until_revoked(
    variants: dict[tuple[str, str], Path], variant: str, audit_in_tmp: Path
) -> None:
    path = variants["yolo11n_320.onnx", variant]
    entry = approve_model(path, "retrained on site clips, checked", audit_in_tmp, by="dpo")
    decision = model_approved(path, audit_in_tmp)
    assert decision.allowed, decision.detail
    assert f"approved for this site by dpo on {entry.time} (audit seq {entry.audit_seq})" in (
        decision.detail
    )
    events = [json.loads(line) for line in audit_in_tmp.read_text().splitlines()]
    assert events[-1]["event"] == "model_approved"
    assert {k: events[-1][k] for k in ("sha256", "file", "reason", "by")} == {
        "sha256": sha256_file(path), "file": path.name,
        "reason": "retrained on site clips, checked", "by": "dpo",
    }  # fmt: skip
    revoke_model(path, "weights withdrawn", audit_in_tmp, by="dpo")
    after = model_approved(path, audit_in_tmp)
    assert not after.allowed
    assert verify_audit(audit_in_tmp).ok


def test_an_approved_model_starts_and_an_unapproved_one_is_refused_and_audited(
    variants: dict[tuple[str, str], Path], audit_in_tmp: Path
) -> None:
    path = variants["yolo11n_320.onnx", "one weight nudged"]
    settings = load_settings(
        EXAMPLE, model_dir=str(shared_file("models")), detector={"model": str(path)}
    )
    camera = settings.cameras[0].model_copy(
        update={"source": str(shared_file("clips/tud_campus/TUD-Campus.mp4"))}
    )
    with pytest.raises(PolicyViolation, match=r"model\.approved: v\d_yolo11n_320\.onnx sha256"):
        count(settings, camera, audit_log=audit_in_tmp, progress=False, max_frames=2)
    refused = json.loads(audit_in_tmp.read_text().splitlines()[-1])
    assert refused["event"] == "start_refused"
    assert any(r.startswith("model.approved: ") for r in refused["refusals"])

    approve_model(path, "site retraining", audit_in_tmp, by="dpo")
    result = count(settings, camera, audit_log=audit_in_tmp, progress=False, max_frames=2)
    assert result.frames == 2
    events = [json.loads(line)["event"] for line in audit_in_tmp.read_text().splitlines()]
    assert events[-3:] == ["model_approved", "start", "stop"]


def _hand_written(path: Path, sha: str, audit_log: Path) -> None:
    site_list_path(audit_log).parent.mkdir(parents=True, exist_ok=True)
    entry = {"sha256": sha, "file": path.name, "reason": "trust me", "by": "dpo",
             "time": "2026-11-30T10:00:00.000000Z", "audit_seq": 0,
             "audit_hash": "a" * 64}  # fmt: skip
    site_list_path(audit_log).write_text(yaml.safe_dump({"approved": [entry]}))


def _copied_from_another(path: Path, other: Path, audit_log: Path) -> None:
    """A genuine approval of another model, its sha256 replaced by this one's."""
    approve_model(other, "approved", audit_log, by="dpo")
    data = yaml.safe_load(site_list_path(audit_log).read_text())
    data["approved"][0]["sha256"] = sha256_file(path)
    data["approved"][0]["file"] = path.name
    site_list_path(audit_log).write_text(yaml.safe_dump(data))


def _list_deleted(path: Path, other: Path, audit_log: Path) -> None:
    approve_model(path, "ok", audit_log, by="dpo")
    site_list_path(audit_log).unlink()


def _reason_changed(path: Path, other: Path, audit_log: Path) -> None:
    approve_model(path, "for a week of tests", audit_log, by="dpo")
    data = yaml.safe_load(site_list_path(audit_log).read_text())
    data["approved"][0]["reason"] = "permanent"
    site_list_path(audit_log).write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda p, o, log: _hand_written(p, sha256_file(p), log), "edited by hand"),
        (_copied_from_another, "edited by hand"),
        (_reason_changed, "edited by hand"),
        (_list_deleted, "does not list it"),
    ],
    ids=["entry-without-audit", "entry-copied", "reason-changed", "list-deleted"],
)
def test_a_site_list_edited_by_hand_is_refused(
    variants: dict[tuple[str, str], Path],
    edit: Callable[[Path, Path, Path], object],
    says: str,
    audit_in_tmp: Path,
) -> None:
    path = variants["yolo11n_320.onnx", "person-car channels swapped"]
    other = variants["yolo11n_320.onnx", "description only"]
    edit(path, other, audit_in_tmp)
    decision = model_approved(path, audit_in_tmp)
    assert not decision.allowed
    assert says in decision.detail
    assert "models approve" in decision.detail


def test_a_site_list_beside_a_log_that_does_not_verify_is_refused(
    variants: dict[tuple[str, str], Path], audit_in_tmp: Path
) -> None:
    path = variants["yolo11n.onnx", "a class renamed"]
    approve_model(path, "ok", audit_in_tmp, by="dpo")
    audit_in_tmp.write_text(audit_in_tmp.read_text().replace('"by":"dpo"', '"by":"eve"'))
    decision = model_approved(path, audit_in_tmp)
    assert not decision.allowed
    assert "does not verify" in decision.detail


def test_approve_needs_a_reason_and_an_existing_file(tmp_path: Path, audit_in_tmp: Path) -> None:
    with pytest.raises(ConfigError, match="--reason"):
        approve_model(tmp_path / "x.onnx", "  ", audit_in_tmp, by="dpo")
    with pytest.raises(Exception, match=r"x\.onnx: model file not found"):
        approve_model(tmp_path / "x.onnx", "why", audit_in_tmp, by="dpo")
    assert not audit_in_tmp.exists()
    assert not (audit_in_tmp.parent / SITE_LIST_NAME).exists()


def test_the_hash_follows_the_file_content(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"one")
    first = sha256_file(path)
    assert sha256_file(path) == first
    path.write_bytes(b"two, longer")
    assert sha256_file(path) != first


def run_edge(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> str:
    result = subprocess.run(
        edge_argv(*args), cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return f"{result.returncode}\n{result.stdout}{result.stderr}"


def test_policy_check_and_models_info_show_the_allow_list(
    variants: dict[tuple[str, str], Path], tmp_path: Path
) -> None:
    path = variants["yolo11n_320.onnx", "bicycle-motorcycle channels swapped"]
    sha = sha256_file(path)
    env = {"EDGE_DETECTOR__MODEL": str(path)}
    # A manifest in the working directory does not widen the shipped allow-list.
    local = tmp_path / "models"
    local.mkdir()
    manifest = yaml.safe_load((REPO / "models" / "manifest.yaml").read_text())
    manifest["models"][0].update(sha256=sha, file=path.name)
    (local / "manifest.yaml").write_text(yaml.safe_dump(manifest))
    example = yaml.safe_load(EXAMPLE.read_text())  # paths made absolute: it runs elsewhere
    example["model_dir"] = str(shared_file("models"))
    example["cameras"][0]["source"] = str(shared_file("clips/tud_campus/TUD-Campus.mp4"))
    config = str(tmp_path / "edge.yaml")
    Path(config).write_text(yaml.safe_dump(example))

    before = run_edge("policy", "check", "-c", config, env=env, cwd=tmp_path)
    assert before.startswith("3\n"), before
    assert f"REFUSED  model.approved: {path.name} sha256 {sha}: " in before
    assert f"NO ({path.name} sha256 {sha}" in run_edge("models", "info", str(path))

    approved = run_edge("models", "approve", str(path), "--reason", "site model", "--by", "dpo")
    assert approved.startswith("0\n") and f"approved {path.name} sha256 {sha} by dpo" in approved

    after = run_edge("policy", "check", "-c", config, env=env)
    assert after.startswith("0\n"), after
    assert f"allowed  model.approved: {path.name} sha256 {sha}: approved for this site by dpo" in (
        after
    )
    assert "approved    yes" in run_edge("models", "info", str(path))
    real = str(shared_file("models/yolo11n.onnx"))
    shipped = run_edge("models", "approve", real, "--reason", "x")
    assert shipped.startswith("0\n") and "in the shipped manifest" in shipped
