"""``vsvsr serve`` in a real browser: Debian's Chromium, driven by Selenium and chromedriver.

On the built-in sample with the shipped rvsr-x2 model: choose the file, move the preview
slider and see the image change, use the wipe, start a job, see the progress reach 100 %,
download the result and compare it with the file on disk. The test saves a screenshot
(``VSVSR_SCREENSHOT=docs/serve.png`` puts it there; the README shows that one).
Skips when Chromium, chromedriver or Selenium is absent (``apt-get install chromium
chromium-driver``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if not CHROMIUM or not CHROMEDRIVER:
    pytest.skip("the browser test needs Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)", allow_module_level=True)
pytest.importorskip("selenium", reason="the browser test needs selenium (pip install "
                                        "'vsvsr[dev]')")
pytest.importorskip("starlette", reason="vsvsr serve needs pip install 'vsvsr[web]'")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SAMPLE = "sample_lr_x2.mkv"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path):  # noqa: ANN201
    """``vsvsr serve`` (the real command, uvicorn) on a root holding the built-in sample."""
    from vsvsr.sample.clip import write_sample

    root = tmp_path / "root"
    write_sample(root, 2, hr_video=False)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vsvsr", "serve", "--root", str(root),
                             "--port", str(port)], stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/api/config", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise AssertionError("vsvsr serve exited early") from None
                time.sleep(0.1)
        yield url, root
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def browser(tmp_path: Path):  # noqa: ANN201
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1400,1050",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(options=opts, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_page_preview_run_download(server, browser, tmp_path: Path) -> None:
    url, root = server
    d = browser
    wait = WebDriverWait(d, 120, poll_frequency=0.1)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    d.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow",
                                                   "downloadPath": str(downloads)})
    d.get(url + "/")

    # Choose the sample in the file browser: facts appear, frame 0 is previewed.
    item = wait.until(lambda _: d.find_element(By.CSS_SELECTOR, f'#files li[data-path="{SAMPLE}"]'))
    item.click()
    wait.until(lambda _: d.find_element(By.ID, "img-vsvsr").get_attribute("data-frame") == "0")
    facts = d.find_element(By.ID, "facts").text
    assert "256×144" in facts and "60 at 24 fps (2.5 s)" in facts
    first = d.find_element(By.ID, "img-vsvsr").get_attribute("src")
    assert first.startswith("data:image/png;base64,")
    assert "ms" in d.find_element(By.ID, "preview-time").text

    # Move the frame slider with the keyboard, as a person would: the image changes.
    slider = d.find_element(By.ID, "frame")
    slider.send_keys(Keys.END)
    for _ in range(15):
        slider.send_keys(Keys.LEFT)
    wait.until(lambda _: d.find_element(By.ID, "img-vsvsr").get_attribute("data-frame") == "44")
    assert d.find_element(By.ID, "frame-label").text == "44 / 59"
    assert d.find_element(By.ID, "img-vsvsr").get_attribute("src") != first
    assert d.find_element(By.ID, "img-bicubic").get_attribute("src") != \
        d.find_element(By.ID, "img-vsvsr").get_attribute("src")
    assert "frame 44, 512×288 (×2)" in d.find_element(By.ID, "preview-time").text

    # The wipe view: the vsvsr image is clipped at the slider's position.
    Select(d.find_element(By.ID, "preview-mode")).select_by_value("wipe")
    wipe = d.find_element(By.ID, "wipe")
    for _ in range(10):
        wipe.send_keys(Keys.LEFT)
    assert "inset(0px 0px 0px 40%)" in d.find_element(By.ID, "img-vsvsr").get_attribute("style")

    # Scene detection on: the preview of frame 44 is recomputed, now from the cut at 30.
    before = d.find_element(By.ID, "preview-time").text
    d.find_element(By.ID, "scene-detect").click()
    wait.until(lambda _: d.find_element(By.ID, "preview-time").text not in (before, "")
               and d.find_element(By.ID, "preview-time").text.startswith("frame 44"))

    # Run the job with these settings; progress reaches 100 %.
    output = d.find_element(By.ID, "output").get_attribute("value")
    assert output == "sample_lr_x2_rvsr-x2.mkv"
    d.find_element(By.ID, "run").click()
    row = wait.until(lambda _: d.find_element(By.CSS_SELECTOR, "#jobs tbody tr"))
    seen = set()

    def finished(_: object) -> bool:
        r = d.find_element(By.CSS_SELECTOR, "#jobs tbody tr")
        seen.add(r.get_attribute("data-state"))
        return r.get_attribute("data-state") in ("done", "failed", "cancelled")

    WebDriverWait(d, 300, poll_frequency=0.1).until(finished)
    row = d.find_element(By.CSS_SELECTOR, "#jobs tbody tr")
    assert row.get_attribute("data-state") == "done", row.text
    assert "running" in seen
    assert row.get_attribute("data-percent") == "100"
    assert "100 % · 60 / 60 frames" in row.text
    assert row.find_element(By.TAG_NAME, "progress").get_attribute("value") == "100"

    shot = d.get_screenshot_as_png()
    (tmp_path / "serve.png").write_bytes(shot)
    if os.environ.get("VSVSR_SCREENSHOT"):
        Path(os.environ["VSVSR_SCREENSHOT"]).write_bytes(shot)

    # Download: the browser saves the same bytes as the file the job wrote.
    row.find_element(By.CSS_SELECTOR, "a.download").click()
    target = downloads / output
    WebDriverWait(d, 60, poll_frequency=0.2).until(
        lambda _: target.is_file() and not list(downloads.glob("*.crdownload")))
    assert target.read_bytes() == (root / output).read_bytes()

    # A reload shows the same job list (from the store).
    d.refresh()
    row = wait.until(lambda _: d.find_element(By.CSS_SELECTOR, "#jobs tbody tr"))
    assert row.get_attribute("data-state") == "done"
