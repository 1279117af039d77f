"""What a counting process loads: memory on a small box is mostly imports (issue 18)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_counting_loads_no_mqtt_client_tls_or_asyncio() -> None:
    """paho, ssl and asyncio (pulled in by pydantic-settings) cost 14 MB of RSS together; a run
    without MQTT never needs them. ``edge.bench`` measures the pipeline through the same
    modules."""
    code = (
        "import sys, edge.app, edge.bench, edge.config\n"
        "print(sorted(m for m in ('paho', 'ssl', 'asyncio', 'pydantic_settings') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
