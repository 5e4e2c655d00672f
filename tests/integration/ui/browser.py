"""A real headless Chromium driven over the DevTools protocol (no extra Python package).

with HeadlessChromium() as browser:
    browser.set_cookie(base_url, "_token", jwt)
    browser.open(url)
    browser.wait_for("document.querySelector('h1') !== null")
    browser.evaluate("document.title")
    png = browser.screenshot()
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from support.waiting import wait_until
from websockets.sync.client import connect

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
]


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    pass


class HeadlessChromium:
    def __init__(self, *, width: int = 1440, height: int = 1800) -> None:
        self.width, self.height = width, height
        self.profile = tempfile.mkdtemp(prefix="billing-ui-chromium-")
        self.process: subprocess.Popen | None = None
        self.ws: Any = None
        self.session: str | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> HeadlessChromium:
        binary = chromium_binary()
        if binary is None:
            raise BrowserError("chromium is not installed: run scripts/install-system-deps.sh")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.profile, "chromium.log"), "wb"),  # noqa: SIM115
            start_new_session=True,
        )
        url = self._devtools_url()
        self.ws = connect(url, max_size=64 * 1024 * 1024, open_timeout=30)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Network"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _devtools_url(self, timeout: float = 60) -> str:
        """Chromium writes its DevTools port and path into the profile once it listens."""
        assert self.process is not None
        active = os.path.join(self.profile, "DevToolsActivePort")

        def listening() -> str | None:
            if self.process.poll() is not None:
                with open(os.path.join(self.profile, "chromium.log"), errors="replace") as log:
                    raise BrowserError(f"chromium exited: {log.read()[-2000:]}")
            if os.path.exists(active):
                with open(active) as handle:
                    lines = handle.read().split()
                if len(lines) == 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            return None

        return wait_until(listening, timeout, "chromium's DevToolsActivePort", interval=0.1)

    def call(self, method: str, params: dict | None = None, *, timeout: float = 60) -> dict:
        """Send one DevTools command and return its result (events in between are skipped)."""
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params or {}}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def set_cookie(self, base_url: str, name: str, value: str) -> None:
        self.call(
            "Network.setCookie",
            {"name": name, "value": value, "url": base_url, "path": "/", "httpOnly": True},
        )

    def open(self, url: str) -> None:
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 60) -> Any:
        """Poll until the expression is truthy in the page; return its value."""
        last: list[Any] = [None]

        def value() -> Any:
            try:
                last[0] = self.evaluate(expression)
            except BrowserError as exc:  # the page is being replaced by a navigation
                last[0] = exc
                return None
            return last[0]

        return wait_until(
            value, timeout, lambda: f"{expression[:120]!r} (last: {last[0]!r})", interval=0.2
        )

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        return base64.b64decode(data)
