"""A real PostgreSQL server (Debian's ``postgresql`` package) on a free loopback port.

One server per test session in a temporary directory, one fresh database per test. Debian
puts ``initdb`` and ``postgres`` in /usr/lib/postgresql/<version>/bin; PostgreSQL refuses to
run as root, so as root the server runs as the ``postgres`` user. Without the package the
fixture skips, or fails under CI (``CI`` set).

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.net import HOST, accepts, free_port, wait_serving

_names = itertools.count()


def _binaries() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


class Postgres:
    def __init__(self, workdir: Path, binaries: Path) -> None:
        self.port = free_port()
        self.data = workdir / "data"
        self.user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres")
        subprocess.run(
            _as_server_user([str(binaries / "initdb"), "-D", str(self.data), "-A", "trust",
                             "-U", self.user, "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
        self.log = workdir / "postgres.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                _as_server_user([str(binaries / "postgres"), "-D", str(self.data), "-h", HOST,
                                 "-p", str(self.port), "-k", str(workdir), "-c", "fsync=off"]),
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_serving(
            self.process, lambda: accepts(self.port), "postgres",
            lambda: self.log.read_text(errors="replace")[-2000:], self.stop, 30.0,
        )  # fmt: skip
        self._wait_ready(30.0)

    def _wait_ready(self, timeout: float) -> None:
        """The port accepts before the server serves ("the database system is starting up")."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(f"host={HOST} port={self.port} user={self.user} dbname=postgres",
                                connect_timeout=5).close()  # fmt: skip
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{HOST}:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its SQLAlchemy URL."""
        import psycopg

        name = f"test_{os.getpid()}_{next(_names)}"
        with psycopg.connect(f"host={HOST} port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as connection:  # fmt: skip
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    binaries = _binaries()
    if binaries is None:
        message = "PostgreSQL is not installed: apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    workdir = Path(tempfile.mkdtemp(prefix="edge-pg-"))
    server = Postgres(workdir, binaries)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
