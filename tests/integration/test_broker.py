"""Smoke tests of the real-broker fixtures: delivery, persistence, password and TLS refusals."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.broker import Broker, Received, broker_port, new_client, subscribe

# The fixtures, also when conftest does not import them (harmless when it does).
pytest_plugins = ["tests.support.broker"]


@contextmanager
def connected(client: mqtt.Client, broker: Broker, *, tls: bool = False) -> Iterator[mqtt.Client]:
    """Connect, run the network loop, and require a successful CONNACK."""
    code = connack(client, broker, tls=tls)
    try:
        assert not code.is_failure, str(code)
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def connack(client: mqtt.Client, broker: Broker, *, tls: bool = False) -> ReasonCode:
    """Connect with the loop running and return the CONNACK reason code."""
    codes: list[ReasonCode] = []
    done = threading.Event()

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        codes.append(reason_code)
        if reason_code.is_failure:
            client.disconnect()  # no 1 s reconnect sleep for loop_stop() to wait out
        done.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker_port(broker, tls=tls), keepalive=10)
    client.loop_start()
    if not done.wait(5):
        client.loop_stop()
        pytest.fail(f"no CONNACK within 5 s:\n{broker.log_tail()}")
    return codes[0]


def publish(client: mqtt.Client, topic: str, payload: bytes, *, retain: bool = False) -> None:
    info = client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(5)
    assert info.is_published()


def test_qos1_message_is_delivered(broker: Broker) -> None:
    with (
        subscribe(broker, ["edge/#"]) as sub,
        connected(new_client(broker), broker) as pub,
    ):
        publish(pub, "edge/cam1/counts", b'{"in": 3}')
        assert sub.wait_for(lambda ms: len(ms) == 1, 5), broker.log_tail()
        assert sub.messages("edge/+/counts") == [Received("edge/cam1/counts", b'{"in": 3}', False)]
        assert sub.messages("other/#") == []


def test_retained_message_survives_a_restart(broker: Broker) -> None:
    with connected(new_client(broker), broker) as pub:
        publish(pub, "edge/cam1/status", b"online", retain=True)
    broker.stop()
    assert not broker.running
    broker.start()
    assert broker.running
    with subscribe(broker, ["edge/cam1/status"]) as sub:
        assert sub.wait_for(lambda ms: len(ms) == 1, 5), broker.log_tail()
        assert sub.messages() == [Received("edge/cam1/status", b"online", True)]


def test_tls_with_the_right_ca_and_password(secure_broker: Broker) -> None:
    b = secure_broker
    with subscribe(b, ["t"], tls=True, username=b.username, password=b.password) as sub:
        client = new_client(b, tls=True, username=b.username, password=b.password)
        with connected(client, b, tls=True) as pub:
            publish(pub, "t", b"x")
        assert sub.wait_for(lambda ms: len(ms) == 1, 5), b.log_tail()


@pytest.mark.parametrize(
    ("username", "password"),
    [("edge", "wrong"), ("nobody", "wrong"), (None, None)],
    ids=["wrong-password", "unknown-user", "anonymous"],
)
def test_bad_credentials_get_a_refusing_connack(
    secure_broker: Broker, username: str | None, password: str | None
) -> None:
    for tls in (True, False):  # the password applies to both listeners
        client = new_client(secure_broker, tls=tls, username=username, password=password)
        try:
            code = connack(client, secure_broker, tls=tls)
        finally:
            client.disconnect()
            client.loop_stop()
        assert code.is_failure
        assert str(code) in {"Bad user name or password", "Not authorized"}


def test_tls_with_the_wrong_ca_fails_the_handshake(secure_broker: Broker) -> None:
    b = secure_broker
    client = new_client(
        b, tls=True, ca_file=b.wrong_ca_file, username=b.username, password=b.password
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect(b.host, broker_port(b, tls=True), keepalive=10)


def test_subscribe_raises_when_refused(secure_broker: Broker) -> None:
    with pytest.raises(RuntimeError, match="CONNACK refused"):
        subscribe(secure_broker, ["t"], username="edge", password="wrong")
