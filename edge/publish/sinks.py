"""Where admitted reports go. Each is a ``Sink`` handed to the egress gate and to nothing else,
so no report reaches one without passing the gate (``edge.legal.gate.EgressGate``).

``edge run`` puts each sink behind a ``GuardedSink``: a sink that fails (a full disk under the
JSON Lines file or the spool) keeps its reports in a bounded memory queue and retries, audited
once per outage, while the other sinks go on receiving theirs.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from pathlib import Path
from typing import Protocol, TextIO, runtime_checkable

from edge.errors import PublishError
from edge.legal.audit import AuditLog, JsonValue
from edge.schema import PublishedReport, Status

log = logging.getLogger(__name__)
MAX_HELD = 10_000  # reports a failing sink keeps in memory; beyond, the oldest are dropped
RETRY_S = 5.0


class Sink(Protocol):
    """Where admitted reports go (stdout, a JSON Lines file, MQTT); reached only via the gate."""

    def send(self, report: PublishedReport) -> None: ...


@runtime_checkable
class StatusSink(Protocol):
    """A sink that also says whether each camera is online (the MQTT publisher)."""

    def set_camera_status(self, camera: str, status: Status) -> None: ...


class CollectSink:
    """Keeps admitted reports in memory, for ``edge count``'s summary."""

    def __init__(self) -> None:
        self.reports: list[PublishedReport] = []

    def send(self, report: PublishedReport) -> None:
        self.reports.append(report)


class JsonlSink:
    """Appends one JSON line per report to a file, written at once. A write that fails (a full
    disk) is cut off again, so a retry never leaves half a line or a line twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab", buffering=0)
        except OSError as err:
            raise PublishError(f"{path}: cannot open the JSON Lines sink ({err.strerror})") from err

    def send(self, report: PublishedReport) -> None:
        line = (report.model_dump_json() + "\n").encode()
        fd = self._file.fileno()
        size = os.fstat(fd).st_size
        try:
            written = self._file.write(line)
        except OSError as err:
            written, reason = None, err.strerror or str(err)
        else:
            reason = "short write"
        if written != len(line):
            try:
                os.ftruncate(fd, size)
            except OSError as err:
                log.warning("%s: cannot cut a torn line (%s)", self.path, err)
            raise PublishError(f"{self.path}: report not written ({reason})")

    def close(self) -> None:
        self._file.close()


class StdoutSink:
    """One JSON line per report on standard output."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    def send(self, report: PublishedReport) -> None:
        print(report.model_dump_json(), file=self._stream, flush=True)


class GuardedSink:
    """A sink that never raises: a report it cannot take waits in a bounded queue, retried in
    order every ``retry_s`` and before the next report. The first failure of an outage is
    audited (``sink_failed``), its end too (``sink_recovered``, with how many waited), and a
    report dropped past ``max_held`` or left at stop is audited (``sink_dropped``)."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        audit: AuditLog | None = None,
        max_held: int = MAX_HELD,
        retry_s: float = RETRY_S,
    ) -> None:
        self.name = name
        self.sink = sink
        self.failures = 0  # failed sends since start
        self.dropped = 0
        self._audit = audit
        self._held: deque[PublishedReport] = deque()
        self._max_held = max_held
        self._retry_s = retry_s
        self._error = ""  # why the current outage started; "" when the sink works
        self._waited = 0  # reports held during the current outage
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"sink-{name}", daemon=True)

    @property
    def error(self) -> str:
        """Why this sink is not taking reports, and how many wait; "" when it is."""
        error, held = self._error, len(self._held)
        return f"{self.name}: {error}; {held} reports held" if error else ""

    def start(self) -> GuardedSink:
        self._thread.start()
        return self

    def send(self, report: PublishedReport) -> None:
        with self._lock:
            if len(self._held) >= self._max_held:
                self._drop(self._held.popleft(), f"more than {self._max_held} reports held")
            self._held.append(report)
            self._deliver()

    def retry(self) -> None:
        """Try the held reports now (the retry thread does this every ``retry_s``)."""
        with self._lock:
            self._deliver()

    def close(self) -> None:
        """Stop retrying; one last try, then what is still held is audited as dropped."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._retry_s + 1.0)
        with self._lock:
            self._deliver()
            while self._held:
                self._drop(self._held.popleft(), "still held at stop")

    def _loop(self) -> None:
        while not self._stop.wait(self._retry_s):
            if self._held:
                self.retry()

    def _deliver(self) -> None:
        """Send held reports in order until one fails; called with ``_lock`` held."""
        while self._held:
            try:
                self.sink.send(self._held[0])
            except Exception as err:  # any failure: the report waits, the others go on
                self.failures += 1
                reason = " ".join(f"{type(err).__name__}: {err}".split())
                if not self._error:
                    self._error = reason
                    log.error("sink %s failing (%s); holding reports, retrying", self.name, reason)
                    self._record("sink_failed", reason=reason)
                return
            self._held.popleft()
            if self._error:
                self._waited += 1
        if self._error:
            log.info("sink %s works again; %d held reports sent", self.name, self._waited)
            self._record("sink_recovered", delivered_late=self._waited)
            self._error, self._waited = "", 0

    def _drop(self, report: PublishedReport, reason: str) -> None:
        self.dropped += 1
        log.error("sink %s: report %s dropped (%s)", self.name, report.report_id, reason)
        self._record("sink_dropped", report_id=report.report_id, reason=reason)

    def _record(self, event: str, **fields: JsonValue) -> None:
        """Audit, best effort: the audit log may sit on the very disk that is full."""
        if self._audit is None:
            return
        try:
            self._audit.append(event, sink=self.name, **fields)
        except Exception as err:
            log.error("sink %s: %s not audited (%s)", self.name, event, err)
