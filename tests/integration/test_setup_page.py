"""``edge setup`` for real: the commissioning page in headless Chromium on the TUD-Campus clip.
An installer draws a line with the mouse, names it and saves; the file keeps its comments and
``edge count`` then counts on the new line. The picture served is asserted small."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from edge.legal.audit import verify_audit
from edge.legal.policy import load_policy
from tests.conftest import EXAMPLE, REPO, shared_file
from tests.integration.test_dashboard_browser import ARTIFACTS, browser  # noqa: F401 (fixture)
from tests.support.rtsp import RtspServer

TUD = "clips/tud_campus/TUD-Campus.mp4"


def config_copy(tmp_path: Path, **policy: str) -> Path:
    """The shipped example, comments and all, with absolute paths to the shared files."""
    text = EXAMPLE.read_text()
    text = text.replace("model_dir: ../shared/models", f"model_dir: {shared_file('models')}")
    text = text.replace(f"../shared/{TUD}", str(shared_file(TUD)))
    for key, value in policy.items():
        text = text.replace(f"  {key}: ", f"  {key}: {value}  # was: ", 1)
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    return path


class Setup:
    """``edge setup`` in a subprocess; ``url`` is what it prints, token included."""

    def __init__(self, config: Path, audit: Path) -> None:
        self.output = config.parent / "setup.out"
        argv = [sys.executable, "-m", "edge", "--audit-log", str(audit), "setup", "-c",
                str(config), "--port", "0"]  # fmt: skip
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.process.poll() is None:
            for line in self.output.read_text().splitlines():
                if line.startswith("open "):
                    self.url = line.removeprefix("open ")
                    self.base, self.token = self.url.split("/#token=")
                    return
            time.sleep(0.2)
        self.process.kill()
        raise AssertionError(f"edge setup did not start: {self.output.read_text()}")

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return bytes(response.read())

    def post(self, path: str, body: object) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(20)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    running = Setup(config_copy(tmp_path), tmp_path / "audit.jsonl")
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


def events(log: Path) -> list[str]:
    """The audit log's events, once its chain is checked."""
    assert verify_audit(log).ok
    return [json.loads(line)["event"] for line in log.read_text().splitlines()]


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_picture_is_small_and_the_api_needs_the_token(setup: Setup) -> None:
    assert png_size(setup.get("/api/background.png")) == (80, 60)  # 640x480 / 8
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(setup.base + "/api/background.png", timeout=10)
    assert refused.value.code == 401
    state = json.loads(setup.get("/api/state"))
    assert state["frame"] == [640, 480] and state["lines"][0]["name"] == "centre"
    assert all(len(box) == 5 for box in state["boxes"])  # x1, y1, x2, y2, category: no id
    assert not any(key in json.dumps(state) for key in ("track", 'id"'))


def test_a_live_camera_gives_the_same_small_picture_and_live_boxes(
    tmp_path: Path, rtsp_server: Callable[[dict[str, str]], RtspServer]
) -> None:
    """The camera is an RTSP stream of the clip (GStreamer's server): the background is made
    from the stream and the live thread detects on it."""
    server = rtsp_server({"cam": str(shared_file(TUD))})
    config = config_copy(tmp_path)
    config.write_text(config.read_text().replace(str(shared_file(TUD)), server.url("cam")))
    live = Setup(config, tmp_path / "audit.jsonl")
    try:
        assert png_size(live.get("/api/background.png")) == (80, 60)
        deadline = time.monotonic() + 30
        while not json.loads(live.get("/api/state"))["boxes"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert json.loads(live.get("/api/state"))["boxes"]
    finally:
        assert live.stop() == 0
    assert events(tmp_path / "audit.jsonl") == ["setup_opened", "setup_closed"]


def test_a_port_in_use_is_a_one_line_error(setup: Setup, tmp_path: Path) -> None:
    port = setup.base.rsplit(":", 1)[1]
    argv = [sys.executable, "-m", "edge", "--audit-log", str(tmp_path / "b.jsonl"), "setup",
            "-c", str(tmp_path / "edge.yaml"), "--port", port]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"edge: --host/--port: cannot listen on 127.0.0.1:{port} (Address already in use)"
    ]


