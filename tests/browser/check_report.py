#!/usr/bin/env python3
"""Opens a report.html in headless Chromium over the DevTools protocol and
checks it as a person would see it: every plot (<svg>) has a size on the
page, every thumbnail (<img>) decoded (naturalWidth > 0), there were no
console errors or exceptions, and no network request left the page (the
report's Content-Security-Policy blocks them, and a blocked one is a console
error too). Saves a full-page screenshot and checks it is not blank.

usage: check_report.py CHROMIUM REPORT.html SCREENSHOT.png MIN_SVG MIN_IMG
Prints a JSON summary; exits 1 with the reasons when a check fails."""
import json, os, subprocess, sys, tempfile, time, urllib.request, zlib

import websocket  # Debian: python3-websocket


def png_distinct_bytes(path):
    """Distinct byte values of the decoded (filtered) PNG rows: a blank page
    has a handful, a page with plots and thumbnails has many."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return len(set(zlib.decompress(idat)))


class Page:
    def __init__(self, ws):
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, name, timeout=30):
        deadline = time.time() + timeout
        while not any(e.get("method") == name for e in self.events):
            if time.time() > deadline:
                raise RuntimeError(f"no {name} within {timeout}s")
            self.ws.settimeout(max(0.1, deadline - time.time()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
        self.ws.settimeout(None)

    def drain(self, secs):
        end = time.time() + secs
        while time.time() < end:
            self.ws.settimeout(max(0.05, end - time.time()))
            try:
                self.events.append(json.loads(self.ws.recv()))
            except websocket.WebSocketTimeoutException:
                break
        self.ws.settimeout(None)


CHECK_JS = r"""(() => {
  const svgs = [...document.querySelectorAll('svg')];
  const imgs = [...document.querySelectorAll('img')];
  return JSON.stringify({
    svg: svgs.length,
    svg_empty: svgs.filter(s => { const r = s.getBoundingClientRect();
                                  return !(r.width > 0 && r.height > 0) || s.childElementCount === 0; }).length,
    img: imgs.length,
    img_broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
    height: document.documentElement.scrollHeight,
    title: document.title,
  });
})()"""


def check(chromium, report, shot, min_svg, min_img):
    prof = tempfile.mkdtemp(prefix="joust-chromium-")
    proc = subprocess.Popen([chromium, "--headless", "--disable-gpu", "--no-sandbox",
                             "--no-first-run", "--hide-scrollbars", "--remote-debugging-port=0",
                             f"--user-data-dir={prof}", "--window-size=1100,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            # its singleton socket folder goes into the profile, removed below
                            env={**os.environ, "TMPDIR": prof})
    problems = []
    try:
        port_file = os.path.join(prof, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        page = Page(websocket.create_connection(url, timeout=30, suppress_origin=True))
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.call(f"{domain}.enable")
        target = "file://" + os.path.abspath(report)
        page.call("Page.navigate", url=target)
        page.wait_event("Page.loadEventFired")
        page.drain(0.5)
        info = json.loads(page.call("Runtime.evaluate", expression=CHECK_JS,
                                    returnByValue=True)["result"]["value"])
        metrics = page.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        page.call("Emulation.setDeviceMetricsOverride", width=1100,
                  height=int(min(size["height"], 16000)), deviceScaleFactor=1, mobile=False)
        import base64
        png = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(shot, "wb") as f:
            f.write(base64.b64decode(png))
        page.drain(0.2)
        for e in page.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Log.entryAdded" and p["entry"]["level"] == "error":
                problems.append("console error: " + p["entry"].get("text", "")[:200])
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                problems.append("console.error: " + json.dumps(p.get("args", []))[:200])
            elif m == "Runtime.exceptionThrown":
                problems.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:200])
            elif m == "Network.requestWillBeSent":
                u = p["request"]["url"]
                if not u.startswith("data:") and u != target:
                    problems.append("network request: " + u[:200])
        distinct = png_distinct_bytes(shot)
        info["screenshot_distinct_bytes"] = distinct
        if info["svg"] < min_svg:
            problems.append(f"{info['svg']} plots rendered, expected at least {min_svg}")
        if info["svg_empty"]:
            problems.append(f"{info['svg_empty']} plots have no size or no content")
        if info["img"] < min_img:
            problems.append(f"{info['img']} thumbnails, expected at least {min_img}")
        if info["img_broken"]:
            problems.append(f"thumbnails that did not decode: {info['img_broken'][:5]}")
        if distinct < 64:
            problems.append(f"the screenshot looks blank ({distinct} distinct byte values)")
        info["problems"] = problems
        print(json.dumps(info))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["rm", "-rf", prof])
    return problems


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    probs = check(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    for p in probs:
        print("FAIL:", p, file=sys.stderr)
    sys.exit(1 if probs else 0)
