"""Command line: ``edge count``, ``edge run``, ``edge bench``, ``edge policy check|show``,
``edge notice``, ``edge audit verify``, ``edge config validate|schema``,
``edge models info|approve|revoke|quantize|batch``, ``edge health``, ``edge dashboard``.

Logging is configured here and nowhere else. Errors of ours print as one line each and exit 2;
a refusal by the legal gate exits 3, each reason on its own line; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edge.analytics.detections import CATEGORIES
from edge.config import CameraConfig, Settings, load_settings, with_overrides
from edge.errors import ConfigError, EdgeError, PolicyViolation, validation_lines
from edge.health import HEALTH_FILE_ENV
from edge.legal.audit import AuditLog, JsonValue
from edge.progress import Progress

EXIT_ERROR = 2
EXIT_REFUSED = 3  # the legal gate refused: a policy matter, not a typo
EXIT_INTERRUPTED = 130
DEFAULT_AUDIT_LOG = Path("var/audit.jsonl")  # relative to the working directory


def cmd_config_validate(args: argparse.Namespace) -> int:
    load_settings(args.config)
    print("ok")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    print(json.dumps(Settings.model_json_schema(), indent=2))
    return 0


def cmd_models_info(args: argparse.Namespace) -> int:
    from edge.detect.manifest import approval_of, load_manifest, load_site_approvals, sha256_file
    from edge.detect.runtime import OnnxRuntime

    runtime = OnnxRuntime(args.path)
    info = runtime.info
    digest = sha256_file(args.path)
    known = load_manifest(args.manifest).find(digest)
    verdict = approval_of(digest, args.path.name, load_site_approvals(args.audit_log))
    meta = {k: v for k, v in info.metadata.items() if k != "names"}
    report = {
        "file": str(args.path),
        "sha256": digest,
        "task": info.task,
        "input_size": list(info.input_size),
        "batch": info.batch,
        "classes": len(info.names),
        "candidates": info.outputs,
        "metadata": meta,
        "manifest": known.model_dump() if known else None,
        "approved": {"allowed": verdict.allowed, "how": verdict.how or None,
                     "detail": verdict.detail},
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key in ("file", "sha256", "task", "input_size", "batch", "classes", "candidates"):
        value = "dynamic" if key == "batch" and report[key] is None else report[key]
        print(f"{key:<11} {value}")
    for key, value in sorted(meta.items()):
        print(f"  {key:<12} {value}")
    print(
        f"manifest    {'known: ' + known.file + ' (' + known.licence + ')' if known else 'unknown'}"
    )
    print(f"approved    {'yes' if verdict.allowed else 'NO'} ({verdict.detail})")
    return 0


def cmd_models_approve(args: argparse.Namespace) -> int:
    """A DPO's approval of a model file by sha256: audited, then listed for the site."""
    from edge.detect.manifest import approval_of, approve_model, sha256_file, site_list_path

    shipped = approval_of(sha256_file(args.path), args.path.name, None)
    if shipped.allowed:
        print(f"{shipped.detail}: nothing to approve")
        return 0
    entry = approve_model(args.path, args.reason, args.audit_log, args.by)
    print(
        f"approved {entry.file} sha256 {entry.sha256} by {entry.by} (audit seq {entry.audit_seq}"
        f" in {args.audit_log}, listed in {site_list_path(args.audit_log)})"
    )
    return 0


def cmd_models_revoke(args: argparse.Namespace) -> int:
    from edge.detect.manifest import revoke_model

    digest = revoke_model(args.path, args.reason, args.audit_log, args.by)
    print(f"revoked {args.path.name} sha256 {digest} (audited in {args.audit_log})")
    return 0


