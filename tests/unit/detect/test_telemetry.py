"""ONNX Runtime's telemetry is off whatever the environment says.

ONNX Runtime >= 1.29 on Linux keeps a device id and an event store under ~/.cache/Microsoft for
upload unless ORT_DISABLE_TELEMETRY=1 when it initialises; ``ORT_DISABLE_TELEMETRY=0`` (or any
other value) in the environment must not turn it back on. What the API lets us observe: the
variable the process ends up with, and the files ONNX Runtime writes when telemetry is on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.integration.test_detector import tiny_model

SESSION = """
import os, sys
from pathlib import Path
from edge.detect.runtime import OnnxRuntime
OnnxRuntime(Path(sys.argv[1]))
print(os.environ["ORT_DISABLE_TELEMETRY"])
"""
ORT_ALONE = "import sys, onnxruntime as o; o.InferenceSession(sys.argv[1])"


def run_python(code: str, model: Path, home: Path, value: str | None) -> str:
    env = {**os.environ, "HOME": str(home)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    if value is not None:
        env["ORT_DISABLE_TELEMETRY"] = value
    result = subprocess.run(
        [sys.executable, "-c", code, str(model)],
        cwd=home, capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    names = "{0: 'person', 1: 'bicycle'}"
    return tiny_model(tmp_path / "m.onnx", [1, 6, 512], {"task": "detect", "names": names})


@pytest.mark.parametrize("value", ["0", "false", "", "no", None])
def test_the_environment_cannot_turn_telemetry_back_on(
    tmp_path: Path, model: Path, value: str | None
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert run_python(SESSION, model, home, value) == "1"
    assert not (home / ".cache" / "Microsoft").exists()
    assert sorted(p.name for p in home.iterdir()) == []


def test_without_us_onnx_runtime_would_record_for_upload(tmp_path: Path, model: Path) -> None:
    """The observation above means something: ONNX Runtime alone, told ``0``, writes its store."""
    home = tmp_path / "home"
    home.mkdir()
    run_python(ORT_ALONE, model, home, "0")
    if not (home / ".cache" / "Microsoft").exists():
        pytest.skip("this ONNX Runtime build records no telemetry on this platform")


def test_the_package_sets_the_switch_before_onnx_runtime_is_imported() -> None:
    code = (
        "import os; os.environ['ORT_DISABLE_TELEMETRY'] = '0'; import edge, sys; "
        "print(os.environ['ORT_DISABLE_TELEMETRY'], 'onnxruntime' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["1", "False"], result.stderr
