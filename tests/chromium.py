"""A real headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools Protocol.

:class:`Chromium` starts the browser on a free loopback debugging port in a profile folder
of its own; :meth:`Chromium.open` loads a page in a new tab and returns a :class:`Page` that
has recorded, from the first request on, every console message, uncaught exception, browser
log entry and network request of that page. ``Page.evaluate`` runs JavaScript in it and
returns the value; ``Page.screenshot`` writes a PNG. The protocol is JSON over a WebSocket
(``websockets``' synchronous client); only documented domains are used: Target, Page,
Runtime, Log, Network.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

BINARIES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # as root (CI) Chromium refuses to start with its sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
)


class BrowserError(RuntimeError):
    pass


def binary() -> str:
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        "no chromium on PATH: `scripts/tools.sh browser` installs Debian's (make setup does)"
    )


@dataclass
class Page:
    """One tab, with everything it logged since the navigation began."""

    socket: ClientConnection
    session: str
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    console: list[tuple[str, str]] = field(default_factory=list)
    """(type, text) of every console call: log, info, warning, error, ..."""
    exceptions: list[str] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    """(level, text) of the browser's own log (failed loads, security and CSP messages)."""
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    loaded: bool = False

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(
            json.dumps({"id": ident, "sessionId": self.session, "method": method, "params": params})
        )
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method", ""), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(
                str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])
            )
            self.console.append((params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.exceptions.append(
                str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.log.append((entry.get("level", ""), entry.get("text", "")))
        elif method == "Network.requestWillBeSent":
            self.requests.append(params.get("request", {}).get("url", ""))
        elif method == "Network.loadingFailed":
            self.failed.append(f"{params.get('errorText')} ({params.get('requestId')})")
        elif method == "Page.loadEventFired":
            self.loaded = True

    def wait_loaded(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.loaded:
            if time.monotonic() > deadline:
                raise BrowserError(f"the page did not finish loading in {timeout:.0f} s")
            self._event(json.loads(self.socket.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def settle(self, seconds: float = 0.5) -> None:
        """Read the events that arrive in the next ``seconds`` (late console output)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._event(json.loads(self.socket.recv(timeout=left)))
            except TimeoutError:
                break

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, browser log errors, failed loads."""
        found = [
            f"console.{kind}: {text}"
            for kind, text in self.console
            if kind in {"error", "warning", "assert"}
        ]
        found += [f"exception: {text}" for text in self.exceptions]
        found += [
            f"log {level}: {text}" for level, text in self.log if level in {"error", "warning"}
        ]
        return found + [f"request failed: {text}" for text in self.failed]


class Chromium:
    """A headless Chromium process; stop it with :meth:`close` (or use :func:`chromium`)."""

    def __init__(self, profile: Path) -> None:
        profile.mkdir(parents=True, exist_ok=True)
        self.exits = ExitStack()
        self.process = subprocess.Popen(
            [binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=(profile / "chromium.log").open("wb"),
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (profile / "chromium.log").read_text(errors="replace")[-2000:]
                self.close()
                raise BrowserError(f"chromium did not open its debugging port:\n{log}")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.socket = self.exits.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=30)
        )
        self.ids = itertools.count(1)

    def _browser_call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids) + 1_000_000
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def open(self, url: str, timeout: float = 60.0) -> Page:
        """A new tab with ``url`` loaded (its load event fired) and its events recorded."""
        target = self._browser_call("Target.createTarget", url="about:blank")["targetId"]
        session = self._browser_call("Target.attachToTarget", targetId=target, flatten=True)
        page = Page(self.socket, session["sessionId"])
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        page.call("Page.navigate", url=url)
        page.wait_loaded(timeout)
        page.settle()
        return page

    def close(self) -> None:
        self.exits.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def chromium(profile: Path) -> Iterator[Chromium]:
    browser = Chromium(profile)
    try:
        yield browser
    finally:
        browser.close()
