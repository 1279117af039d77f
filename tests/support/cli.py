"""The ``edge`` command as tests run it: a real subprocess, auditing into the test's own file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import REPO, edge_argv


def edge(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``edge ARGS`` auditing into this test's own file (``--audit-log``)."""
    return subprocess.run(edge_argv(*args), cwd=cwd, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A configuration error as users must see it: exit 2, one line, no traceback."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]
