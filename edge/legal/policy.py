"""Policies: what a deployment may count and publish, as data a DPO can read and hash.

A policy is a YAML file validated by ``Policy`` (unknown keys are errors). Its sha256 is taken
over a canonical JSON form, so reformatting the YAML or reordering keys does not change it while
any change of meaning does. The sha256 travels in every published report and in the audit log,
so anyone can tell which policy produced a figure; the configuration pins it.

A policy may be stricter than the shipped ones, never weaker: ``FLOOR`` is built into the code
(the declaration the default policy requires, the longest validity, retention caps, the window
chain and its minimum, the smallest group a zone figure may show, the geometry limits) and a
policy below it does not load. An operator controls the policy file; they do not control this.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.analytics.detections import Category
from edge.errors import ConfigError, validation_lines
from edge.schema import PolicyName
from edge.yaml_io import number_problems, read_yaml

Output = Literal["line_counts", "zone_occupancy", "turning_movements"]
DeclarationField = Literal[
    "controller",
    "purpose",
    "legal_basis",
    "dpo_contact",
    "notice_url",
    "signage_reference",
    "retention_days",
    "camera_location",
]
DEFAULT_POLICY = Path("policies/cnil-statistics.yaml")
# Window lengths, each a multiple of the ones before it that divide it: two deployments (or
# two runs) with different windows never difference to less than the shorter window.
WINDOW_CHAIN = (60, 120, 300, 600, 900, 1800, 3600)


@dataclass(frozen=True)
class Floor:
    """What no policy can weaken. Lengths and areas are fractions of the frame's diagonal and
    area, so they mean the same at every resolution."""

    declaration: tuple[DeclarationField, ...] = get_args(DeclarationField)
    max_validity_days: int = 3 * 366  # a DPO reviews the policy at least every three years
    max_spool_days: int = 30  # unsent reports are not a second archive
    min_audit_days: int = 365  # a DPO can look back a year
    min_window_seconds: int = WINDOW_CHAIN[0]
    zone_min_objects: int = 3  # a zone figure never shows one or two objects
    min_line_length: float = 0.05
    min_zone_area: float = 0.01
    min_separation: float = 0.01  # between lines and zones: no near-coincident pairs
    max_lines: int = 16  # per camera: enough for a junction, too few to draw paths
    max_zones: int = 8


FLOOR = Floor()


class SmallCounts(BaseModel):
    """``suppress``: a count of 1 to k-1 is published as 0, so that a quiet window cannot single
    out one passer-by; ``none``: counts are published as they are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: Literal["none", "suppress"] = "none"
    k: int = Field(default=3, ge=2, le=100)

    def apply(self, count: int) -> int:
        return 0 if self.rule == "suppress" and 0 < count < self.k else count

    def allows(self, count: int) -> bool:
        return self.apply(count) == count