def cmd_models_quantize(args: argparse.Namespace) -> int:
    from edge.detect.quantize import quantize_model

    output = args.output or args.path.with_name(f"{args.path.stem}_int8_static.onnx")
    bar = Progress(args.frames, "calibration", enabled=not args.quiet)
    report = quantize_model(args.path, args.clip, output, args.frames, progress=bar.advance)
    bar.close()
    mb = 2**20
    print(
        f"{report.output}: static INT8 (QDQ), {report.quantize_nodes} quantised tensors, "
        f"{report.excluded_nodes} box-decoding nodes left in float32, calibrated on "
        f"{report.calibration_frames} frames of {args.clip.name}, {report.size_before / mb:.1f}"
        f" -> {report.size_after / mb:.1f} MB in {report.seconds:.0f} s"
    )
    return 0


def cmd_models_batch(args: argparse.Namespace) -> int:
    """A copy with a dynamic batch axis, written only if it reproduces the original's outputs."""
    from edge.detect.batch import make_batch_dynamic

    report = make_batch_dynamic(args.path, args.out)
    for change in report.changes:
        print(f"  {change}")
    batches = ", ".join(map(str, report.batches))
    print(
        f"{report.output}: batch axis dynamic ('batch'), {len(report.changes)} changes; outputs "
        f"at batch {batches} equal the original's within {report.max_abs_diff:.3g} "
        f"({report.max_rel_diff:.1e} of the output scale) in {report.seconds:.1f} s; "
        "a new file: 'edge models approve' it before it runs here"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Detector limit, our pipeline and the Ultralytics baseline; the ratios are printed last."""
    from edge.bench import default_baseline_python, markdown, run_bench

    baseline = None if args.no_baseline else args.ultralytics or default_baseline_python()
    gt = dict(_path_flag("--gt", v) for v in args.gt)
    doc = run_bench(
        args.config, args.model, args.out, args.frames, args.threads, baseline, gt,
        command=" ".join(["edge", *sys.argv[1:]]), warn_no_baseline=not args.no_baseline,
    )  # fmt: skip
    print(markdown(doc))
    for run in doc["runs"]:
        figures = ", ".join(f"{k} {v}" for k, v in run["ratios"].items() if v is not None)
        print(f"{run['camera']} / {run['model']}: {figures}")
    print(f"written: {args.out}/bench.json, bench.md (plots: python -m benchmarks.plot_bench OUT)")
    return 0


def _path_flag(flag: str, value: str) -> tuple[str, Path]:
    name, _, path = value.partition("=")
    if not name or not path:
        raise ConfigError([f"{flag}: expected CAMERA=PATH, got '{value}'"])
    return name, Path(path)


def cmd_run(args: argparse.Namespace) -> int:
    """Every configured camera to the configured sinks; SIGINT/SIGTERM end it cleanly (exit 0)."""
    from edge.app import run

    signal.signal(signal.SIGTERM, _interrupt)
    settings = _settings_or_audited_refusal(args.config, args.audit_log)
    for result in run(settings, args.audit_log, health_file=args.health_file):
        state = "interrupted" if result.interrupted else "done"
        print(
            f"{result.camera_id}: {state}, {result.frames} frames "
            f"({result.skipped} unchanged, not detected), {result.reports_published} reports",
            file=sys.stderr,
        )
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """The collector and web UI (the ``dashboard`` extra); SIGINT/SIGTERM end it (exit 0)."""
    try:
        from edge.dashboard.service import serve
    except ImportError as err:
        raise ConfigError(
            [f"edge dashboard needs the dashboard extra: pip install 'edge-footfall[dashboard]' "
             f"({err.name} is missing)"]
        ) from err  # fmt: skip
    settings = load_settings(args.config)
    # uvicorn shuts down on SIGTERM, then raises it again for the handler found at start.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):  # a requested stop, after a clean shutdown
        serve(settings, collect=not args.no_collect)
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    """The commissioning page for one camera until Ctrl-C; opening, saving and closing audited."""
    from edge.app import build_detector
    from edge.commissioning.server import SetupSession, file_sha256, serve
    from edge.legal.gate import startup_gate
    from edge.legal.policy import load_policy

    settings = _settings_or_audited_refusal(args.config, args.audit_log)
    ids = [camera.id for camera in settings.cameras]
    if not ids:
        raise ConfigError(["cameras: edge setup needs at least one camera in -c FILE"])
    if args.camera and args.camera not in ids:
        raise ConfigError([f"--camera: no camera '{args.camera}' in the config ({ids})"])
    index = ids.index(args.camera) if args.camera else 0
    policy = load_policy(settings.policy.path())
    detector = build_detector(settings)
    camera = settings.cameras[index]
    with AuditLog(args.audit_log) as audit:
        facts: dict[str, JsonValue] = {
            "camera": camera.id,
            "policy_sha256": policy.sha256,
            "config_sha256": file_sha256(args.config),
        }
        # Everything but the geometry, which is what the page is for, must already pass.
        decision = startup_gate(settings, policy, [camera], detector.info, dt.date.today())
        refusals = [
            f"{d.rule}: {d.detail}" for d in decision.refusals if ".geometry." not in d.rule
        ]
        if not policy.setup_view:
            refusals.append(f"policy.setup_view: policy '{policy.name}' forbids the setup page")
        if refusals:
            audit.append("setup_refused", **facts, refusals=list[JsonValue](refusals))
            raise PolicyViolation(refusals)
        session = SetupSession(args.config, settings, index, policy, detector, audit)
        audit.append("setup_opened", **facts, background=list[JsonValue](session.frame_size))
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            serve(session, args.host, args.port, lambda url: print(f"open {url}", flush=True))
        except KeyboardInterrupt:
            pass
        finally:
            audit.append("setup_closed", **{**facts, "config_sha256": file_sha256(args.config)})
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """Exit 0 if ``edge run``'s heartbeat is fresh and its process alive, 1 otherwise."""
    from edge.health import check_health

    if args.file is None:  # 1, not 2: health checkers read anything but 0 and 1 as an error
        print("unhealthy: no heartbeat file given (--file or EDGE_HEALTH_FILE)")
        return 1
    try:
        print(check_health(args.file, args.max_age))
    except ValueError as err:
        print(f"unhealthy: {err}")
        return 1
    return 0


def cmd_policy_check(args: argparse.Namespace) -> int:
    """Every start-up gate decision for every camera; exit 0 if the deployment may start."""
    from edge.detect.manifest import load_site_approvals
    from edge.detect.runtime import OnnxRuntime
    from edge.legal.gate import startup_gate
    from edge.legal.policy import load_policy

    settings = load_settings(args.config)
    policy = load_policy(settings.policy.path())
    model = OnnxRuntime(settings.model_path()).info
    approved = load_site_approvals(args.audit_log)
    from edge.vision.live import is_live

    sizes = {c.id: _recording_size(c) for c in settings.cameras if not is_live(c.source)}
    result = startup_gate(
        settings, policy, settings.cameras, model, dt.date.today(), approved=approved,
        frame_sizes=sizes,
    )  # fmt: skip
    print(f"policy {policy.name} v{policy.version} sha256 {policy.sha256}")
    for decision in result.decisions:
        print(decision)
    verdict = "may start" if result.allowed else f"REFUSED ({len(result.refusals)} reasons)"
    print(f"deployment {verdict}")
    return 0 if result.allowed else EXIT_REFUSED


def _recording_size(camera: CameraConfig) -> tuple[int, int]:
    """A recording's frame size, for the geometry rules (a camera's is known at its first frame)."""
    from edge.vision.sources import open_source

    source = open_source(camera.source, camera.id)
    try:
        return source.frame_size
    finally:
        source.close()


def cmd_policy_show(args: argparse.Namespace) -> int:
    from edge.legal.policy import load_policy

    path = args.policy or load_settings(args.config).policy.path()
    policy = load_policy(path)
    print(f"# {path}\n# sha256 {policy.sha256}")
    print(yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False, allow_unicode=True))
    return 0


