"""Issue 15 item 5: an audit log a DPO can trust from outside the box.

The attacker controls the config, the environment, the policy and the files on the box, not
the service's command line. These tests write the attacks they found: a log re-chained after a
deletion, a log cut short, an empty log, a refusal sent to a throwaway file; each with several
positions and lengths, not one.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.cli import main
from edge.config import load_settings
from edge.errors import ConfigError
from edge.legal.audit import GENESIS, AuditHead, AuditLog, verify_audit
from tests.conftest import EXAMPLE, REPO, edge_argv
from tests.support.cli import edge

N = 9  # entries in the log under attack


def write_log(path: Path, entries: int = N) -> AuditHead:
    """A log of ``entries`` entries; its head is what ``edge run`` would publish."""
    with AuditLog(path) as log:
        log.append("start", cameras=["cam"])
        for i in range(entries - 2):
            log.append("egress_drop" if i % 2 else "spool_dropped", dropped=i)
        log.append("stop", frames_persisted=0)
        return log.head


def heads_along(path: Path, entries: int = N) -> Iterator[AuditHead]:
    """The head after each entry, as a periodic publication would have caught it."""
    with AuditLog(path) as log:
        for i in range(entries):
            log.append("tick", i=i)
            yield log.head


def rechain(path: Path, delete: int) -> None:
    """The attack of the issue, as a standalone script would do it: delete entry ``delete``,
    renumber and recompute every hash after it, byte for byte in the log's own format."""
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    del entries[delete]
    previous = GENESIS
    lines = []
    for seq, entry in enumerate(entries):
        entry["seq"], entry["prev"] = seq, previous
        body = {k: v for k, v in entry.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        entry["hash"] = previous = hashlib.sha256(canonical.encode()).hexdigest()
        lines.append(json.dumps(entry, separators=(",", ":"), ensure_ascii=False) + "\n")
    path.write_text("".join(lines), encoding="utf-8")


# -- re-chained, truncated and empty logs ----------------------------------------------------------


@pytest.mark.parametrize("delete", [0, 1, 4, N - 2, N - 1])
def test_a_rechained_log_verifies_alone_but_fails_against_the_published_head(
    tmp_path: Path, delete: int
) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    rechain(path, delete)
    assert verify_audit(path).ok  # the chain alone cannot tell: anyone can compute SHA-256
    for check in (
        verify_audit(path, expect_hash=head.hash, expect_entries=head.entries),
        verify_audit(path, expect_hash=head.hash),
    ):
        assert not check.ok and "cut or rewritten" in check.reason


@pytest.mark.parametrize("delete", [0, 3, N - 1])
def test_a_rechained_log_padded_back_to_its_length_still_fails(tmp_path: Path, delete: int) -> None:
    """Deleting an entry and appending a harmless one keeps the count, not the head's hash."""
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    rechain(path, delete)
    with AuditLog(path) as log:
        log.append("stop", frames_persisted=0)
    check = verify_audit(path, expect_hash=head.hash, expect_entries=head.entries)
    assert not check.ok and f"entry {head.entries} does not have the anchor's hash" in check.reason


@pytest.mark.parametrize("keep", [0, 1, 2, 5, N - 1])
def test_a_truncated_log_fails_against_the_published_head(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:keep]))
    check = verify_audit(path, expect_hash=head.hash, expect_entries=head.entries)
    assert not check.ok and check.entries == keep
    assert "empty" in check.reason if keep == 0 else "cut or rewritten" in check.reason


