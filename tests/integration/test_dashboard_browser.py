"""The dashboard page in a real headless Chromium (Debian's), driven by Selenium: pick a line,
check that the chart shows what the API returns, and keep a screenshot as a test artifact."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from edge.dashboard.store import Store, migrate, open_engine
from tests.conftest import REPO
from tests.integration.test_mqtt import NOTICE
from tests.support.dashboard_data import make_report
from tests.support.net import HOST, accepts, free_port, wait_serving

ARTIFACTS = Path(os.environ.get("EDGE_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def require_browser() -> None:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        message = "Chromium is not installed: apt-get install chromium chromium-driver"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[int]:
    """``edge dashboard --no-collect`` on two days of 15-minute windows for two cameras."""
    database = f"sqlite:///{tmp_path / 'dashboard.sqlite'}"
    engine = open_engine(database)
    migrate(engine)
    store = Store(engine)
    now = int(time.time())
    first = now - now % 900 - 2 * 86400
    for camera, line, scale in (("north", "entrance", 1), ("south", "exit", 3)):
        store.add_reports("market", [
            make_report(camera, first + 900 * k, seconds=900, line=line, zone="square", counts={
                "in": {"pedestrian": scale * (k % 7), "bike": k % 2},
                "out": {"pedestrian": scale * (k % 5), "vehicle": k % 3},
            })
            for k in range(2 * 96)
        ], now=now)  # fmt: skip
    store.add_reports("market", [
        make_report("junction", first + 900 * k, seconds=900, line="north", movements={
            "n-e": ("north", "east", {"vehicle": k % 4, "bike": 1}),
            "e-n": ("east", "north", {"vehicle": 2}),
            "n-s": ("north", "south", {"pedestrian": k % 3}),
        })
        for k in range(2 * 96)
    ], now=now)  # fmt: skip
    store.set_notice("market", NOTICE, now)
    engine.dispose()
    port = free_port()
    config = tmp_path / "dashboard.yaml"
    config.write_text(yaml.safe_dump({"dashboard": {
        "database": database, "listen_port": port, "timezone": "Europe/Paris",
        "title": "Market street footfall", "attribution": "Ville de Test",
    }}))  # fmt: skip
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "edge", "dashboard", "-c", str(config), "--no-collect"],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_serving(
            process, lambda: accepts(port), "edge dashboard", log.read_text, process.kill, 30
        )
        yield port
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1280,1500",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def test_picking_a_line_charts_the_counts_the_api_returns(dashboard: int, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    base = f"http://{HOST}:{dashboard}"
    driver.get(base + "/")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#chart svg[data-buckets]"))
    assert driver.title == "Market street footfall"
    Select(driver.find_element(By.ID, "camera")).select_by_value("south")
    Select(driver.find_element(By.ID, "line")).select_by_value("exit")

    def drawn_for_exit(d: WebDriver) -> bool:
        title = d.find_element(By.ID, "chart-title").text
        busy = d.find_element(By.ID, "chart").get_attribute("aria-busy")
        return title.endswith("market / south / exit") and busy == "false"

    wait.until(drawn_for_exit)
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect[data-count]")
    shown: Counter[tuple[str, str, str]] = Counter()
    for bar in bars:
        key = (bar.get_attribute("data-start"), bar.get_attribute("data-direction"),
               bar.get_attribute("data-category"))  # fmt: skip
        shown[key] += int(bar.get_attribute("data-count") or 0)  # type: ignore[index]
    # What the API returns for the same selection: the page's own JSON download link.
    link = driver.find_element(By.ID, "json").get_attribute("href")
    assert link is not None and "line=exit" in link and "camera=south" in link
    with urllib.request.urlopen(link, timeout=10) as response:
        rows = json.loads(response.read())["rows"]
    expected: Counter[tuple[str, str, str]] = Counter()
    for row in rows:
        for direction in ("in", "out"):
            for category, n in row[direction].items():
                expected[(row["start"], direction, category)] += n
    assert rows and {row["line"] for row in rows} == {"exit"}
    assert shown == expected
    svg = driver.find_element(By.CSS_SELECTOR, "#chart svg")
    assert int(svg.get_attribute("data-total-in") or -1) == sum(
        n for (_, d, _), n in expected.items() if d == "in"
    )
    assert int(svg.get_attribute("data-buckets") or -1) == len({s for s, _, _ in expected})
    cards = {
        c.get_attribute("data-direction"): c.text
        for c in driver.find_elements(By.CSS_SELECTOR, ".card")
    }
    assert set(cards) == {"in", "out"}
    notice = driver.find_element(By.ID, "notice").text
    assert notice == NOTICE.notice.strip()
    assert "CC-BY-4.0" in driver.find_element(By.ID, "licence").text
    assert driver.find_elements(By.CSS_SELECTOR, "#completeness td")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))


def test_the_origin_destination_matrix_shows_the_movements_the_api_returns(
    dashboard: int, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    driver.get(f"http://{HOST}:{dashboard}/")
    wait = WebDriverWait(driver, 20)
    Select(wait.until(lambda d: d.find_element(By.ID, "camera"))).select_by_value("junction")
    driver.find_element(By.CSS_SELECTOR, "input[name=category][value=pedestrian]").click()

    def matrix(d: WebDriver) -> list[list[str]] | None:
        """The junction's matrix once the page shows the new choice (None until then)."""
        busy = d.find_element(By.ID, "chart").get_attribute("aria-busy")
        if "category=pedestrian" in d.current_url or busy != "false":
            return None
        script = """return [...document.querySelectorAll(
            "table.od[data-camera='market / junction'] tr")].map(
            (tr) => [...tr.children].map((cell) => cell.textContent));"""
        return d.execute_script(script) or None  # type: ignore[no-any-return]

    rows = wait.until(matrix)
    query = driver.current_url.split("?", 1)[1].split("#", 1)[0]
    with urllib.request.urlopen(f"http://{HOST}:{dashboard}/api/movements?{query}") as response:
        movements = json.loads(response.read())["movements"]
    expected = {(m["origin"], m["destination"]): sum(m["counts"].values()) for m in movements}
    assert set(next(iter(m["counts"] for m in movements))) == {"bike", "vehicle"}
    head, *body = rows
    assert head == ["market / junction: from \\ to", "east", "north", "south"]
    shown = {
        (row[0], destination): int(value)
        for row in body
        for destination, value in zip(head[1:], row[1:], strict=True)
        if value
    }
    assert shown == expected and len(shown) == 3
    assert [row[0] for row in body] == ["east", "north"]
    assert body[0][3] == ""  # east -> south is not a movement: blank, not 0
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    section = driver.find_element(By.ID, "movements")
    driver.execute_script("arguments[0].scrollIntoView()", section)
    assert driver.save_screenshot(str(ARTIFACTS / "dashboard-movements.png"))