def cmd_notice(args: argparse.Namespace) -> int:
    from edge.legal.notice import render_notice_for
    from edge.legal.policy import load_policy

    settings = load_settings(args.config)
    policy = load_policy(settings.policy.path())
    print(render_notice_for(settings, policy, args.format, args.lang), end="")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from edge.legal.audit import verify_audit

    head, entries = _anchor_flags(args.expect_head, args.expect_entries)
    check = verify_audit(args.file, expect_hash=head, expect_entries=entries)
    if check.ok:
        anchored = f", holds the anchor {head[:12]}..." if head else " (no anchor given)"
        print(f"ok: {check.entries} entries, chain intact{anchored}")
        return 0
    print(f"edge: {args.file}: {check.reason}", file=sys.stderr)
    return 1


def _anchor_flags(head: str | None, entries: str | None) -> tuple[str | None, int | None]:
    """``--expect-head`` (a sha256) and ``--expect-entries`` (a count from 1), checked here so
    that a mistyped anchor is a one-line error, not a verification failure."""
    if head is not None:
        head = head.strip().lower()
        if len(head) != 64 or any(c not in "0123456789abcdef" for c in head):
            raise ConfigError([f"--expect-head: expected a sha256 (64 hex digits), got '{head}'"])
    if entries is None:
        return head, None
    if head is None:
        raise ConfigError(["--expect-entries: give the head it belongs to with --expect-head"])
    if not entries.isdigit() or int(entries) < 1:
        raise ConfigError([f"--expect-entries: expected a count of 1 or more, got '{entries}'"])
    return head, int(entries)