@pytest.mark.parametrize("cut", [1, 17, 100])
def test_a_log_cut_mid_line_fails_with_or_without_an_anchor(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    path.write_bytes(path.read_bytes()[:-cut])
    assert not verify_audit(path).ok
    assert not verify_audit(path, expect_hash=head.hash, expect_entries=head.entries).ok


def test_an_empty_log_never_verifies(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.touch()
    check = verify_audit(path)
    assert not check.ok and check.entries == 0 and "empty" in check.reason
    assert not verify_audit(path, expect_hash=GENESIS).ok
    assert not verify_audit(path, expect_hash="ab" * 32, expect_entries=1).ok


@pytest.mark.parametrize("at", [1, 2, 5, N])
def test_a_log_that_grew_since_the_anchor_still_holds_it(tmp_path: Path, at: int) -> None:
    path = tmp_path / "audit.jsonl"
    heads = list(heads_along(path))
    anchor = heads[at - 1]
    assert anchor.entries == at
    with AuditLog(path) as log:
        log.append("start")
    assert verify_audit(path, expect_hash=anchor.hash, expect_entries=anchor.entries).ok
    assert verify_audit(path, expect_hash=anchor.hash).ok
    # The same hash claimed for another position does not vouch for it.
    for wrong in {1, at + 1, N + 1} - {at}:
        assert not verify_audit(path, expect_hash=anchor.hash, expect_entries=wrong).ok


def test_head_is_the_last_entrys_hash_and_the_entry_count(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        assert log.head == AuditHead(0, GENESIS)
        for n in range(1, 4):
            entry = log.append("tick")
            assert log.head == AuditHead(n, str(entry["hash"])) and log.last_hash == entry["hash"]


# -- edge audit verify --expect-head -------------------------------------------------------------


def test_cli_verify_checks_the_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = write_log(path)
    anchor = ["--expect-head", head.hash.upper(), "--expect-entries", str(head.entries)]
    ok = edge("audit", "verify", str(path), *anchor)
    assert ok.returncode == 0 and f"ok: {N} entries, chain intact, holds the anchor" in ok.stdout
    rechain(path, 2)
    assert edge("audit", "verify", str(path)).returncode == 0  # what the attacker relied on
    refused = edge("audit", "verify", str(path), *anchor)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"edge: {path}: {N - 1} entries, the anchor vouches for {N}: the log was cut or rewritten"
    ]


def in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    """``edge ARGS`` in this process (a subprocess costs a second): exit status and stderr."""
    for name in ("OPENCV_FFMPEG_LOGLEVEL", "OPENCV_LOG_LEVEL"):  # main() sets them by default
        monkeypatch.setenv(name, os.environ.get(name, ""))
    status = main(list(args))
    return status, capsys.readouterr().err


def test_cli_verify_refuses_an_empty_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "audit.jsonl"
    path.touch()
    status, err = in_process(monkeypatch, capsys, "audit", "verify", str(path))
    assert status == 1 and "the log is empty" in err


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--expect-head", "abc"], "--expect-head: expected a sha256"),
        (["--expect-head", "g" * 64], "--expect-head: expected a sha256"),
        (["--expect-entries", "3"], "--expect-entries: give the head"),
        (["--expect-head", "a" * 64, "--expect-entries", "0"], "--expect-entries: expected a"),
        (["--expect-head", "a" * 64, "--expect-entries", "-2"], "--expect-entries: expected a"),
    ],
)
def test_cli_verify_a_mistyped_anchor_is_a_one_line_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    needle: str,
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path)
    status, err = in_process(monkeypatch, capsys, "audit", "verify", str(path), *flags)
    assert status == 2
    (line,) = err.strip().splitlines()
    assert needle in line


# -- the log's place belongs to the installation -------------------------------------------------


@pytest.mark.parametrize("where", ["/dev/null", "var/other.jsonl", "/tmp/throwaway.jsonl", ""])
def test_audit_path_in_a_config_is_refused_naming_it(tmp_path: Path, where: str) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump({"audit": {"path": where}}))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    (line,) = caught.value.lines
    assert line.startswith("audit.path: ") and "edge --audit-log PATH" in line


@pytest.mark.parametrize("name", ["EDGE_AUDIT__PATH", "edge_audit__path", "EDGE_AUDIT"])
def test_audit_path_in_the_environment_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    monkeypatch.setenv(name, str(tmp_path / "elsewhere.jsonl"))
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    (line,) = caught.value.lines
    assert name in line and "audit.path" in line and "edge --audit-log PATH" in line


@pytest.mark.parametrize(
    ("mode", "redirect"),
    [("face_recognition", "throwaway.jsonl"), ("plate_reading", "/dev/null"),
     ("loitering_detection", "sub/dir/x.jsonl")],
)  # fmt: skip
def test_a_refusal_lands_in_the_installation_log_whatever_the_config_and_environment_say(
    tmp_path: Path, audit_in_tmp: Path, mode: str, redirect: str
) -> None:
    elsewhere = Path(redirect) if redirect.startswith("/") else tmp_path / "elsewhere" / redirect
    data: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    data.update(mode=mode, audit={"path": str(elsewhere)})
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data))
    env = {**os.environ, "EDGE_AUDIT__PATH": str(tmp_path / "env.jsonl")}
    result = subprocess.run(
        edge_argv("count", "-c", str(config)),
        cwd=REPO, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    (entry,) = [json.loads(line) for line in audit_in_tmp.read_text().splitlines()]
    assert entry["event"] == "start_refused" and mode in entry["refusals"][0]
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "env.jsonl").exists()
    assert verify_audit(audit_in_tmp).ok
