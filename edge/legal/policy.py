"""Policies: what a deployment may count and publish, as data a DPO can read and hash.

A policy is a YAML file in ``policies/`` validated by ``Policy`` (unknown keys are errors). Its
sha256 is taken over a canonical JSON form, so reformatting the YAML or reordering keys does not
change it while any change of meaning does. The sha256 travels in every published report and
in the audit log, so anyone can tell which policy produced a figure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.analytics.detections import Category
from edge.errors import ConfigError, validation_lines
from edge.schema import PolicyName

Output = Literal["line_counts", "zone_occupancy"]
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


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spool_days: int = Field(ge=0, le=3650, description="Unsent reports kept at most this long.")
    audit_days: int = Field(ge=1, le=3650, description="Audit log kept this long.")


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
    retention: Retention
    valid_from: dt.date
    valid_until: dt.date
    required_declaration: list[DeclarationField]
    references: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _dates(self) -> Policy:
        if self.valid_until < self.valid_from:
            raise ValueError(
                f"valid_until {self.valid_until} is before valid_from {self.valid_from}"
            )
        return self

    @property
    def sha256(self) -> str:
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day <= self.valid_until


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file; ``ConfigError`` names the file and every problem."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the policy ({err.strerror or err})"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: invalid YAML in the policy"]) from err
    try:
        return Policy.model_validate(data)
    except ValidationError as err:
        raise ConfigError(validation_lines(err, prefix=f"{path}: ")) from err