def _settings_or_audited_refusal(config: Path | None, audit_log: Path) -> Settings:
    """Settings for a processing command; asking for a forbidden use is an audited attempt,
    written to the installation's log (``--audit-log``), never to a place the config names."""
    try:
        return load_settings(config)
    except PolicyViolation as refused:
        with AuditLog(audit_log) as audit:
            audit.append("start_refused", refusals=list[JsonValue](refused.lines))
        raise


def _camera_for(args: argparse.Namespace, settings: Settings) -> tuple[CameraConfig, str]:
    """The camera to run and its name in errors: the one ``--camera`` names or the config's
    first, its source replaced by CLIP when given, plus the flags' lines and zones."""
    ids = [camera.id for camera in settings.cameras]
    index: int | None = ids.index(args.camera) if args.camera in ids else None
    if args.clip is None:
        if args.camera and index is None:
            raise ConfigError([f"--camera: no camera '{args.camera}' in the config ({ids})"])
        if not ids:
            raise ConfigError(["cameras: give a CLIP argument or at least one camera in -c FILE"])
    if index is None and ids:
        index = 0
    fields = settings.cameras[index].model_dump() if index is not None else {}
    where = f"cameras[{index}]" if index is not None and args.clip is None else "camera"
    if args.clip is not None:
        fields["source"] = str(args.clip)
        fields["id"] = args.camera or fields.get("id") or _camera_id(Path(args.clip))
    if args.target_fps is not None:
        fields["target_fps"] = args.target_fps
    fields["lines"] = [*fields.get("lines", []), *(_line_flag(v) for v in args.line)]
    fields["zones"] = [*fields.get("zones", []), *(_zone_flag(v) for v in args.zone)]
    try:
        return CameraConfig.model_validate(fields), where
    except ValidationError as err:
        raise ConfigError(validation_lines(err, prefix=f"{where}.")) from err


def _camera_id(path: Path) -> str:
    """A clip's camera id: its file name as a slug, or 'camera' when that name could not be
    published (a forbidden-use word, something like personal data)."""
    from edge.legal.forbidden import public_name_problem

    stem = path.stem.lower()
    cleaned = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "-" for ch in stem)
    slug = cleaned.strip("-_")[:32].strip("-_")
    return slug if slug and public_name_problem(slug) is None else "camera"


def _numbers_flag(flag: str, value: str, expected: str) -> tuple[str, list[float]]:
    name, _, numbers = value.partition("=")
    try:
        parsed = [float(n) for n in numbers.split(",")]
    except ValueError:
        parsed = []
    if not name or not parsed:
        raise ConfigError([f"{flag}: expected {expected}, got '{value}'"])
    return name, parsed


