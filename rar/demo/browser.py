"""Drive the demo page in headless Chromium (Selenium): used by the browser test and by
`experiments/demo_screenshot.py`. Needs Debian's `chromium` and `chromium-driver` (or any
Chrome + chromedriver pair: $RAR_CHROMIUM, $RAR_CHROMEDRIVER) and the `demo` extra."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# Without the background-networking flags Chromium's own connections stall on a closed network.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def chromium_paths() -> tuple[str | None, str | None]:
    """(browser binary, chromedriver) from $RAR_CHROMIUM / $RAR_CHROMEDRIVER or the PATH."""
    browser = os.environ.get("RAR_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = os.environ.get("RAR_CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_demo(args: list[str], cwd: str | Path, log: Path, env: dict | None = None):
    """`python -m rar demo ARGS` as a subprocess writing to `log`."""
    env = {**os.environ, **(env or {})}
    handle = log.open("w", encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, "-m", "rar", "demo", *args],
        cwd=str(cwd),
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def stop_demo(process: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop a demo started by :func:`start_demo`: SIGTERM (it cleans up), then SIGKILL."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_for_http(url: str, process=None, timeout: float = 240.0, log: Path | None = None) -> None:
    """Until `url` answers 200; fails early when the server process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            text = log.read_text(encoding="utf-8") if log is not None and log.exists() else ""
            raise RuntimeError(f"demo server exited with {process.returncode}:\n{text[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:g} s")


def chromium_driver(
    width: int = 1400,
    height: int = 1700,
    user_data_dir: str | None = None,
    download_dir: str | Path | None = None,
):
    """A headless Chromium WebDriver with a fresh profile; downloads go to `download_dir`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    if driver_path is None:
        raise FileNotFoundError("chromedriver not found (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(
        f"--user-data-dir={user_data_dir or tempfile.mkdtemp(prefix='rar-chrome-')}"
    )
    if browser:
        options.binary_location = browser
    if download_dir is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(Path(download_dir).resolve()),
                "download.prompt_for_download": False,
                "safebrowsing.enabled": False,
            },
        )
    return webdriver.Chrome(service=Service(driver_path), options=options)


class DemoPage:
    """The demo page as the tests see it (element ids from rar/demo/app.py and cards.py)."""

    def __init__(self, driver, url: str, timeout: float = 120.0):
        self.driver = driver
        self.url = url
        self.timeout = timeout

    def _wait(self, condition, timeout: float | None = None, what: str = "the page"):
        deadline = time.monotonic() + (timeout or self.timeout)
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except Exception as exc:  # stale elements while Gradio re-renders
                last_error = exc
            time.sleep(0.25)
        raise TimeoutError(f"timed out waiting for {what} ({last_error})")

    def _all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def open(self) -> None:
        self.driver.get(self.url)
        self._wait(lambda: self._all("#rar-input textarea"), what="the message box")

    def type(self, text: str) -> None:
        box = self._all("#rar-input textarea")[0]
        box.clear()
        box.send_keys(text)

    def chips(self) -> list[dict[str, str]]:
        return [
            {
                "corpus_id": c.get_attribute("data-corpus-id") or "",
                "typed": c.get_attribute("data-typed") or "",
                "text": c.text,
                "class": c.get_attribute("class") or "",
            }
            for c in self._all("#rar-chips .rar-chip")
        ]

    def wait_chips(self, n: int = 1) -> list[dict[str, str]]:
        return self._wait(lambda: (c := self.chips()) and len(c) >= n and c, what="mention chips")

    def send(self) -> None:
        self._all("#rar-send")[0].click()

    def turns_done(self) -> int:
        return len(self._all("#rar-cost-table tbody tr"))

    def wait_turn(self, n: int, timeout: float | None = None) -> None:
        self._wait(
            lambda: (
                self.turns_done() >= n
                and self._all(f'#rar-recs .rar-turn[data-turn="{n}"]')
                and not self._all("#rar-recs .pending")
            ),
            timeout,
            what=f"recommender turn {n}",
        )

    def titles(self, stage: str) -> list[str]:
        return [e.text for e in self._all(f'#rar-recs .rar-card[data-stage="{stage}"] .rar-title')]

    def ids(self, stage: str) -> list[str]:
        return [
            e.get_attribute("data-corpus-id")
            for e in self._all(f'#rar-recs .rar-card[data-stage="{stage}"]')
        ]

    def ranker_status(self) -> str:
        found = self._all("#rar-ranker-stage")
        return (found[0].get_attribute("data-status") or "") if found else ""

    def cost_rows(self) -> list[list[str]]:
        return [
            [td.text for td in row.find_elements("css selector", "td")]
            for row in self._all("#rar-cost-table tbody tr")
        ]

    def select_ranker(self, label: str) -> None:
        for option in self._all("#rar-ranker label"):
            if option.text.strip() == label:
                option.click()
                return
        raise KeyError(f"no ranker {label!r} in the page")

    def wait_ranker(self, label: str, status: str | None = None) -> None:
        def done():
            rows = self.cost_rows()
            if not rows or rows[-1][1] != label:
                return False
            return status is None or self.ranker_status() == status

        self._wait(done, what=f"the turn re-ranked by {label}")

    def tick(self, label: str) -> None:
        """Tick the "I'd watch these" box of a shown movie (`Title (Year)`)."""
        for option in self._all("#rar-picks label"):
            if option.text.strip() == label:
                option.click()
                return
        raise KeyError(f"no pick {label!r} in the page")

    def download(self, directory: str | Path, timeout: float = 30.0) -> Path:
        """Click "Download this conversation" and wait for the file in `directory`."""
        directory = Path(directory)
        self._wait(lambda: self._all("#rar-download")[0].is_enabled(), what="the download button")
        self._all("#rar-download")[0].click()
        return self._wait(
            lambda: next((p for p in directory.glob("*.jsonl") if p.stat().st_size > 0), None),
            timeout,
            what="the downloaded conversation",
        )

    def screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))
        return path
