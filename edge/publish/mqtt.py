"""Publishing over MQTT: paho-mqtt 2.x behind our own durable spool.

Topics (``P`` = ``mqtt.topic_prefix``, ``S`` = ``mqtt.site``)::

    P/S/<camera>/counts   one PublishedReport per window, QoS 1, not retained
    P/S/<camera>/status   "online" / "offline", retained
    P/S/status            "online" / "offline", retained; "offline" is also the last will
    P/S/stats             StatsMessage every ``stats_interval_s``, QoS 0
    P/S/notice            NoticeMessage (public information notice, policy sha256), retained
    P/S/audit             AuditHeadMessage (the audit log's head, an anchor off the box),
                          retained, QoS 1; the latest is republished at every connect and stop

The connection is "up" only when the CONNACK reason code says success (a refused password is
an error in the log, not a connection). paho reconnects on its own with capped exponential
backoff. Reports go to the spool first and are deleted when the broker's PUBACK arrives, so a
broker outage or a process restart loses nothing: at-least-once, duplicates share a report id.
Only the closed message types of ``edge.schema`` can be published: the client is private.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import CameraConfig, MqttConfig
from edge.errors import PublishError
from edge.publish.spool import Spool
from edge.schema import (
    DIRECTIONS,
    AuditHeadMessage,
    NoticeMessage,
    PublishedReport,
    StatsMessage,
    Status,
    Topics,
)

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 20


def _json(message: Any) -> bytes:
    return json.dumps(message.model_dump(mode="json"), separators=(",", ":")).encode()


def authenticate(client: paho.Client, cfg: MqttConfig) -> None:
    """Username, password, TLS and reconnection back-off from ``cfg``, for any of our clients."""
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password else None
        client.username_pw_set(cfg.username, password)
    if cfg.tls is not None:
        try:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError, ValueError) as err:
            raise PublishError(f"mqtt.tls: cannot load the certificates ({err})") from err
    client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)


class MqttPublisher:
    """One broker connection for the whole process; a ``Sink`` for the egress gate.

    Each camera's last known status lives here, in one place under ``_lock`` (every camera is
    "offline" until the runner says otherwise): a change while disconnected is recorded, and
    every connect publishes exactly what is recorded, so a (re)connect never says more than
    the runner does.
    """

    DRAIN_BACKOFF_S = 0.5  # pause after a failed drain pass, so a lasting fault does not spin

    def __init__(
        self,
        config: MqttConfig,
        spool: Spool,
        cameras: Sequence[str],
        notice: NoticeMessage,
        discovery: Sequence[tuple[str, str]] = (),
    ) -> None:
        """``discovery``: (topic, JSON) Home Assistant configs to publish, retained, on connect."""
        self.config = config
        self.topics = Topics(config.topic_prefix, config.site)
        self.spool = spool
        self.cameras = list(cameras)
        self.notice = notice
        self.discovery = list(discovery)
        self.connected = False
        self.last_error = ""
        self.drain_errors = 0  # failed drain passes since start
        self._delivery_error = ""  # drain thread only; "" when its last pass succeeded
        # Guards _status, _session and `connected` going up, and is held while their messages
        # are handed to paho, so a change and a connect's republication cannot cross.
        self._lock = threading.Lock()
        self._status: dict[str, Status] = dict.fromkeys(self.cameras, "offline")
        self._audit_head: AuditHeadMessage | None = None  # the latest, for every (re)connect
        self._session = 0  # successful connects so far
        # (message, spool row, session it was sent in); drain thread only
        self._in_flight: list[tuple[paho.MQTTMessageInfo, int, int]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._client = self._make_client()
        self._drainer = threading.Thread(target=self._drain_loop, name="mqtt-drain", daemon=True)

    def _make_client(self) -> paho.Client:
        cfg = self.config
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or f"edge-{cfg.site}",
            clean_session=True,
        )
        client.will_set(self.topics.status, "offline", qos=1, retain=True)
        authenticate(client, cfg)
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        return client

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; reports spool until the broker answers."""
        try:
            self._client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        except (OSError, ValueError) as err:
            raise PublishError(
                f"mqtt: cannot connect to {self.config.host}:{self.config.port} ({err})"
            ) from err
        self._client.loop_start()
        self._drainer.start()

    def flush(self, timeout: float) -> bool:
        """Wait until every spooled report is acknowledged; False if ``timeout`` ran out."""
        deadline = threading.Event()
        timer = threading.Timer(timeout, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                if self.spool.depth == 0:
                    return True
                self._wake.set()
                deadline.wait(0.05)
            return self.spool.depth == 0
        finally:
            timer.cancel()

    def stop(self, timeout: float = 5.0) -> None:
        """Flush what the broker can take, say "offline" (retained), disconnect."""
        self.flush(timeout)
        infos: list[paho.MQTTMessageInfo | None] = []
        with self._lock:
            self._stopping.set()  # from here on nothing says "online"
            self._status = dict.fromkeys(self._status, "offline")
            if self.connected:
                infos = [
                    self._publish(self.topics.camera_status(c), b"offline", 1, True)
                    for c in self._status
                ]
                infos.append(self._publish(self.topics.status, b"offline", 1, True))
                if self._audit_head is not None:  # the stop entry's head, waited for
                    infos.append(self._publish_audit_head(self._audit_head))
        for info in infos:
            if info is not None:
                info.wait_for_publish(timeout)
        self._wake.set()
        self._client.disconnect()
        self._client.loop_stop()
        if self._drainer.is_alive():
            self._drainer.join(timeout)

    # -- what can be published ---------------------------------------------------------------------

    def send(self, report: PublishedReport) -> None:
        """``Sink``: spool the report (on disk before this returns), then send when connected."""
        self.spool.put(
            self.topics.counts(report.camera), _json(report), report.report_id, report.start
        )
        self._wake.set()

    def publish_stats(self, stats: StatsMessage) -> None:
        """Health figures, best effort (QoS 0): the next ones replace them anyway."""
        if self.connected:
            self._publish(self.topics.stats, _json(stats), 0, False)

    def publish_audit_head(self, head: AuditHeadMessage) -> None:
        """Record the audit log's head and publish it now if connected (retained, QoS 1): an
        anchor kept off the box, so a log cut or re-chained later fails verification. A head
        recorded while disconnected goes out at the next connect, and the last one at stop."""
        with self._lock:
            self._audit_head = head
            if self.connected:
                self._publish_audit_head(head)

    def _publish_audit_head(self, head: AuditHeadMessage) -> paho.MQTTMessageInfo | None:
        return self._publish(self.topics.audit, _json(head), 1, True)

    def set_camera_status(self, camera: str, status: Status) -> None:
        """Record ``status`` (reader threads call this); publish it now if connected, else the
        next connect does."""
        with self._lock:
            self._status[camera] = status
            if self.connected and not self._stopping.is_set():
                self._publish(self.topics.camera_status(camera), status.encode(), 1, True)

    # -- what can be read --------------------------------------------------------------------------

    @property
    def camera_status(self) -> dict[str, Status]:
        """Each camera's last known status: what the next connect publishes."""
        with self._lock:
            return dict(self._status)

    @property
    def delivery_error(self) -> str:
        """Why spooled reports are not going out: "" while drain passes succeed."""
        started = self._drainer.ident is not None
        if started and not self._drainer.is_alive() and not self._stopping.is_set():
            return "mqtt: the delivery thread has stopped"
        return self._delivery_error

    @property
    def drain_alive(self) -> bool:
        """The thread that sends spooled reports is running."""
        return self._drainer.is_alive()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self.connected = False
            where = f"{self.config.host}:{self.config.port}"
            message = f"mqtt: broker {where} refused the connection: {reason}"
            if message != self.last_error:
                log.error(message)
            self.last_error = message
            return
        self.last_error = ""
        log.info("mqtt: connected to %s:%s", self.config.host, self.config.port)
        site = b"offline" if self._stopping.is_set() else b"online"
        with self._lock:
            # paho would resend what the last connection left unacknowledged *after* what is
            # published here, so a stale status could overwrite the recorded one. Drop it all:
            # statuses are republished below and the drain thread resends reports from the spool.
            client.drop_out_messages()
            self._session += 1
            self.connected = True
            self._publish(self.topics.status, site, 1, True)
            for camera, status in self._status.items():
                self._publish(self.topics.camera_status(camera), status.encode(), 1, True)
            self._publish(self.topics.notice, _json(self.notice), 1, True)
            if self._audit_head is not None:
                self._publish_audit_head(self._audit_head)
            for topic, config in self.discovery:
                self._publish(topic, config.encode(), 1, True)
        self._wake.set()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        """No CONNACK at all: broker down, unreachable, or a TLS handshake refused."""
        where = f"{self.config.host}:{self.config.port}"
        message = f"mqtt: cannot connect to {where} (down, unreachable or TLS refused); retrying"
        if message != self.last_error:
            log.error(message)
        self.last_error = message

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        # Without _lock: paho may call this holding its message lock, which publish() takes
        # while a status change holds ours. Saying "down" late is harmless: what is sent
        # meanwhile is dropped at the next connect and republished from _status or the spool.
        self.connected = False
        if not self._stopping.is_set():
            log.warning("mqtt: disconnected (%s); reconnecting with backoff", reason)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any
    ) -> None:
        self._wake.set()  # the drain thread settles acknowledged reports

    # -- sending -----------------------------------------------------------------------------------

    def _publish(
        self, topic: str, payload: bytes, qos: int, retain: bool
    ) -> paho.MQTTMessageInfo | None:
        """Hand one message to paho; None when it did not take it for sending."""
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, RuntimeError) as err:  # paho raises these for a full queue
            log.warning("mqtt: could not queue a message on %s (%s)", topic, err)
            return None
        if info.rc != paho.MQTT_ERR_SUCCESS:
            # No socket yet (a reconnect under way): its is_published() would raise for good.
            # The next connect drops it and republishes statuses; reports stay spooled.
            log.debug("mqtt: not sent on %s (%s)", topic, paho.error_string(info.rc))
            return None
        return info

    def _drain_loop(self) -> None:
        """Run drain passes until stopped. A failing pass (paho, or a damaged spool) is logged
        once per distinct error and retried after a pause; it never ends the thread, which
        would leave reports spooled for good with nothing said."""
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._drain_once()
            except Exception as err:
                self.drain_errors += 1
                message = " ".join(f"mqtt: delivery failed: {type(err).__name__}: {err}".split())
                if message != self._delivery_error:
                    log.error("%s; retrying", message, exc_info=True)
                self._delivery_error = message
                self._stopping.wait(self.DRAIN_BACKOFF_S)
            else:
                if self._delivery_error:
                    log.info("mqtt: delivery works again")
                self._delivery_error = ""

    def _drain_once(self) -> None:
        """Send spooled reports in window order, at most MAX_IN_FLIGHT unacknowledged at once,
        and delete each from the spool once paho reports its PUBACK.

        A report sent before the latest connect is forgotten here: that connect dropped paho's
        copy, and the spool sends it again (at-least-once, same report id). Acknowledgement is
        read from ``MQTTMessageInfo.is_published`` in this thread, never inside a paho callback,
        so no lock is held across paho's own.
        """
        with self._lock:
            session, connected = self._session, self.connected
        waiting = []
        for info, row, sent_in in self._in_flight:
            if info.is_published():
                self.spool.ack(row)
            elif sent_in == session:
                waiting.append((info, row, sent_in))
        self._in_flight = waiting
        if not connected:
            return
        busy = frozenset(row for _, row, _ in waiting)
        for item in self.spool.pending(limit=MAX_IN_FLIGHT - len(busy), exclude=busy):
            sent = self._publish(item.topic, item.payload, 1, False)
            if sent is None:
                break
            self._in_flight.append((sent, item.row, session))


