"""Where admitted reports go. Each is a ``Sink`` handed to the egress gate and to nothing else,
so no report reaches one without passing the gate (``edge.legal.gate.EgressGate``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Protocol, TextIO

from edge.errors import PublishError
from edge.schema import PublishedReport


class Sink(Protocol):
    """Where admitted reports go (stdout, a JSON Lines file, MQTT); reached only via the gate."""

    def send(self, report: PublishedReport) -> None: ...


class CollectSink:
    """Keeps admitted reports in memory, for ``edge count``'s summary."""

    def __init__(self) -> None:
        self.reports: list[PublishedReport] = []

    def send(self, report: PublishedReport) -> None:
        self.reports.append(report)


class JsonlSink:
    """Appends one JSON line per report to a file, flushed at once."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as err:
            raise PublishError(f"{path}: cannot open the JSON Lines sink ({err.strerror})") from err

    def send(self, report: PublishedReport) -> None:
        self._file.write(report.model_dump_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class StdoutSink:
    """One JSON line per report on standard output."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def send(self, report: PublishedReport) -> None:
        print(report.model_dump_json(), file=self._stream, flush=True)
