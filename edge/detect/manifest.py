"""Which model files may run: the shipped manifest, plus the models a site's DPO approved.

A model's labels say nothing about what its weights do: two output channels swapped (person and
car) keep every name and every shape. So the start-up gate trusts a file only by its sha256:

- ``models/manifest.yaml``, shipped with the product (name, sha256, classes, licence, source);
  read beside the package, never from the working directory, when the package has it there;
- the site allow-list, ``approved-models.yaml`` beside the installation's audit log, written by
  ``edge models approve`` together with a ``model_approved`` audit entry. An entry counts only
  when that audit entry (same hash, sha256, file, reason, by) is in a log that verifies and no
  later ``model_revoked`` entry cancels it, so a hand-edited list is refused.

No ONNX Runtime here: the gate, the CLI and the tests read this without loading a model.
"""

from __future__ import annotations

import functools
import getpass
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.config import PACKAGE_ROOT
from edge.errors import ConfigError, ModelError, validation_lines
from edge.legal.audit import AuditError, AuditLog, JsonValue, verify_audit
from edge.schema import Sha256
from edge.yaml_io import read_yaml

MANIFEST = Path("models/manifest.yaml")
SITE_LIST_NAME = "approved-models.yaml"
APPROVED_EVENT = "model_approved"
REVOKED_EVENT = "model_revoked"


class ManifestEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    sha256: Sha256
    size_bytes: int = Field(gt=0)
    input_size: tuple[int, int]
    classes: str = Field(description="Key into the manifest's class_sets.")
    licence: str
    source: str
    notes: str = ""


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    class_sets: dict[str, list[str]]
    models: list[ManifestEntry]

    def find(self, sha256: str) -> ManifestEntry | None:
        return next((m for m in self.models if m.sha256 == sha256), None)


def shipped_manifest_path() -> Path:
    """The product's own manifest, beside the package (a checkout, an editable install, or the
    image, which copies it there): a ``models/manifest.yaml`` in the working directory cannot
    widen the allow-list."""
    return PACKAGE_ROOT / MANIFEST


def load_manifest(path: Path | None = None) -> Manifest:
    """``path``, or the shipped manifest when None."""
    path = path or shipped_manifest_path()
    data: Any = read_yaml(path, "model manifest")
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        raise ConfigError(validation_lines(err, prefix=f"{path}: ")) from err