def _line_flag(value: str) -> dict[str, Any]:
    name, n = _numbers_flag("--line", value, "NAME=x1,y1,x2,y2")
    if len(n) != 4:
        raise ConfigError([f"--line: expected NAME=x1,y1,x2,y2 (4 numbers), got '{value}'"])
    return {"name": name, "start": (n[0], n[1]), "end": (n[2], n[3])}


def _zone_flag(value: str) -> dict[str, Any]:
    name, n = _numbers_flag("--zone", value, "NAME=x1,y1,x2,y2,x3,y3,...")
    if len(n) % 2 or len(n) < 6:
        raise ConfigError([f"--zone: expected NAME and at least 3 x,y pairs, got '{value}'"])
    return {"name": name, "points": list(zip(n[::2], n[1::2], strict=True))}


def cmd_count(args: argparse.Namespace) -> int:
    from edge.app import count

    settings = _settings_or_audited_refusal(args.config, args.audit_log)
    if args.model is not None:
        settings = _override(settings, "--model", {"detector": {"model": args.model}})
    if args.window is not None:
        settings = _override(settings, "--window", {"window": {"seconds": args.window}})
    camera, where = _camera_for(args, settings)
    signal.signal(signal.SIGTERM, _interrupt)  # a service stop ends the run like Ctrl-C
    result = count(
        settings, camera, where, audit_log=args.audit_log, progress=not args.json and not args.quiet
    )
    doc = result.to_json()
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        _print_summary(doc)
    return EXIT_INTERRUPTED if result.interrupted else 0


