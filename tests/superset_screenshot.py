"""Screenshot a Superset dashboard with headless Chromium over the DevTools protocol.

Runs with the Superset venv's Python (it has ``websocket-client``), as a script:

    python superset_screenshot.py CHROMIUM BASE_URL PATH OUT.png PROFILE_DIR USER PASSWORD

It logs in through the ``/login/`` form (a same-origin POST with the page's CSRF token, so
the session cookie lands in the browser), opens the dashboard, waits until every chart has
rendered (no loading spinner, at least one canvas/svg per chart) and saves a PNG. The
browser is started in its own process group and always stopped.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

WIDTH, HEIGHT = 1600, 3600  # tall enough that every chart is in view (no lazy rendering)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]


class Page:
    def __init__(self, ws_url: str):
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str, await_promise: bool = False):
        out = self.call("Runtime.evaluate", expression=expression, awaitPromise=await_promise,
                        returnByValue=True)
        return out.get("result", {}).get("value")

    def goto(self, url: str, ready: str, timeout: float = 90) -> None:
        self.call("Page.navigate", url=url)
        self.wait(ready, timeout)

    def wait(self, condition: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.eval(condition):
                    return
            except Exception:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"timed out waiting for: {condition}")


def capture(chromium, base, path, out, profile, user, password) -> None:
    os.makedirs(profile, exist_ok=True)
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file) or not open(port_file).read().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.2)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                  deviceScaleFactor=1, mobile=False)
        page.goto(base + "/login/", "!!document.getElementById('csrf_token')")
        status = page.eval(
            "fetch('/login/', {method: 'POST', credentials: 'same-origin', body: "
            "new URLSearchParams({username: %s, password: %s, csrf_token: "
            "document.getElementById('csrf_token').value})}).then(r => r.status)"
            % (json.dumps(user), json.dumps(password)), await_promise=True)
        if status != 200:
            raise RuntimeError(f"login form answered {status}")
        page.goto(base + path, "document.querySelectorAll('.dashboard-component-chart-holder')"
                  ".length > 0", timeout=120)
        page.wait("(() => { const h = [...document.querySelectorAll("
                  "'.dashboard-component-chart-holder')]; return h.length > 0 && "
                  "document.querySelectorAll('.loading, .ant-skeleton').length === 0 && "
                  "h.every(x => x.querySelector('canvas, svg')); })()", timeout=120)
        time.sleep(3)  # let the ECharts animations finish
        bottom = int(page.eval("Math.ceil(Math.max(...[...document.querySelectorAll("
                               "'.dashboard-component-chart-holder')].map("
                               "x => x.getBoundingClientRect().bottom)))") or HEIGHT)
        shot = page.call("Page.captureScreenshot", format="png",
                         clip={"x": 0, "y": 0, "width": WIDTH, "height": min(bottom + 24, HEIGHT),
                               "scale": 1})
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except Exception:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    capture(*sys.argv[1:8])