def sha256_file(path: Path) -> str:
    """The file's sha256, hashed once per content: the gate and the audit ``start`` entry both
    need it, and a model is ~10 MB. Keyed by path, inode, size and mtime, so a replaced or
    rewritten file is hashed again."""
    try:
        st = path.stat()
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file ({err.strerror})") from err
    return _sha256(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256(path: str, inode: int, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise ModelError(f"{path}: cannot read the model file ({err.strerror})") from err
    return digest.hexdigest()


# -- the site allow-list ------------------------------------------------------------------------


class SiteEntry(BaseModel):
    """One approval as the site list keeps it; ``audit_hash`` ties it to its audit entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sha256: Sha256
    file: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    by: str = Field(min_length=1)
    time: str
    audit_seq: int = Field(ge=0)
    audit_hash: Sha256


class SiteList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    approved: list[SiteEntry] = Field(default_factory=list)


def site_list_path(audit_log: Path) -> Path:
    """The site allow-list lives beside the installation's audit log: same owner, same volume,
    and a configuration cannot point it elsewhere."""
    return audit_log.parent / SITE_LIST_NAME


@dataclass(frozen=True)
class SiteApprovals:
    """The site list and the audit entries that back it, read once at start-up."""

    list_path: Path
    audit_log: Path
    entries: dict[str, SiteEntry]
    audit_entries: tuple[dict[str, Any], ...]  # model_approved / model_revoked, in log order
    audit_problem: str = ""  # why the audit log cannot vouch for any approval; "" when it can


def _read_site_list(path: Path) -> SiteList:
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return SiteList()
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the site model list ({err.strerror})"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: invalid YAML in the site model list"]) from err
    try:
        return SiteList.model_validate(data or {})
    except ValidationError as err:
        raise ConfigError(validation_lines(err, prefix=f"{path}: ")) from err


def load_site_approvals(audit_log: Path) -> SiteApprovals:
    """The site list beside ``audit_log`` and the approval entries of that log."""
    list_path = site_list_path(audit_log)
    entries = {e.sha256: e for e in _read_site_list(list_path).approved}
    found: list[dict[str, Any]] = []
    problem = ""
    if audit_log.exists():
        try:
            check = verify_audit(audit_log)
            if not check.ok:
                problem = f"the audit log {audit_log} does not verify ({check.reason})"
            else:
                with audit_log.open("rb") as f:
                    for raw in f:
                        entry = json.loads(raw)
                        if entry.get("event") in (APPROVED_EVENT, REVOKED_EVENT):
                            found.append(entry)
        except (AuditError, OSError, ValueError) as err:
            problem = f"the audit log {audit_log} cannot be read ({err})"
    return SiteApprovals(list_path, audit_log, entries, tuple(found), problem)


@dataclass(frozen=True)
class Approval:
    """Whether a model file may run, and on whose word: ``how`` is "shipped", "site" or ""."""

    allowed: bool
    how: str
    detail: str


def approval_of(
    sha256: str, name: str, site: SiteApprovals | None, manifest: Manifest | None = None
) -> Approval:
    """The allow-list's verdict on one file; ``detail`` names it and says how to approve it."""
    manifest = manifest or load_manifest()
    head = f"{name} sha256 {sha256}"
    known = manifest.find(sha256)
    if known is not None:
        return Approval(True, "shipped", f"{head}: in the shipped manifest as {known.file}")
    if site is None:
        how_to = f"a DPO approves it with: edge models approve {name} --reason '...'"
        return Approval(False, "", f"{head}: not in the shipped manifest; {how_to}")
    how_to = (
        f"a DPO approves it with: edge --audit-log {site.audit_log} models approve {name} "
        "--reason '...'"
    )
    entry = site.entries.get(sha256)
    events = [e for e in site.audit_entries if e.get("sha256") == sha256]
    if entry is None:
        if events and events[-1].get("event") == APPROVED_EVENT:
            why = (
                f"the audit log approves it (seq {events[-1].get('seq')}) but {site.list_path} "
                "does not list it (edited by hand?)"
            )
        else:
            why = f"neither in the shipped manifest nor approved in {site.list_path}"
        return Approval(False, "", f"{head}: {why}; {how_to}")
    if site.audit_problem:
        return Approval(False, "", f"{head}: listed in {site.list_path} but {site.audit_problem}")
    match = next((e for e in events if e.get("hash") == entry.audit_hash), None)
    if match is None or match.get("event") != APPROVED_EVENT or not _agrees(entry, match):
        return Approval(
            False, "",
            f"{head}: listed in {site.list_path} without its model_approved entry in "
            f"{site.audit_log} (the list was edited by hand); {how_to}",
        )  # fmt: skip
    revoked = [e for e in events if e.get("event") == REVOKED_EVENT and e["seq"] > match["seq"]]
    if revoked:
        return Approval(
            False, "",
            f"{head}: approval revoked (audit seq {revoked[-1]['seq']}: "
            f"{revoked[-1].get('reason')}); {how_to}",
        )  # fmt: skip
    return Approval(
        True, "site",
        f"{head}: approved for this site by {entry.by} on {entry.time} (audit seq "
        f"{entry.audit_seq}): {entry.reason}",
    )  # fmt: skip


def _agrees(entry: SiteEntry, audited: dict[str, Any]) -> bool:
    return all(
        audited.get(key) == getattr(entry, key)
        for key in ("sha256", "file", "reason", "by", "time")
    ) and (audited.get("seq"), audited.get("hash")) == (entry.audit_seq, entry.audit_hash)


def _default_by() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError) as err:
        message = "--by: no user name to record as the approver; give --by NAME"
        raise ConfigError([message]) from err


def _write_site_list(path: Path, entries: list[SiteEntry]) -> None:
    """Atomically: a crash leaves the old list or the new one, never half of one."""
    header = (
        "# Models approved for this site by `edge models approve`. Each entry must match its\n"
        "# model_approved entry in the audit log beside this file: an entry added or changed\n"
        "# by hand is refused by the start-up gate.\n"
    )
    body = yaml.safe_dump(
        {"approved": [e.model_dump() for e in entries]}, sort_keys=False, allow_unicode=True
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(header + body)
            f.flush()
            os.fsync(f.fileno())
        Path(tmp).replace(path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError([f"{path}: cannot write the site model list ({err.strerror})"]) from err


def approve_model(model: Path, reason: str, audit_log: Path, by: str | None = None) -> SiteEntry:
    """Record a DPO's approval of ``model`` by its sha256: audit entry first, then the site list
    (a crash in between leaves an approval the gate refuses, never one it accepts unaudited)."""
    if not reason.strip():
        raise ConfigError(["--reason: say why this model is approved (it goes to the audit log)"])
    who = (by if by is not None else _default_by()).strip()
    if not who:
        raise ConfigError(["--by: empty; name who approves"])
    if not model.is_file():
        raise ModelError(f"{model}: model file not found")
    digest = sha256_file(model)
    current = _read_site_list(site_list_path(audit_log)).approved
    fields: dict[str, JsonValue] = {
        "sha256": digest, "file": model.name, "reason": reason.strip(), "by": who,
    }  # fmt: skip
    with AuditLog(audit_log) as audit:
        stored = audit.append(APPROVED_EVENT, **fields)
    entry = SiteEntry.model_validate(
        {**fields, "time": stored["time"], "audit_seq": stored["seq"], "audit_hash": stored["hash"]}
    )
    _write_site_list(
        site_list_path(audit_log), [e for e in current if e.sha256 != digest] + [entry]
    )
    return entry


def revoke_model(model: Path, reason: str, audit_log: Path, by: str | None = None) -> str:
    """Withdraw a site approval (audited); returns the revoked sha256."""
    if not reason.strip():
        raise ConfigError(["--reason: say why this model is revoked (it goes to the audit log)"])
    who = (by if by is not None else _default_by()).strip()
    digest = sha256_file(model)
    path = site_list_path(audit_log)
    current = _read_site_list(path).approved
    if all(e.sha256 != digest for e in current):
        raise ConfigError([f"{path}: {model.name} sha256 {digest} is not approved for this site"])
    with AuditLog(audit_log) as audit:
        audit.append(REVOKED_EVENT, sha256=digest, file=model.name, reason=reason.strip(), by=who)
    _write_site_list(path, [e for e in current if e.sha256 != digest])
    return digest
