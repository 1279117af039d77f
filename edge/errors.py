"""The errors the package raises, one tree so callers can catch what they can handle.

    EdgeError            anything this package raises on purpose; the CLI prints it on one line
    ├── ConfigError      the configuration file or a setting is invalid
    ├── ModelError       the model file is missing, unreadable or not a YOLO detector
    ├── SourceError      a clip, image folder or stream cannot be opened or decoded
    ├── PolicyViolation  the legal gate refused a configuration or a payload
    └── PublishError     a sink could not deliver a report

Adapters around third-party libraries (onnxruntime, cv2, paho) convert their errors into these
at the boundary, so nothing above them needs to know which library failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError


class EdgeError(Exception):
    """Base of every error raised on purpose by this package."""

    @property
    def lines(self) -> list[str]:
        """One problem per line, as the command line prints them."""
        return str(self).splitlines()

    def __reduce__(self) -> tuple[Callable[[type[EdgeError], str], EdgeError], tuple[Any, ...]]:
        """Pickled as class and message, so errors cross process boundaries intact."""
        return _rebuild, (type(self), str(self))


class ConfigError(EdgeError):
    """The configuration is invalid; ``lines`` holds one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))


class ModelError(EdgeError):
    """The model file cannot be used."""


class SourceError(EdgeError):
    """A frame source cannot be opened or read."""


class PolicyViolation(EdgeError):
    """The legal gate refused something; ``lines`` holds one reason per refusal."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))


class DisclosureRefused(PolicyViolation):
    """A camera's geometry, checked against its frame's size at its first frame, would let
    published figures single out someone: the run stops before anything of it is published."""


class PublishError(EdgeError):
    """A sink could not deliver a report."""


def format_location(loc: tuple[int | str, ...]) -> str:
    """('cameras', 0, 'source') -> 'cameras[0].source'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def validation_lines(err: ValidationError, prefix: str = "") -> list[str]:
    lines = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if p not in ("function-after", "tagged-union"))
        message = e["msg"].removeprefix("Value error, ")
        lines.append(f"{prefix}{format_location(loc)}: {message}")
    return lines


def _rebuild(cls: type[EdgeError], message: str) -> EdgeError:
    error = Exception.__new__(cls)
    Exception.__init__(error, message)
    return error