def home_assistant_discovery(
    config: MqttConfig, cameras: Sequence[CameraConfig], categories: Sequence[str]
) -> list[tuple[str, str]]:
    """One Home Assistant sensor per camera x line x direction x category (and zone x category
    mean), read from the counts topic: a dashboard with no hand configuration. Static: built
    from the configuration only, nothing from the scene."""
    topics = Topics(config.topic_prefix, config.site)
    out = []
    for camera in cameras:
        device = {
            "identifiers": [f"edge-{config.site}-{camera.id}"],
            "name": f"edge {config.site} {camera.id}",
            "manufacturer": "edge footfall counter",
        }
        values = [
            (f"{line.name}_{d}_{c}", f"{line.name} {d} {c}", f"lines['{line.name}']['{d}']['{c}']")
            for line in camera.lines
            for d in DIRECTIONS
            for c in categories
        ] + [
            (
                f"{zone.name}_{c}_mean",
                f"{zone.name} {c} mean",
                f"zones['{zone.name}']['{c}']['mean']",
            )
            for zone in camera.zones
            for c in categories
        ]
        for key, name, path in values:
            unique = f"edge_{config.site}_{camera.id}_{key}".replace("-", "_").replace(".", "_")
            sensor = {
                "name": name,
                "unique_id": unique,
                "state_topic": topics.counts(camera.id),
                "value_template": "{{ value_json." + path + " }}",
                "availability_topic": topics.camera_status(camera.id),
                "state_class": "measurement",
                "device": device,
            }
            topic = f"{config.discovery_prefix}/sensor/{unique}/config"
            out.append((topic, json.dumps(sensor, separators=(",", ":"))))
    return out
