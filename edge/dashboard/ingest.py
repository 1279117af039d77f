"""The collector: one persistent MQTT session, every message validated, then stored.

Subscriptions (``P`` = ``mqtt.topic_prefix``, ``S`` = each of ``dashboard.sites``, ``+`` for
every site): ``P/S/+/counts``, ``P/S/+/status``, ``P/S/status``, ``P/S/stats``, ``P/S/notice``,
``P/S/audit`` (``edge.schema.Topics.filters``; topics and payloads are those of ``edge.schema``).
Every distinct audit-log head is kept: anchors off the box for ``edge audit verify``.
The session is persistent (``clean_session`` off, QoS 1), so the broker keeps reports while the
dashboard is down, and a message is acknowledged only once it is committed to the database:
a crash between the two means a redelivery, which the report id and digest make harmless.
A message that is not what its topic promises is logged, counted under its reason (field path
and error type, never the content) and acknowledged, so it is never delivered again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, ValidationError

from edge.config import DashboardConfig, MqttConfig
from edge.dashboard.store import Store, StoreError
from edge.errors import PublishError
from edge.publish.mqtt import authenticate
from edge.schema import (
    STATUSES,
    AuditHeadMessage,
    NoticeMessage,
    ParsedTopic,
    PublishedReport,
    StatsMessage,
    Topics,
    describe_invalid,
    parse_topic,
)

log = logging.getLogger(__name__)

MAX_PAYLOAD = 256 * 1024  # a report is a few kB; anything larger is not one of ours


@dataclass
class IngestCounters:
    """Since start-up; the database keeps the rejections across restarts."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    too_old: int = 0
    rejected: int = 0
    store_errors: int = 0
    connected: bool = False
    last_message_at: float | None = None


class Rejected(Exception):
    """A message refused, with a reason safe to log and count."""


def _topic(topic: str, prefix: str) -> ParsedTopic:
    try:
        return parse_topic(topic, prefix)
    except ValueError as why:
        raise Rejected(str(why)) from None


def _model(kind: str, model: type[BaseModel], payload: bytes) -> Any:
    try:
        return model.model_validate(json.loads(payload))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected(f"{kind}: not JSON") from None
    except ValidationError as err:
        raise Rejected(f"{kind}: {describe_invalid(err)}") from None


class Collector:
    """Subscribes, validates and stores; runs paho's network thread."""

    def __init__(self, mqtt: MqttConfig, config: DashboardConfig, store: Store) -> None:
        self.mqtt = mqtt
        self.config = config
        self.store = store
        self.counters = IngestCounters()
        self._lock = threading.Lock()  # one message at a time into the store
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
        try:
            self._client.connect_async(self.mqtt.host, self.mqtt.port, self.mqtt.keepalive_s)
        except (OSError, ValueError) as err:
            raise PublishError(
                f"mqtt: cannot connect to {self.mqtt.host}:{self.mqtt.port} ({err})"
            ) from err
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("mqtt: broker %s:%s refused the connection: %s", self.mqtt.host,
                      self.mqtt.port, reason)  # fmt: skip
            return
        self.counters.connected = True
        client.subscribe(self.subscriptions())
        log.info("mqtt: connected to %s:%s", self.mqtt.host, self.mqtt.port)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        self.counters.connected = False
        if reason.is_failure:
            log.warning("mqtt: disconnected (%s); reconnecting", reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            self.handle(message.topic, bytes(message.payload))
        except StoreError as err:  # not acknowledged: the broker delivers it again
            self.counters.store_errors += 1
            log.error("%s", err)
            return
        if message.qos > 0:
            client.ack(message.mid, message.qos)

    def handle(self, topic: str, payload: bytes) -> None:
        """Validate and store one message; a refused one is counted, never raised."""
        now = time.time()
        with self._lock:
            self.counters.received += 1
            self.counters.last_message_at = now
            try:
                self._store(topic, payload, now)
            except Rejected as why:
                self.counters.rejected += 1
                log.warning("refused a message on %s: %s", topic, why)
                self.store.reject(str(why), now)

    def _store(self, topic: str, payload: bytes, now: float) -> None:
        if len(payload) > MAX_PAYLOAD:
            raise Rejected(f"payload over {MAX_PAYLOAD} bytes")
        site, camera, kind = _topic(topic, self.mqtt.topic_prefix)
        if kind == "counts":
            report: PublishedReport = _model("counts", PublishedReport, payload)
            if report.camera != camera:
                raise Rejected("counts: camera differs from the topic's")
            added = self.store.add_reports(site, [report], now)
            self.counters.stored += added.stored
            self.counters.duplicates += added.duplicates
            self.counters.too_old += added.too_old
            if added.too_old:
                raise Rejected("counts: window older than the raw retention")
        elif kind == "status":
            text = payload.decode("utf-8", "replace").strip()
            if text not in STATUSES:
                raise Rejected("status: neither 'online' nor 'offline'")
            # A retained status was set before we subscribed: its time is unknown, so it counts
            # from now; a repeat of the current status is not a change.
            self.store.set_status(site, camera, text == "online", now)
        elif kind == "stats":
            self.store.set_stats(site, _model("stats", StatsMessage, payload), now)
        elif kind == "audit":
            head: AuditHeadMessage = _model("audit", AuditHeadMessage, payload)
            if head.site != site:
                raise Rejected("audit: site differs from the topic's")
            self.store.add_audit_head(site, head, now)
        else:
            self.store.set_notice(site, _model("notice", NoticeMessage, payload), now)
