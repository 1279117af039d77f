"""The collector: one persistent MQTT session, every message validated, then stored.

Subscriptions (``P`` = ``mqtt.topic_prefix``, ``S`` = each of ``dashboard.sites``, ``+`` for
every site): ``P/S/+/counts``, ``P/S/+/status``, ``P/S/status``, ``P/S/stats``, ``P/S/notice``,
``P/S/audit`` (``edge.schema.Topics.filters``; topics and payloads are those of ``edge.schema``).
Every distinct audit-log head is kept: anchors off the box for ``edge audit verify``.
The session is persistent (``clean_session`` off, QoS 1), so the broker keeps reports while the
dashboard is down, and a message is acknowledged only once it is committed to the database:
a crash between the two means a redelivery, which the report id and digest make harmless.

Nothing a message holds can stop collection. paho's network thread only queues messages; a
worker thread checks each (size and bracket depth before parsing, then the wire schema, then
the ranges the database holds), stores them in batches (one transaction per site for the
reports of a batch) and acknowledges them after the commit. A message that is not what its
topic promises, or that the database refuses (``DataError``, ``IntegrityError``), is
acknowledged and counted under its reason (field path and error type, never the content), so
it is never delivered again. A database that cannot be reached (any other database error) is
retried with backoff, unacknowledged, while ``/healthz`` says storing is failing. An
unexpected exception is caught, logged once per kind with its traceback, and counted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import logging
import queue
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError

from edge.config import DashboardConfig, MqttConfig
from edge.dashboard.store import Store, StoreError
from edge.errors import PublishError
from edge.publish.mqtt import authenticate
from edge.schema import (
    CATEGORY_NAMES,
    DIRECTIONS,
    STATUSES,
    AuditHeadMessage,
    CameraStats,
    NoticeMessage,
    ParsedTopic,
    PublishedReport,
    StatsMessage,
    TopicKind,
    Topics,
    ZoneFigures,
    parse_report,
    parse_topic,
)

log = logging.getLogger(__name__)

MAX_PAYLOAD = 256 * 1024  # a report is a few kB; anything larger is not one of ours
MAX_DEPTH = 16  # a report nests 4 deep; json.loads recurses once per level
MAX_BATCH = 500  # messages stored (and acknowledged) together
# Bytes received and not yet stored. QoS 1 is bounded by the broker's in-flight window (200
# messages in the shipped mosquitto.conf); QoS 0 (stats) is dropped past a smaller bound.
QUEUE_BYTES = 256 * 1024 * 1024
QOS0_QUEUE_BYTES = 32 * 1024 * 1024
MAX_LOGGED_KINDS = 256  # distinct reasons and error kinds logged in full, then only counted
RETRY_MIN_S, RETRY_MAX_S = 0.5, 30.0

# Names a reason may repeat: the schema's own field and enum names. Any other part of a field
# path (a line, zone or camera name, an unknown field) is payload content and shown as "*".
_KNOWN_NAMES = frozenset(
    itertools.chain(
        *(m.model_fields for m in (PublishedReport, StatsMessage, CameraStats, NoticeMessage,
                                   AuditHeadMessage, ZoneFigures)),
        DIRECTIONS, CATEGORY_NAMES, ("[key]",),
    )
)  # fmt: skip
_ESCAPES = re.compile(rb"\\.", re.DOTALL)
_STRINGS = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


@dataclass
class IngestCounters:
    """Since start-up; the database keeps the rejections across restarts."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    too_old: int = 0
    rejected: int = 0  # acknowledged and not stored, by reason in /api/rejections
    refused_by_database: int = 0  # of those, refused by the database itself
    store_errors: int = 0  # failed attempts to reach the database (retried)
    errors: int = 0  # unexpected exceptions caught, logged once per kind
    dropped: int = 0  # the queue was full: QoS 1 comes again at the next connection
    storing: Literal["ok", "failing", "stopped"] = "ok"
    last_error: str | None = None
    connected: bool = False
    last_message_at: float | None = None
    batches: int = 0


class Rejected(Exception):
    """A message refused, with a reason safe to log and count."""


class _Stopping(Exception):
    """The collector stops while the database is failing: leave the batch unacknowledged."""


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    generation: int = 0  # the connection it came on: a packet id means nothing on another


@dataclass
class _Checked:
    """A message that passed every check, ready to store."""

    topic: ParsedTopic
    value: Any