def _override(settings: Settings, flag: str, changes: dict[str, Any]) -> Settings:
    """A flag's value validated like the file's; an error names the flag."""
    try:
        return with_overrides(settings, changes)
    except ConfigError as err:
        raise ConfigError([f"{flag}: {line}" for line in err.lines]) from err


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _print_summary(doc: dict[str, Any]) -> None:
    timing = doc["timing"]
    print(f"source      {doc['source']} (camera {doc['camera']})")
    print(f"model       {doc['model']} on {', '.join(doc['providers'])}")
    stopped = " (interrupted: figures so far)" if doc["interrupted"] else ""
    print(f"frames      {doc['frames']} ({doc['duration_s']} s of video){stopped}")
    print(
        f"speed       {timing['fps']} frames/s, detector {timing['detector_ms_p50']} ms p50, "
        f"{timing['detector_ms_p95']} ms p95"
    )
    print("detections  " + ", ".join(f"{c} {n}" for c, n in doc["detections"].items()))
    categories = [c.value for c in CATEGORIES]
    if doc["lines"]:
        print(f"\n{'line':<16}{'direction':<11}" + "".join(f"{c:>12}" for c in categories))
        for name, per_direction in doc["lines"].items():
            for direction, counts in per_direction.items():
                cells = "".join(f"{counts[c]:>12}" for c in categories)
                print(f"{name:<16}{direction:<11}{cells}")
    if doc["zones"]:
        print(f"\n{'zone':<16}{'':<11}" + "".join(f"{c:>12}" for c in categories))
        for name, per_category in doc["zones"].items():
            for figure in ("mean", "max"):
                cells = "".join(f"{per_category[c][figure]:>12}" for c in categories)
                print(f"{name:<16}{figure:<11}{cells}")
    if doc.get("movements"):
        print(f"\n{'movement':<27}" + "".join(f"{c:>12}" for c in categories))
        for name, counts in doc["movements"].items():
            print(f"{name:<27}" + "".join(f"{counts[c]:>12}" for c in categories))
    windows = doc["windows"]
    partial = sum(1 for w in windows if w["partial"])
    print(f"\nwindows     {len(windows)} ({partial} partial); --json prints them")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge", description="Anonymous footfall counting on recorded clips and cameras."
    )
    parser.add_argument("--debug", action="store_true", help="debug logs and tracebacks")
    parser.add_argument("-v", "--verbose", action="store_true", help="info logs")
    parser.add_argument(
        "--audit-log", type=Path, default=DEFAULT_AUDIT_LOG, metavar="PATH",
        help="the installation's audit log, where every start, stop and refusal is recorded; "
        "set by the service's command line, never by the config or the environment "
        f"(default: {DEFAULT_AUDIT_LOG})",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser, required: bool = False) -> None:
        p.add_argument("-c", "--config", type=Path, required=required, help="YAML config file")

    count = commands.add_parser("count", help="run the pipeline over a recorded clip")
    count.add_argument(
        "clip", nargs="?", help="clip or image folder (default: the config's camera)"
    )
    with_config(count)
    count.add_argument("--model", type=Path, help="ONNX model file (overrides the config)")
    count.add_argument("--camera", help="camera id (picks one from the config, or names the clip)")
    count.add_argument("--target-fps", type=float, help="process at most this many frames/s")
    count.add_argument(
        "--line", action="append", default=[], metavar="NAME=x1,y1,x2,y2", help="counting line"
    )
    count.add_argument(
        "--zone", action="append", default=[], metavar="NAME=x1,y1,x2,y2,x3,y3,...", help="zone"
    )
    count.add_argument("--window", type=int, metavar="SECONDS", help="aggregation window length")
    count.add_argument("--json", action="store_true", help="print one JSON document")
    count.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    count.set_defaults(func=cmd_count)

    config = commands.add_parser("config", help="check or describe the configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    validate = config_commands.add_parser("validate", help="print ok or every error, one a line")
    with_config(validate, required=True)
    validate.set_defaults(func=cmd_config_validate)
    schema = config_commands.add_parser("schema", help="print the JSON schema")
    schema.set_defaults(func=cmd_config_schema)

    run = commands.add_parser("run", help="run the configured cameras to the configured sinks")
    with_config(run, required=True)
    health_file = os.environ.get(HEALTH_FILE_ENV)
    run.add_argument(
        "--health-file", type=Path, default=health_file, metavar="PATH",
        help="write a heartbeat (figures only) there every 5 s (default: $EDGE_HEALTH_FILE)",
    )  # fmt: skip
    run.set_defaults(func=cmd_run)

    dashboard = commands.add_parser(
        "dashboard", help="collect the published counts of every site, chart and export them"
    )
    with_config(dashboard, required=True)
    dashboard.add_argument(
        "--no-collect", action="store_true", help="serve what is stored, without a broker"
    )
    dashboard.set_defaults(func=cmd_dashboard)

    setup = commands.add_parser(
        "setup", help="the installer's page: place a camera's lines and zones on its background"
    )
    with_config(setup, required=True)
    setup.add_argument("--camera", help="camera id (default: the first)")
    setup.add_argument(
        "--host", default="127.0.0.1", help="address to answer on (default: loopback only)"
    )
    setup.add_argument("--port", type=int, default=8090, help="0: any free port")
    setup.set_defaults(func=cmd_setup)

    health = commands.add_parser(
        "health", help="exit 0 if edge run's heartbeat is fresh and its process alive, 1 if not"
    )
    health.add_argument(
        "--file", type=Path, default=health_file, metavar="PATH",
        help="heartbeat file (default: $EDGE_HEALTH_FILE)",
    )  # fmt: skip
    health.add_argument("--max-age", type=float, default=60.0, metavar="SECONDS")
    health.set_defaults(func=cmd_health)

    policy = commands.add_parser("policy", help="the legal gate: check a deployment, show a policy")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = policy_commands.add_parser(
        "check", help="print every gate decision; exit 0 if the deployment may start, 3 if not"
    )
    with_config(check, required=True)
    check.set_defaults(func=cmd_policy_check)
    show = policy_commands.add_parser("show", help="the policy in force and its sha256")
    with_config(show)
    show.add_argument("--policy", type=Path, help="a policy file (default: the config's)")
    show.set_defaults(func=cmd_policy_show)

    notice = commands.add_parser("notice", help="render the public information notice")
    with_config(notice, required=True)
    notice.add_argument("--format", choices=("md", "html"), default="md")
    notice.add_argument(
        "--lang",
        choices=("fr", "en"),
        default=None,
        help="default: fr when the policy is a CNIL one (its name starts with 'cnil'), else en",
    )
    notice.set_defaults(func=cmd_notice)

    audit = commands.add_parser("audit", help="the hash-chained audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser(
        "verify", help="exit 0 if intact, 1 naming the first broken entry"
    )
    verify.add_argument("file", type=Path)
    verify.add_argument(
        "--expect-head", metavar="HASH",
        help="a chain head kept off the box (published on <prefix>/<site>/audit): a log cut "
        "or rewritten before it fails",
    )  # fmt: skip
    verify.add_argument(
        "--expect-entries", metavar="N", help="the head's entry count: entry N must have HASH"
    )
    verify.set_defaults(func=cmd_audit_verify)

    models = commands.add_parser("models", help="inspect, approve, quantize and batch model files")
    models_commands = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    info = models_commands.add_parser(
        "info", help="metadata, sha256, manifest entry and whether the gate lets it run"
    )
    info.add_argument("path", type=Path)
    info.add_argument("--manifest", type=Path, help="manifest file (default: models/manifest.yaml)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=cmd_models_info)
    for action, func, what in (
        ("approve", cmd_models_approve, "let a model missing from the shipped manifest run here"),
        ("revoke", cmd_models_revoke, "withdraw a site approval"),
    ):
        sub = models_commands.add_parser(
            action, help=f"{what}: audited, recorded beside the audit log, by sha256"
        )
        sub.add_argument("path", type=Path, help="ONNX model file")
        sub.add_argument("--reason", required=True, help="why (written to the audit log)")
        sub.add_argument("--by", help="who decides, e.g. the DPO (default: the user name)")
        sub.set_defaults(func=func)
    quantize = models_commands.add_parser(
        "quantize", help="static INT8 (QDQ) model calibrated on frames of a clip"
    )
    quantize.add_argument("path", type=Path, help="float32 YOLO ONNX model")
    quantize.add_argument("--clip", type=Path, required=True, help="calibration clip")
    quantize.add_argument("--frames", type=int, default=64, help="calibration frames (spread)")
    quantize.add_argument("-o", "--output", type=Path, help="default: MODEL_int8_static.onnx")
    quantize.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    quantize.set_defaults(func=cmd_models_quantize)
    batch = models_commands.add_parser(
        "batch", help="copy with a dynamic batch axis, checked against the original's outputs"
    )
    batch.add_argument("path", type=Path, help="YOLO ONNX model exported with batch 1")
    batch.add_argument("-o", "--out", type=Path, required=True, help="the new model file")
    batch.set_defaults(func=cmd_models_batch)

    bench = commands.add_parser(
        "bench", help="speed, memory and counts against the detector limit and Ultralytics"
    )
    with_config(bench, required=True)
    bench.add_argument("--model", type=Path, action="append", required=True, help="ONNX model")
    bench.add_argument("--out", type=Path, required=True, help="folder for JSON, table, plots")
    bench.add_argument("--frames", type=int, default=0, help="frames per clip (0: all)")
    bench.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    bench.add_argument("--ultralytics", type=Path, help="python of the baseline environment")
    bench.add_argument("--no-baseline", action="store_true", help="skip Ultralytics")
    bench.add_argument(
        "--gt", action="append", default=[], metavar="CAMERA=PATH",
        help="MOTChallenge gt.txt (default: gt/gt.txt beside the clip)",
    )  # fmt: skip
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:  # FFmpeg and OpenCV chatter on stderr; our errors say it in one line
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    try:
        return int(args.func(args))
    except EdgeError as err:
        if args.debug:
            raise
        refused = isinstance(err, PolicyViolation)
        for line in err.lines:
            print(f"edge: {'refused: ' if refused else ''}{line}", file=sys.stderr)
        if refused and any(line.startswith("declaration.") for line in err.lines):
            print(
                "edge: hint: declare the deployment in -c CONFIG (examples/tud-campus.yaml shows "
                "every field); 'edge policy check -c CONFIG' lists each decision",
                file=sys.stderr,
            )
        return EXIT_REFUSED if refused else EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