def test_a_save_the_gate_refuses_writes_nothing(setup: Setup, tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    before = config.read_bytes()
    short = {"lines": [{"name": "stub", "start": [300, 200], "end": [305, 200]}], "zones": []}
    status, answer = setup.post("/api/save", short)
    assert status == 422 and not answer["ok"]
    assert "too short: ['stub']" in " ".join(answer["problems"])  # type: ignore[arg-type]
    outside = {"lines": [{"name": "far", "start": [300, 0], "end": [900, 480]}], "zones": []}
    status, answer = setup.post("/api/save", outside)
    assert status == 422 and "outside the 640x480 frame" in " ".join(answer["problems"])  # type: ignore[arg-type]
    assert config.read_bytes() == before
    assert setup.stop() == 0
    assert events(tmp_path / "audit.jsonl") == [
        "setup_opened", "setup_save_refused", "setup_save_refused", "setup_closed"
    ]  # fmt: skip


def test_a_policy_can_forbid_the_page(tmp_path: Path) -> None:
    policy_file = tmp_path / "no-setup.yaml"
    shipped = (REPO / "policies" / "cnil-statistics.yaml").read_text()
    policy_file.write_text(shipped.replace("name: cnil-statistics", "name: no-setup") +
                           "setup_view: false\n")  # fmt: skip
    sha = load_policy(policy_file).sha256
    config = config_copy(tmp_path, file=str(policy_file), sha256=sha)
    argv = [sys.executable, "-m", "edge", "--audit-log", str(tmp_path / "a.jsonl"), "setup",
            "-c", str(config), "--port", "0"]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 3, result.stderr
    assert "policy.setup_view" in result.stderr
    assert events(tmp_path / "a.jsonl") == ["setup_refused"]


def test_draw_a_line_with_the_mouse_save_and_count_on_it(
    setup: Setup,
    browser: object,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    driver.get(setup.url)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    natural = driver.execute_script(
        "const i = document.getElementById('background'); return [i.naturalWidth, i.naturalHeight];"
    )
    assert natural == [80, 60]
    wait.until(lambda d: d.execute_script("return document.querySelectorAll('canvas').length"))
    canvas = driver.find_element(By.ID, "canvas")
    width, height = canvas.size["width"], canvas.size["height"]

    def at(x: float, y: float) -> tuple[int, int]:  # frame pixels -> offset from the centre
        return round((x / 640 - 0.5) * width), round((y / 480 - 0.5) * height)

    driver.find_element(By.ID, "add-line").click()
    actions = ActionChains(driver)
    actions.move_to_element_with_offset(canvas, *at(300, 20)).click_and_hold()
    actions.move_to_element_with_offset(canvas, *at(300, 250))
    actions.move_to_element_with_offset(canvas, *at(300, 470)).release().perform()
    name = driver.find_element(By.ID, "name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("across", Keys.TAB)
    driver.find_element(By.ID, "add-zone").click()  # a zone clicked corner by corner
    for corner in ((20, 300), (200, 300), (200, 460), (20, 460)):
        ActionChains(driver).move_to_element_with_offset(canvas, *at(*corner)).click().perform()
    driver.find_element(By.ID, "finish-zone").click()
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("bench", Keys.TAB)
    driver.find_element(By.ID, "save").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text in ("saved", "not saved: see below"))
    problems = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#problems li")]
    assert driver.find_element(By.ID, "status").text == "saved", problems
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    time.sleep(1.0)  # a few live frames drawn over the background
    assert driver.save_screenshot(str(ARTIFACTS / "setup.png"))
    assert setup.stop() == 0

    config = tmp_path / "edge.yaml"
    saved = config.read_text()
    comments = [line for line in EXAMPLE.read_text().splitlines() if line.lstrip().startswith("#")]
    assert all(comment in saved for comment in comments)  # the operator's notes survive
    lines = yaml.safe_load(saved)["cameras"][0]["lines"]
    names = [line["name"] for line in lines]
    assert "across" in names and "centre" in names
    (zone,) = yaml.safe_load(saved)["cameras"][0]["zones"]
    assert zone["name"] == "bench" and len(zone["points"]) == 4
    assert all(abs(x - cx) <= 3 and abs(y - cy) <= 3 for (x, y), (cx, cy) in zip(
        zone["points"], [(20, 300), (200, 300), (200, 460), (20, 460)], strict=True))  # fmt: skip
    across = lines[names.index("across")]
    assert abs(across["start"][0] - 300) <= 3 and abs(across["end"][0] - 300) <= 3
    assert events(tmp_path / "audit.jsonl") == ["setup_opened", "setup_saved", "setup_closed"]

    argv = [sys.executable, "-m", "edge", "--audit-log", str(tmp_path / "count.jsonl"), "count",
            "-c", str(config), "--json"]  # fmt: skip
    result = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    counted = json.loads(result.stdout)["lines"]["across"]
    assert sum(counted["in"].values()) + sum(counted["out"].values()) >= 3