@dataclass
class _Bounded:
    """Seen keys, at most ``limit`` of them: what was already logged."""

    limit: int
    seen: set[str] = field(default_factory=set)

    def first(self, key: str) -> bool:
        if key in self.seen or len(self.seen) >= self.limit:
            return False
        self.seen.add(key)
        return True


def too_deep(payload: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether JSON brackets nest deeper than ``limit``, outside strings; in linear time and
    before any parsing (``json.loads`` recurses once per level)."""
    marks = _ESCAPES.sub(b"", payload)  # escaped quotes and backslashes never delimit a string
    if marks.count(b"[") + marks.count(b"{") <= limit:
        return False
    brackets = _STRINGS.sub(b"", marks).translate(None, _NOT_BRACKETS)
    steps = (1 if b in b"[{" else -1 for b in brackets)
    return any(depth > limit for depth in itertools.accumulate(steps))


def describe(err: ValidationError) -> str:
    """Why a payload was refused, by field path and error type, names of the schema only."""
    parts = []
    for e in err.errors(include_url=False, include_input=False)[:5]:
        path = ".".join(p if isinstance(p, str) and p in _KNOWN_NAMES else "*" for p in e["loc"])
        parts.append(f"{(path or 'start/end')[:80]} ({e['type']})")
    more = f" and {err.error_count() - 5} more" if err.error_count() > 5 else ""
    return "not a well-formed report: " + "; ".join(parts) + more


def _model(kind: str, model: type[BaseModel], payload: bytes) -> Any:
    return _parsed(kind, model.model_validate, payload)


def _report(payload: bytes) -> PublishedReport:
    """A count report of any published version (1, or 2 with turning movements)."""
    report: PublishedReport = _parsed("counts", parse_report, payload)
    return report


def _parsed(kind: str, parse: Callable[[Any], Any], payload: bytes) -> Any:
    if too_deep(payload):
        raise Rejected(f"{kind}: nested deeper than {MAX_DEPTH}")
    try:
        data = json.loads(payload.decode("utf-8"))  # json.loads(bytes) would take UTF-16 too
    except (ValueError, RecursionError):  # not UTF-8 or JSON, an integer of 4,300+ digits
        raise Rejected(f"{kind}: not JSON") from None
    try:
        return parse(data)
    except ValidationError as err:
        raise Rejected(f"{kind}: {describe(err)}") from None


def _transient(err: BaseException) -> bool:
    """A database that cannot be reached now (retry), unlike one that refuses this message."""
    cause = err.__cause__ if isinstance(err, StoreError) else err
    if isinstance(cause, (DataError, IntegrityError)):
        return False
    return isinstance(cause, DBAPIError) or (
        isinstance(cause, SQLAlchemyError) and getattr(cause, "orig", None) is None
    )


def _error_name(err: BaseException) -> str:
    cause = err.__cause__ if isinstance(err, StoreError) and err.__cause__ else err
    return type(getattr(cause, "orig", None) or cause).__name__


class Collector:
    """Subscribes, validates and stores; paho's network thread queues, a worker stores."""

    def __init__(self, mqtt: MqttConfig, config: DashboardConfig, store: Store) -> None:
        self.mqtt = mqtt
        self.config = config
        self.store = store
        self.counters = IngestCounters()
        self._lock = threading.Lock()  # one batch at a time into the store
        self._connection = threading.Lock()  # the generation and acknowledgements
        self._generation = 0
        self._queue: queue.Queue[_Message] = queue.Queue()  # bounded in bytes, by _queued
        self._queued = 0  # bytes in the queue
        self._queued_lock = threading.Lock()
        self._stop = threading.Event()
        self._logged = _Bounded(MAX_LOGGED_KINDS)
        self._worker: threading.Thread | None = None
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            clean_session=False,
            manual_ack=True,
        )
        authenticate(client, self.mqtt)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def subscriptions(self) -> list[tuple[str, int]]:
        prefix = self.mqtt.topic_prefix
        return [(f, 1) for site in self.config.sites for f in Topics(prefix, site).filters()]

    def start(self) -> None:
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="collector", daemon=True)
        self._worker.start()
        try:
            self._client.connect_async(self.mqtt.host, self.mqtt.port, self.mqtt.keepalive_s)
        except (OSError, ValueError) as err:
            raise PublishError(
                f"mqtt: cannot connect to {self.mqtt.host}:{self.mqtt.port} ({err})"
            ) from err
        self._client.loop_start()

    def stop(self) -> None:
        """The batch being stored is finished and acknowledged (unless the database is failing),
        then the session closes: what is queued and not stored is delivered again next time."""
        self._stop.set()
        if self._worker is not None:
            self._worker.join(60)
        self._client.disconnect()
        self._client.loop_stop()
        self.counters.storing = "stopped"

    # -- paho callbacks (network thread): never raise, paho would end its loop -------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        try:
            with self._connection:
                self._generation += 1
            if reason.is_failure:
                log.error("mqtt: broker %s:%s refused the connection: %s", self.mqtt.host,
                          self.mqtt.port, reason)  # fmt: skip
                return
            self.counters.connected = True
            client.subscribe(self.subscriptions())
            log.info("mqtt: connected to %s:%s", self.mqtt.host, self.mqtt.port)
        except Exception as err:
            self._unexpected("on_connect", err)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        try:
            with self._connection:
                self._generation += 1
            self.counters.connected = False
            if reason.is_failure:
                log.warning("mqtt: disconnected (%s); reconnecting", reason)
        except Exception as err:
            self._unexpected("on_disconnect", err)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                topic = ""  # refused as outside the prefix, and acknowledged
            payload = bytes(message.payload)
            with self._queued_lock:
                limit = QUEUE_BYTES if message.qos else QOS0_QUEUE_BYTES
                if self._queued + len(payload) > limit:
                    # QoS 1 left unacknowledged: the broker sends it again at the next connection.
                    self.counters.dropped += 1
                    self._log_once("queue full", "collector: queue full, dropping until it drains")
                    return
                self._queued += len(payload)
                item = _Message(topic, payload, message.mid, message.qos, self._generation)
            self._queue.put_nowait(item)
        except Exception as err:
            self._unexpected("on_message", err)

    # -- the worker --------------------------------------------------------------------------------

    def _work(self) -> None:
        """Batches from the queue until stopped; survives anything, and if it ends anyway
        (``BaseException``) health says storing stopped."""
        try:
            while not self._stop.is_set():
                try:
                    batch = self._next_batch()
                    if not batch:
                        continue
                    with self._lock:
                        self._store_batch(batch)
                    self._ack(batch)
                except _Stopping:
                    return
                except Exception as err:  # a bug: the batch stays unacknowledged, comes again
                    self._unexpected("worker", err)
                    self._stop.wait(RETRY_MIN_S)
        finally:
            if not self._stop.is_set():
                self.counters.storing = "stopped"

    def _next_batch(self) -> list[_Message]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        with self._queued_lock:
            self._queued -= sum(len(m.payload) for m in batch)
        return batch

    def _ack(self, batch: list[_Message]) -> None:
        with self._connection:
            for message in batch:
                if message.qos > 0 and message.generation == self._generation:
                    self._client.ack(message.mid, message.qos)

    def handle(self, topic: str, payload: bytes) -> None:
        """Validate and store one message now; a refused one is counted, never raised."""
        with self._lock, contextlib.suppress(_Stopping):
            self._store_batch([_Message(topic, payload)])

    def _store_batch(self, batch: list[_Message]) -> None:
        """Check every message, store the good ones; raises only ``_Stopping``."""
        now = time.time()
        self.counters.batches += 1
        reports: dict[str, list[PublishedReport]] = defaultdict(list)
        others: list[_Checked] = []
        for message in batch:
            self.counters.received += 1
            self.counters.last_message_at = now
            try:
                checked = self._check(message)
            except Rejected as why:
                self._reject(str(why), now)
                continue
            except Exception as err:  # a check that should have refused it cleanly
                self._unexpected("check", err)
                self._reject(f"cannot be read ({type(err).__name__})", now)
                continue
            if checked.topic.kind == "counts":
                reports[checked.topic.site].append(checked.value)
            else:
                others.append(checked)
        for site, group in reports.items():
            if len(group) == 1:
                self._attempt(partial(self._add, site, group, now), "counts")
            elif not self._attempt(partial(self._add, site, group, now)):
                for report in group:  # find the one the database refuses, keep the others
                    self._attempt(partial(self._add, site, [report], now), "counts")
        for checked in others:
            self._attempt(partial(self._apply, checked, now), checked.topic.kind)

    def _attempt(self, action: Callable[[], None], kind: TopicKind | None = None) -> bool:
        """Run a database write; retry while the database is unreachable. A refusal is
        recorded as a rejection under ``kind`` (if given) and returns False."""
        delay = RETRY_MIN_S
        while True:
            try:
                action()
            except Exception as err:
                if not _transient(err):
                    if kind is not None:
                        self.counters.refused_by_database += 1
                        self._unexpected("database refused", err, quiet=True)
                        self._reject(f"{kind}: refused by the database ({_error_name(err)})",
                                     time.time())  # fmt: skip
                    return False
                self.counters.store_errors += 1
                self.counters.storing = "failing"
                self.counters.last_error = f"{_error_name(err)}: cannot store"
                self._log_once(f"store {_error_name(err)}", f"{err}; retrying", logging.ERROR)
                if self._stop.wait(delay):
                    raise _Stopping from None
                delay = min(delay * 2, RETRY_MAX_S)
            else:
                self.counters.storing = "ok"
                return True

    def _add(self, site: str, reports: list[PublishedReport], now: float) -> None:
        added = self.store.add_reports(site, reports, now)
        self.counters.stored += added.stored
        self.counters.duplicates += added.duplicates
        self.counters.too_old += added.too_old
        for _ in range(added.too_old):
            self._reject("counts: window older than the raw retention", now)

    def _apply(self, checked: _Checked, now: float) -> None:
        site, camera, kind = checked.topic
        if kind == "status":
            self.store.set_status(site, camera, checked.value, now)
        elif kind == "stats":
            self.store.set_stats(site, checked.value, now)
        elif kind == "audit":
            self.store.add_audit_head(site, checked.value, now)
        else:
            self.store.set_notice(site, checked.value, now)

    def _check(self, message: _Message) -> _Checked:
        """The message as its topic promises it, in ranges the database holds, else Rejected."""
        payload = message.payload
        if len(payload) > MAX_PAYLOAD:
            raise Rejected(f"payload over {MAX_PAYLOAD} bytes")
        try:
            topic = parse_topic(message.topic, self.mqtt.topic_prefix)
        except ValueError as why:
            raise Rejected(str(why)) from None
        site, camera, kind = topic
        if kind == "counts":
            report = _report(payload)
            if report.camera != camera:
                raise Rejected("counts: camera differs from the topic's")
            if report.observed_s > report.end - report.start + 1:
                raise Rejected("counts: observed_s longer than the window")
            return _Checked(topic, report)
        if kind == "status":
            # A retained status was set before we subscribed: its time is unknown, so it counts
            # from now; a repeat of the current status is not a change.
            text = payload.decode("utf-8", "replace").strip()
            if text not in STATUSES:
                raise Rejected("status: neither 'online' nor 'offline'")
            return _Checked(topic, text == "online")
        if kind == "stats":
            return _Checked(topic, _model("stats", StatsMessage, payload))
        if kind == "audit":
            head: AuditHeadMessage = _model("audit", AuditHeadMessage, payload)
            if head.site != site:
                raise Rejected("audit: site differs from the topic's")
            try:
                dt.datetime.fromisoformat(head.time.replace("Z", "+00:00"))
            except ValueError:
                raise Rejected("audit: time is not a date") from None
            return _Checked(topic, head)
        return _Checked(topic, _model("notice", NoticeMessage, payload))

    # -- counting and logging --------------------------------------------------------------------

    def _reject(self, reason: str, now: float) -> None:
        """Count a refused message and keep its reason; a failing database only loses the
        reason's row, never the acknowledgement."""
        self._log_once(f"reject {reason}", f"refused a message: {reason}")
        try:
            self.store.reject(reason, now)
        except Exception as err:
            self._unexpected("recording a rejection", err, quiet=True)
        self.counters.rejected += 1  # after the row: a reader of both sees them agree

    def _unexpected(self, where: str, err: BaseException, quiet: bool = False) -> None:
        """Count an exception; log it (with its traceback unless ``quiet``) once per kind."""
        self.counters.errors += 0 if quiet else 1
        self.counters.last_error = f"{where}: {_error_name(err)}"
        key = f"{where} {_error_name(err)}"
        if self._logged.first(key):
            log.error("collector: %s: %s (logged once, then counted)", where, _error_name(err),
                      exc_info=None if quiet else err)  # fmt: skip

    def _log_once(self, key: str, message: str, level: int = logging.WARNING) -> None:
        if self._logged.first(key):
            log.log(level, "%s (logged once, then counted)", message)
        else:
            log.debug("%s", message)
