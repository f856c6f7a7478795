"""The playground in headless Chromium (Debian's chromium + chromedriver, driven by Selenium):
the page streams a completion, draws the canvas filling in step by step, and shows the same
text and NFE as the API. A screenshot is saved under the test's tmp dir (and, with
UNMASK_WRITE_DOCS_SCREENSHOT=1, to docs/playground.png for the README)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.server.conftest import PLANNING_PROMPT, REPO, LiveServer

INSTALL = Path(__file__).with_name("install_chromium.sh")


def browser_binaries() -> tuple[str, str] | None:
    found = shutil.which("chromium"), shutil.which("chromedriver")
    return (found[0], found[1]) if all(found) else None  # type: ignore[return-value]


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if browser_binaries() is None:  # a fresh machine: the set-up script installs the distro packages
        subprocess.run(["bash", str(INSTALL)], check=False, timeout=600)
    binaries = browser_binaries()
    if binaries is None:
        pytest.skip("chromium and chromedriver are not installed and could not be (needs root apt-get; see install_chromium.sh)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or a browser
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,760"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=binaries[1]), options=options)
    yield browser
    browser.quit()


def test_playground_draws_the_canvas_denoising_and_the_streamed_text(planning_server: LiveServer, driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    expected = httpx.post(planning_server.url + "/v1/completions", json={"prompt": PLANNING_PROMPT, "seed": 0}, timeout=30).json()
    driver.get(planning_server.url + "/")
    assert driver.title == "unmask playground"
    assert driver.find_element(By.ID, "model").text == "planning-diffusion"
    assert driver.find_element(By.ID, "prompt").get_attribute("value") == PLANNING_PROMPT
    seed = driver.find_element(By.ID, "seed")
    seed.clear()
    seed.send_keys("0")
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done"))
    body = driver.find_element(By.TAG_NAME, "body")
    assert body.get_attribute("data-done") == "1", driver.find_element(By.ID, "error").text

    # the canvas was drawn once per forward pass, starting (nearly) all masked, ending with none
    nfe = expected["unmask"]["nfe"]
    assert int(body.get_attribute("data-frames")) == nfe >= 2
    assert int(body.get_attribute("data-max-masked")) >= 5
    history = [line.text for line in driver.find_elements(By.CSS_SELECTOR, "#history div")]
    assert len(history) == nfe and history[0].count("_") > history[-1].count("_") == 0
    cells = driver.find_elements(By.CSS_SELECTOR, "#canvas .cell")
    assert len(cells) == 7 and not driver.find_elements(By.CSS_SELECTOR, "#canvas .cell.masked")

    # what the page shows is what the API answers
    assert driver.find_element(By.ID, "text").text == expected["choices"][0]["text"]
    assert driver.find_element(By.ID, "nfe").text == str(nfe)
    assert driver.find_element(By.ID, "status").text == expected["choices"][0]["finish_reason"]
    assert float(driver.find_element(By.ID, "tps").text) > 0

    shot = tmp_path / "playground.png"
    assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("UNMASK_WRITE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "playground.png")


def test_playground_shows_api_errors(planning_server: LiveServer, driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(planning_server.url + "/")
    driver.find_element(By.ID, "chat").click()  # the planning model has no chat template
    driver.find_element(By.ID, "run").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-done"))
    assert "no chat template" in driver.find_element(By.ID, "error").text
    assert driver.find_element(By.ID, "status").text == "error"
