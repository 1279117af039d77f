"""A real Eclipse Mosquitto broker for integration tests, and a subscriber that records messages.

``start_broker`` writes its own ``mosquitto.conf`` into a work directory and runs ``mosquitto``
on free loopback ports; the ``broker`` (plain, anonymous) and ``secure_broker`` (password and a
TLS listener with a throwaway CA) fixtures wrap it. Persistence is on, so retained messages
survive ``stop()`` + ``start()``. Without the ``mosquitto`` binary the fixtures skip, or fail
under CI (``CI`` set).

PYTEST_DONT_REWRITE: no asserts here, and test modules may import this before pytest registers
it as a plugin (which would otherwise warn that it cannot be rewritten).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.net import HOST, accepts, free_port, wait_serving

USERNAME = "edge"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# Debian installs the broker in /usr/sbin, which a non-root PATH often lacks.
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")

# Our own openssl config, so the certificates do not depend on the system's openssl.cnf.
# The extensions satisfy strict verification (Python 3.13's default VERIFY_X509_STRICT too):
# a critical CA basicConstraints, key identifiers, and the SAN the client checks the host against.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no

[dn]

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


def find_program(name: str) -> str | None:
    """Path of ``name`` on PATH or in the sbin directories, else None."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
    return shutil.which(name, path=search)


def require_program(name: str, package: str) -> str:
    """Path of ``name``; skip the test without it (fail under CI)."""
    path = find_program(name)
    if path is None:
        message = f"{name} is not installed: apt-get install {package}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Broker:
    """A mosquitto process with a fixed config, ports and data directory; restartable."""

    host: str
    port: int
    tls_port: int | None
    ca_file: Path | None
    wrong_ca_file: Path | None
    username: str | None
    password: str | None
    workdir: Path
    executable: str
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def config_file(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def output_file(self) -> Path:
        """stdout/stderr of the process: errors before the log file is open land here."""
        return self.workdir / "mosquitto.out"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (or restart) mosquitto and wait until every listener accepts TCP connections."""
        if self.running:
            return
        with self.output_file.open("ab") as out:
            self._process = subprocess.Popen(
                [self.executable, "-c", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        ports = [self.port] if self.tls_port is None else [self.port, self.tls_port]
        wait_serving(
            self._process,
            lambda: all(accepts(port, self.host) for port in ports),
            f"mosquitto on {ports}",
            self.log_tail,
            self.stop,
            START_TIMEOUT_S,
        )

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistence file then), SIGKILL if it hangs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of the broker's output and log file."""
        lines: list[str] = []
        for path in (self.output_file, self.log_file):
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])


def _run(*args: str, cwd: Path) -> None:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path, Path]:
    """CA, server cert+key signed by it (SAN 127.0.0.1/localhost) and an unrelated CA.

    Returns ``(ca_file, server_cert, server_key, wrong_ca_file)``. EC P-256 keys: fast to make.
    """
    openssl = require_program("openssl", "openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cnf = directory / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    common = ["-config", str(cnf), "-days", "2"]
    for name in ("ca", "wrong-ca"):
        _run(
            *(openssl, "req", "-x509", *new_key, "-keyout", f"{name}.key", "-out", f"{name}.crt"),
            *("-subj", f"/CN=edge test {name}", "-extensions", "ca", *common),
            cwd=directory,
        )
    _run(
        *(openssl, "req", "-new", *new_key, "-keyout", "server.key", "-out", "server.csr"),
        *("-subj", "/CN=localhost", "-config", str(cnf)),
        cwd=directory,
    )
    _run(
        *(openssl, "x509", "-req", "-in", "server.csr", "-out", "server.crt"),
        *("-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", str(secrets.randbits(63))),
        *("-extfile", str(cnf), "-extensions", "server", "-days", "2"),
        cwd=directory,
    )
    return (
        directory / "ca.crt",
        directory / "server.crt",
        directory / "server.key",
        directory / "wrong-ca.crt",
    )


def _config(
    broker: Broker, *, password_file: Path | None, tls: tuple[Path, Path, Path] | None
) -> str:
    # Running as root, mosquitto drops to the "mosquitto" user and then cannot read our 0600
    # keys and password file; "user root" keeps it as is (ignored when not started as root).
    # per_listener_settings false: allow_anonymous and password_file apply to both listeners.
    lines = [
        "per_listener_settings false",
        "user root",
        f"allow_anonymous {'false' if password_file else 'true'}",
        "persistence true",
        # mosquitto appends the file name to this without a separator: keep the trailing "/".
        f"persistence_location {broker.workdir}/",
        f"log_dest file {broker.log_file}",
        "log_type all",
        "connection_messages true",
    ]
    if password_file is not None:
        lines.append(f"password_file {password_file}")
    lines += ["", f"listener {broker.port} {broker.host}"]
    if tls is not None:
        ca, cert, key = tls
        lines += [
            "",
            f"listener {broker.tls_port} {broker.host}",
            f"cafile {ca}",
            f"certfile {cert}",
            f"keyfile {key}",
            "require_certificate false",
        ]
    return "\n".join(lines) + "\n"


def start_broker(workdir: Path, *, auth: bool = False, tls: bool = False) -> Broker:
    """Configure and start a broker in ``workdir``; auth: user "edge" with a random password."""
    executable = require_program("mosquitto", "mosquitto")
    workdir.mkdir(parents=True, exist_ok=True)
    password_file: Path | None = None
    password: str | None = None
    if auth:
        password = secrets.token_urlsafe(16)
        password_file = workdir / "passwd"
        passwd = require_program("mosquitto_passwd", "mosquitto")
        _run(passwd, "-b", "-c", str(password_file), USERNAME, password, cwd=workdir)
    certs = make_certificates(workdir / "certs") if tls else None
    # A free port can be taken again before mosquitto binds it: retry with fresh ports.
    for attempt in range(3):
        broker = Broker(
            host=HOST,
            port=free_port(),
            tls_port=free_port() if tls else None,
            ca_file=certs[0] if certs else None,
            wrong_ca_file=certs[3] if certs else None,
            username=USERNAME if auth else None,
            password=password,
            workdir=workdir,
            executable=executable,
        )
        server = (certs[0], certs[1], certs[2]) if certs else None
        broker.config_file.write_text(_config(broker, password_file=password_file, tls=server))
        try:
            broker.start()
        except RuntimeError:
            broker.stop()
            if attempt == 2 or "Address already in use" not in broker.log_tail():
                raise
        else:
            return broker
    raise AssertionError("unreachable")


def _running_broker(workdir: Path, *, auth: bool, tls: bool) -> Iterator[Broker]:
    broker = start_broker(workdir, auth=auth, tls=tls)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A plain, anonymous mosquitto on a free loopback port, stopped after the test."""
    yield from _running_broker(tmp_path / "broker", auth=False, tls=False)


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto with a password ("edge", ``broker.password``) and a TLS listener as well."""
    yield from _running_broker(tmp_path / "broker", auth=True, tls=True)


def new_client(
    broker: Broker,
    *,
    tls: bool = False,
    ca_file: Path | None = None,
    username: str | None = None,
    password: str | None = None,
    client_id: str = "",
    persistent: bool = False,
) -> mqtt.Client:
    """A paho 2.x client set up for ``broker`` (not connected); TLS trusts ``ca_file`` or its CA.

    ``persistent``: a session the broker keeps (and queues QoS 1 messages for) while the
    client is away, even across a broker restart; needs a ``client_id``.
    """
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
    )
    if tls:
        ca = ca_file or broker.ca_file
        if ca is None:
            raise ValueError("this broker has no TLS listener")
        client.tls_set(ca_certs=str(ca))
    if username is not None:
        client.username_pw_set(username, password)
    return client