class Disclosure(BaseModel):
    """What published figures may reveal, beyond small counts; defaults are the floor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone_min_objects: int = Field(
        default=FLOOR.zone_min_objects,
        description="A zone sample with fewer objects of a category than this counts as 0.",
    )
    min_line_length: float = Field(default=FLOOR.min_line_length, gt=0, le=1)
    min_zone_area: float = Field(default=FLOOR.min_zone_area, gt=0, le=1)
    min_separation: float = Field(default=FLOOR.min_separation, gt=0, le=1)
    max_lines: int = Field(default=FLOOR.max_lines, ge=0)
    max_zones: int = Field(default=FLOOR.max_zones, ge=0)

    def below_floor(self) -> list[str]:
        f = FLOOR
        return [
            problem
            for problem, weaker in (
                (f"zone_min_objects below {f.zone_min_objects}",
                 self.zone_min_objects < f.zone_min_objects),
                (f"min_line_length below {f.min_line_length}",
                 self.min_line_length < f.min_line_length),
                (f"min_zone_area below {f.min_zone_area}", self.min_zone_area < f.min_zone_area),
                (f"min_separation below {f.min_separation}",
                 self.min_separation < f.min_separation),
                (f"max_lines above {f.max_lines}", self.max_lines > f.max_lines),
                (f"max_zones above {f.max_zones}", self.max_zones > f.max_zones),
            )
            if weaker
        ]  # fmt: skip


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spool_days: int = Field(ge=0, le=3650, description="Unsent reports kept at most this long.")
    audit_days: int = Field(ge=1, le=3650, description="Audit log kept this long.")


ADDED_FIELDS = frozenset({"setup_view"})  # see Policy.canonical


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: PolicyName
    version: int = Field(ge=1)
    description: str
    purpose: Literal["statistics"]
    allowed_categories: list[Category] = Field(min_length=1)
    allowed_outputs: list[Output] = Field(min_length=1)
    min_window_seconds: int = Field(ge=60, le=86400)
    small_counts: SmallCounts = Field(default_factory=SmallCounts)
    disclosure: Disclosure = Field(default_factory=Disclosure)
    retention: Retention
    valid_from: dt.date
    valid_until: dt.date
    required_declaration: list[DeclarationField]
    references: list[str] = Field(default_factory=list)
    setup_view: bool = Field(
        default=True,
        description="'edge setup' may show the installer the scene's background (at most 1/8 "
        "of the source's resolution and 320 pixels wide, never stored) and live boxes.",
    )

    @model_validator(mode="after")
    def _dates(self) -> Policy:
        if self.valid_until < self.valid_from:
            raise ValueError(
                f"valid_until {self.valid_until} is before valid_from {self.valid_from}"
            )
        return self

    @model_validator(mode="after")
    def _at_least_the_floor(self) -> Policy:
        f = FLOOR
        span = (self.valid_until - self.valid_from).days
        missing = [d for d in f.declaration if d not in self.required_declaration]
        problems = [f"disclosure.{p}" for p in self.disclosure.below_floor()] + [
            problem
            for problem, weaker in (
                (f"required_declaration lacks {missing}", bool(missing)),
                (f"valid for {span} days, more than {f.max_validity_days}",
                 span > f.max_validity_days),
                (f"min_window_seconds {self.min_window_seconds} is not one of {WINDOW_CHAIN}",
                 self.min_window_seconds not in WINDOW_CHAIN),
                (f"retention.spool_days above {f.max_spool_days}",
                 self.retention.spool_days > f.max_spool_days),
                (f"retention.audit_days below {f.min_audit_days}",
                 self.retention.audit_days < f.min_audit_days),
                # One object's movement is its route from one line to another: never shown alone.
                ("turning_movements without small_counts.rule 'suppress'",
                 "turning_movements" in self.allowed_outputs
                 and self.small_counts.rule != "suppress"),
            )
            if weaker
        ]  # fmt: skip
        if problems:
            raise ValueError("weaker than the floor built into the code: " + "; ".join(problems))
        return self

    @property
    def windows(self) -> tuple[int, ...]:
        """The window lengths this policy allows: the chain's multiples of its minimum."""
        return tuple(w for w in WINDOW_CHAIN if w % self.min_window_seconds == 0)

    @property
    def canonical(self) -> str:
        """The policy's meaning as one JSON text: what its sha256 is taken over. A field added
        since (``ADDED_FIELDS``) counts only when the file gives it, so the pins of the
        policies written before it stay valid."""
        unset = {name for name in ADDED_FIELDS if name not in self.model_fields_set}
        return json.dumps(
            self.model_dump(mode="json", exclude=unset),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical.encode("utf-8")).hexdigest()

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; ``ConfigError`` names the file and every problem."""
    data: Any = read_yaml(path, "policy")
    problems = number_problems(Policy, data)
    if problems:
        raise ConfigError([f"{path}: {line}" for line in problems])
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise ConfigError(validation_lines(err, prefix=f"{path}: ")) from err