def test_the_engineer_views_show_what_the_api_returns_in_english_and_french(
    dashboard: int, browser: object
) -> None:
    """Ticks written once, one scale above and below the axis, every line on one chart, the
    weekday-by-hour profile, the modal split and the zones, each checked against the API."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    driver: WebDriver = browser  # type: ignore[assignment]
    base = f"http://{HOST}:{dashboard}"
    driver.get(base + "/")
    wait = WebDriverWait(driver, 20)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#compare path[data-series]"))
    wait.until(lambda d: d.find_element(By.ID, "chart").get_attribute("aria-busy") == "false")
    query = driver.current_url.split("?", 1)[1]

    def api(path: str, **changes: str) -> Any:
        params = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k not in changes]
        url = f"{base}{path}?{urllib.parse.urlencode(params + list(changes.items()))}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    ticks = [t.text for t in driver.find_elements(By.CSS_SELECTOR, "#chart text.tick")]
    assert 2 <= len(ticks) <= 11 and len(set(ticks)) == len(ticks), ticks
    grid = [float(g.get_attribute("data-grid") or 0) for g in
            driver.find_elements(By.CSS_SELECTOR, "#chart text[data-grid]")]  # fmt: skip
    above = sorted(v for v in grid if v < 0)[::-1]
    below = sorted(v for v in grid if v > 0)
    assert above and below and -above[0] == below[0]  # the same step on both sides

    rows = api("/api/counts")["rows"]
    totals: Counter[str] = Counter()
    for row in rows:
        key = f"{row['site']} / {row['camera']} / {row['line']}"
        totals[key] += sum(n for d in ("in", "out") for n in row[d].values())
    drawn = {
        p.get_attribute("data-series"): int(p.get_attribute("data-total") or -1)
        for p in driver.find_elements(By.CSS_SELECTOR, "#compare path[data-series]")
    }
    assert drawn == dict(totals) and len(drawn) >= 4

    hourly = api("/api/counts", bucket="hour")["rows"]
    paris = ZoneInfo("Europe/Paris")
    sums: Counter[tuple[int, int]] = Counter()
    days: dict[tuple[int, int], set[dt.date]] = defaultdict(set)
    for row in hourly:
        moment = dt.datetime.fromisoformat(row["start"]).astimezone(paris)
        cell = (moment.weekday(), moment.hour)
        sums[cell] += sum(n for d in ("in", "out") for n in row[d].values())
        days[cell].add(moment.date())
    cells = driver.find_elements(By.CSS_SELECTOR, "#profile td[data-mean]")
    assert len(cells) == len(sums)
    for cell in cells:
        key = (
            int(cell.get_attribute("data-weekday") or -1),
            int(cell.get_attribute("data-hour") or -1),
        )
        assert abs(float(cell.get_attribute("data-mean") or -1) - sums[key] / len(days[key])) < 1e-6

    summary = api("/api/summary")["totals"]
    split = {
        s.get_attribute("data-category"): int(s.get_attribute("data-count") or -1)
        for s in driver.find_elements(By.CSS_SELECTOR, "#split .split")
    }
    assert split == {c: summary["in"][c] + summary["out"][c] for c in split} and len(split) == 3

    zones = api("/api/zones")["zones"]
    table = driver.find_element(By.ID, "zones-table")
    body = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in table.find_elements(By.TAG_NAME, "tr")[1:]]  # fmt: skip
    assert [r[0] for r in body] == [f"{z['site']} / {z['camera']} / {z['zone']}" for z in zones]
    assert [float(r[2]) for r in body] == [round(z["mean"]["pedestrian"], 2) for z in zones]
    assert [int(r[3]) for r in body] == [z["max"]["pedestrian"] for z in zones]
    bars = driver.find_elements(By.CSS_SELECTOR, "#zones-chart rect[data-mean]")
    assert len(bars) == 3 * len(zones) and {
        (
            b.get_attribute("data-zone"),
            b.get_attribute("data-category"),
            float(b.get_attribute("data-mean") or -1),
        )
        for b in bars
    } == {(f"{z['camera']}/{z['zone']}", c, z["mean"][c]) for z in zones for c in z["mean"]}

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for section in ("compare-section", "profile-section", "split-section", "zones-section"):
        driver.execute_script("arguments[0].scrollIntoView()", driver.find_element(By.ID, section))
        assert driver.save_screenshot(str(ARTIFACTS / f"dashboard-{section.split('-')[0]}.png"))

    driver.get(base + "/?lang=fr")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#compare path[data-series]"))
    assert driver.execute_script("return document.documentElement.lang") == "fr"
    headings = [h.text for h in driver.find_elements(By.TAG_NAME, "h2")]
    assert "Répartition modale" in headings and "Mouvements tournants" in headings
    legend = driver.find_element(By.ID, "legend").text
    assert "piétons entrée" in legend
    assert "lang=fr" in driver.current_url  # kept across the page's own URL updates
    assert driver.save_screenshot(str(ARTIFACTS / "dashboard-fr.png"))