def broker_port(broker: Broker, *, tls: bool) -> int:
    """The TLS or the plain port."""
    if not tls:
        return broker.port
    if broker.tls_port is None:
        raise ValueError("this broker has no TLS listener")
    return broker.tls_port


class Received(NamedTuple):
    """One message as the subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool


class Subscriber:
    """A connected paho client that records every message; use ``subscribe()`` to make one."""

    def __init__(self, client: mqtt.Client, topics: Sequence[str]) -> None:
        self._client = client
        self._topics = list(topics)
        self._received: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._error: str | None = None
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._error = f"CONNACK refused: {reason_code}"
            # Stops paho's retry loop now; else loop_stop() waits out its 1 s reconnect sleep.
            client.disconnect()
            self._subscribed.set()
            return
        # Subscribing here also resubscribes after paho reconnects (e.g. a broker restart).
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:
            self._error = f"SUBACK refused: {failed}"
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._changed:
            self._received.append(Received(msg.topic, bytes(msg.payload), bool(msg.retain)))
            self._changed.notify_all()

    def wait_subscribed(self, timeout: float) -> None:
        """Raise unless the SUBACK arrived (and granted every topic) within ``timeout``."""
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"no SUBACK within {timeout} s for {self._topics}")
        if self._error is not None:
            raise RuntimeError(self._error)

    def messages(self, topic_filter: str | None = None) -> list[Received]:
        """A copy of what arrived so far, optionally only topics matching an MQTT filter."""
        with self._changed:
            received = list(self._received)
        if topic_filter is None:
            return received
        return [m for m in received if mqtt.topic_matches_sub(topic_filter, m.topic)]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> bool:
        """Wait until ``predicate(all messages so far)`` holds; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(list(self._received)), timeout)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()


def subscribe(
    broker: Broker,
    topics: list[str],
    *,
    tls: bool = False,
    username: str | None = None,
    password: str | None = None,
    timeout: float = 5.0,
    persistent_id: str = "",
) -> Subscriber:
    """Connect, subscribe (QoS 1) and return once the SUBACK arrived, so nothing is missed.

    ``persistent_id``: keep the session under that client id, so messages published while
    the subscriber is disconnected (a broker restart) are queued for it, not lost.
    """
    client = new_client(
        broker,
        tls=tls,
        username=username,
        password=password,
        client_id=persistent_id,
        persistent=bool(persistent_id),
    )
    subscriber = Subscriber(client, topics)
    client.connect(broker.host, broker_port(broker, tls=tls), keepalive=10)
    client.loop_start()
    try:
        subscriber.wait_subscribed(timeout)
    except BaseException:
        subscriber.close()
        raise
    return subscriber
