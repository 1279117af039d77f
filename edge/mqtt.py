"""Publishing over MQTT: paho-mqtt 2.x behind our own durable spool.

Topics (``P`` = ``mqtt.topic_prefix``, ``S`` = ``mqtt.site``)::

    P/S/<camera>/counts   one PublishedReport per window, QoS 1, not retained
    P/S/<camera>/status   "online" / "offline", retained
    P/S/status            "online" / "offline", retained; "offline" is also the last will
    P/S/stats             StatsMessage every ``stats_interval_s``, QoS 0
    P/S/notice            NoticeMessage (public information notice, policy sha256), retained

The connection is "up" only when the CONNACK reason code says success (a refused password is
an error in the log, not a connection). paho reconnects on its own with capped exponential
backoff. Reports go to the spool first and are deleted when the broker's PUBACK arrives, so a
broker outage or a process restart loses nothing: at-least-once, duplicates share a report id.
Only the closed message types of ``edge.gate`` can be published: the client is private.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import CameraConfig, MqttConfig
from edge.errors import PublishError
from edge.gate import NoticeMessage, PublishedReport, StatsMessage
from edge.spool import Spool

log = logging.getLogger(__name__)

Status = Literal["online", "offline"]
MAX_IN_FLIGHT = 20


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    def counts(self, camera: str) -> str:
        return f"{self.prefix}/{self.site}/{camera}/counts"

    def camera_status(self, camera: str) -> str:
        return f"{self.prefix}/{self.site}/{camera}/status"

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.site}/status"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/{self.site}/stats"

    @property
    def notice(self) -> str:
        return f"{self.prefix}/{self.site}/notice"


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
    """One broker connection for the whole process; a ``Sink`` for the egress gate."""

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
        self._in_flight: list[tuple[paho.MQTTMessageInfo, int]] = []  # drain thread only
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
        if self.connected:
            infos = [
                self._publish(self.topics.camera_status(c), b"offline", 1, True)
                for c in self.cameras
            ]
            infos.append(self._publish(self.topics.status, b"offline", 1, True))
            for info in infos:
                if info is not None:
                    info.wait_for_publish(timeout)
        self._stopping.set()
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

    def set_camera_status(self, camera: str, status: Status) -> None:
        if self.connected:
            self._publish(self.topics.camera_status(camera), status.encode(), 1, True)

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
        self.connected = True
        self.last_error = ""
        log.info("mqtt: connected to %s:%s", self.config.host, self.config.port)
        self._publish(self.topics.status, b"online", 1, True)
        for camera in self.cameras:
            self._publish(self.topics.camera_status(camera), b"online", 1, True)
        self._publish(self.topics.notice, _json(self.notice), 1, True)
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
        try:
            return self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, RuntimeError) as err:  # paho raises these for a full queue
            log.warning("mqtt: could not queue a message on %s (%s)", topic, err)
            return None

    def _drain_loop(self) -> None:
        """Send spooled reports in window order, at most MAX_IN_FLIGHT unacknowledged at once,
        and delete each from the spool once paho reports its PUBACK.

        Unacknowledged messages stay in paho's queue across a reconnect and paho sends them
        again; after a process restart the spool does. Acknowledgement is read from
        ``MQTTMessageInfo.is_published`` in this thread, never inside a paho callback, so no
        lock is held across paho's own.
        """
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            waiting = []
            for info, row in self._in_flight:
                if info.is_published():
                    self.spool.ack(row)
                else:
                    waiting.append((info, row))
            self._in_flight = waiting
            if not self.connected:
                continue
            busy = frozenset(row for _, row in waiting)
            for item in self.spool.pending(limit=MAX_IN_FLIGHT - len(busy), exclude=busy):
                sent = self._publish(item.topic, item.payload, 1, False)
                if sent is None:
                    break
                self._in_flight.append((sent, item.row))


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
            for d in ("in", "out")
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
