"""The model manifest: which model files we know, by sha256, with their licence and source."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.config import shipped
from edge.errors import ConfigError, validation_lines
from edge.schema import Sha256


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


def load_manifest(path: Path | None = None) -> Manifest:
    path = shipped(path or Path("models/manifest.yaml"))
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        return Manifest.model_validate(data)
    except OSError as err:
        raise ConfigError([f"{path}: cannot read the model manifest ({err.strerror})"]) from err
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: invalid YAML in the model manifest"]) from err
    except ValidationError as err:
        raise ConfigError(validation_lines(err, prefix=f"{path}: ")) from err


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
