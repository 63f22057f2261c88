"""The built book in a real browser: every page opened in headless Chromium, checked, and photographed.

Serves a built ``_build/html`` on a free localhost port (Python's ``http.server`` in a thread) and opens every
page of ``_toc.yml`` in headless Chromium, driven by selenium through the system ``chromedriver``. Each page:

* **console**: no ``SEVERE`` entry in the browser console (JavaScript errors, uncaught promise rejections,
  resources that failed to load), collected through ``goog:loggingPrefs``;
* **files**: no request to the local server answered with an error (a missing script, style sheet, font or
  image), no request to another host (the book is served offline), and every ``<img>`` loaded
  (``naturalWidth > 0``);
* **widgets**: every widget view on the page (``application/vnd.jupyter.widget-view+json``) has its model in the
  page's widget state and was rendered by the widget manager into a ``.widget-subarea``, with no error widget;
* **static controls**: in every rendered widget that has a control (dropdown or slider) and a picture, one
  control is changed (the next option of a dropdown, one arrow-key step of a slider) and the picture must
  change: the pixels of the largest visible ``<img>`` in the widget, captured before and after, differ;
* **screenshot**: a full-page PNG of the page as a reader first sees it, plus the widget's picture before and
  after the control change (``<page>.widgetN.before.png`` / ``.after.png``), saved for review.

One line per page with its findings; the exit status is 1 if any page failed. Run after building the book::

    python tests/browser/check_book.py _build/html --screenshots _build/screenshots

(``make browser-test`` installs Debian's ``chromium`` and ``chromium-driver`` where they are missing and runs
this.) Nothing is downloaded: the browser and the driver are the system's (``--chromium``, ``--chromedriver``),
and with the driver's path given selenium never starts selenium-manager. ``--page book/birds.html`` checks one
page. This file is not collected by pytest (its name does not start with ``test_``).
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import io
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from PIL import Image, ImageChops
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

REPO = Path(__file__).resolve().parents[2]
VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"
# Browsers ask for /favicon.ico on their own when a page declares no icon; that request is not the book's.
IMPLICIT_REQUESTS = {"/favicon.ico"}
# Full-page screenshots stop here (Chromium's largest texture is 16384 px).
SCREENSHOT_MAX_HEIGHT = 16000


# ----------------------------------------------------------------------------------------------------------
# The pages


def toc_pages(toc: Path) -> list[str]:
    """The HTML paths (relative to the build folder) of the documents listed in a Jupyter Book ``_toc.yml``."""
    data = yaml.safe_load(toc.read_text())
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key in ("root", "file"):
                if isinstance(node.get(key), str):
                    files.append(node[key])
            for value in node.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    pages = []
    for name in files:
        stem = name.rsplit(".", 1)[0] if name.endswith((".md", ".ipynb", ".rst")) else name
        pages.append(f"{stem}.html")
    return list(dict.fromkeys(pages))


# ----------------------------------------------------------------------------------------------------------
# The server


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the build folder quietly and records every request answered with an error."""

    errors: list  # set per server: (path, status)

    def log_message(self, format, *args):
        pass

    def log_request(self, code="-", size="-"):
        if isinstance(code, int) and code >= 400:  # http.HTTPStatus is an int
            self.errors.append((urlsplit(self.path).path, int(code)))


@contextmanager
def serve(folder: Path):
    """Serve ``folder`` on 127.0.0.1 at a free port; yields ``(base_url, errors)``, ``errors`` a live list."""
    errors: list = []
    handler = type("Handler", (_Handler,), {"errors": errors})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", errors
    finally:
        server.shutdown()
        server.server_close()


# ----------------------------------------------------------------------------------------------------------
# The browser


def start_browser(chromium: str, chromedriver: str, width: int, height: int) -> webdriver.Chrome:
    """Headless Chromium through the given chromedriver, with the console log recorded."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={width},{height}",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))


def wait_for(predicate, timeout: float, interval: float = 0.25):
    """Poll ``predicate()`` until it returns something truthy or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def await_js(driver, body: str, timeout: float):
    """Run ``body`` (JavaScript returning a promise) and return what it resolves to, or None on timeout."""
    driver.set_script_timeout(timeout)
    script = f"const done = arguments[arguments.length - 1]; Promise.resolve().then(() => {body})" \
             ".then(done, e => done({error: String(e)}));"
    try:
        return driver.execute_async_script(script)
    except TimeoutException:
        return None


# What the page holds: widget views, whether each one rendered, error widgets, images that did not load.
PAGE_STATE_JS = """
const viewMime = arguments[0], stateMime = arguments[1];
const stateIds = new Set();
for (const s of document.querySelectorAll(`script[type="${stateMime}"]`)) {
  try { Object.keys(JSON.parse(s.textContent).state || {}).forEach(k => stateIds.add(k)); } catch (e) {}
}
const views = Array.from(document.querySelectorAll(`script[type="${viewMime}"]`)).map(s => {
  let id = null; try { id = JSON.parse(s.textContent).model_id; } catch (e) {}
  const area = s.previousElementSibling;
  const rendered = !!(area && area.classList.contains('widget-subarea') && area.childElementCount > 0);
  return {model_id: id, has_state: stateIds.has(id), rendered};
});
const brokenImages = Array.from(document.images)
  .filter(i => !(i.complete && i.naturalWidth > 0))
  .map(i => (i.currentSrc || i.src || '(no src)').slice(0, 120));
const external = performance.getEntriesByType('resource').map(e => e.name)
  .filter(u => /^https?:/.test(u) && new URL(u).host !== location.host);
return {views, brokenImages, external,
        errorWidgets: document.querySelectorAll('.jupyter-widgets-error-widget').length};
"""

# Every <img> of the page loaded or failed (lazy images are asked to load now).
IMAGES_SETTLED_JS = """
Promise.all(Array.from(document.images).map(img => {
  img.loading = 'eager';
  return img.complete ? null : new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });
}))
"""


@dataclass
class PageReport:
    page: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def line(self) -> str:
        status = "FAIL" if self.failures else "ok  "
        head = f"{status} {self.page}: " + "; ".join(self.notes) + f" ({self.seconds:.1f} s)"
        return "\n".join([head] + [f"       - {f}" for f in self.failures])


# ----------------------------------------------------------------------------------------------------------
# Widgets: the picture and the controls


def widget_areas(driver) -> list:
    """The rendered widget views of the page (``div.widget-subarea`` before each view script)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(`script[type='${arguments[0]}']`))"
        ".map(s => s.previousElementSibling).filter(a => a && a.classList.contains('widget-subarea'))", VIEW_MIME)


def picture(driver, area):
    """The largest visible, loaded ``<img>`` inside a widget, or None."""
    return driver.execute_script("""
        const imgs = Array.from(arguments[0].querySelectorAll('img')).filter(i => {
          const r = i.getBoundingClientRect();
          return i.complete && i.naturalWidth > 0 && r.width > 0 && r.height > 0 && i.offsetParent !== null;
        });
        imgs.sort((a, b) => b.width * b.height - a.width * a.height);
        return imgs[0] || null;""", area)


def pixels(element) -> Image.Image:
    """What the browser shows of ``element``, as an RGB image (the element is scrolled into view)."""
    return Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")


def changed_fraction(before: Image.Image, after: Image.Image) -> float:
    """Fraction of pixels that differ (1.0 when the sizes differ)."""
    if before.size != after.size:
        return 1.0
    diff = ImageChops.difference(before, after).convert("L").point(lambda v: 255 if v else 0)
    return diff.histogram()[255] / (before.width * before.height)


def controls(area) -> list[tuple[str, object]]:
    """The controls of a widget that switch pictures: ``("dropdown", <select>)`` and ``("slider", handle)``."""
    found = [("dropdown", el) for el in area.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")]
    found += [("slider", el) for el in area.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle")]
    return [(kind, el) for kind, el in found if el.is_displayed()]


def control_label(driver, element) -> str:
    """The description shown beside a control (its widget's ``label.widget-label``), or ''."""
    return driver.execute_script("""
        const w = arguments[0].closest('.widget-dropdown, .widget-slider');
        const l = w && w.querySelector('label.widget-label');
        return l ? l.textContent.trim() : '';""", element) or ""


def change(driver, kind: str, element) -> str | None:
    """Move a control by one step; returns what was done, e.g. ``"'a' -> 'b'"``, or None for a control with a
    single position."""
    if kind == "dropdown":
        select = Select(element)
        options = select.options
        if len(options) < 2:
            return None
        current = next((i for i, o in enumerate(options) if o.is_selected()), 0)
        target = current + 1 if current + 1 < len(options) else current - 1
        old, new = options[current].text, options[target].text
        select.select_by_index(target)
        return f"{old!r} -> {new!r}"
    now, low, top = (element.get_attribute(f"aria-value{a}") for a in ("now", "min", "max"))
    if None in (now, low, top) or float(low) >= float(top):
        return None
    key = Keys.ARROW_LEFT if float(now) >= float(top) else Keys.ARROW_RIGHT
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", element)
    ActionChains(driver).send_keys(key).perform()
    return f"{now} -> {element.get_attribute('aria-valuenow')}"


def check_static_controls(driver, report: PageReport, shots: Path | None, stem: str, timeout: float) -> None:
    """In each rendered widget with controls and a picture, one control step must change the picture."""
    interactive = changed = 0
    for n, area in enumerate(widget_areas(driver), start=1):
        ctrls = controls(area)
        first = picture(driver, area)
        if not ctrls or first is None:
            continue
        interactive += 1
        before = pixels(first)
        tried = []
        for kind, element in ctrls:
            try:
                what = change(driver, kind, element)
            except WebDriverException as err:
                tried.append(f"{kind} {control_label(driver, element)!r}: {err.msg or err}")
                continue
            if what is None:  # one option only: nothing to switch
                continue
            name = f"{kind} {control_label(driver, element)!r}: {what}"

            def new_picture():
                try:
                    img = picture(driver, area)
                    after = pixels(img) if img is not None else None
                except StaleElementReferenceException:  # the widget swapped its picture meanwhile
                    return None
                return after if after is not None and changed_fraction(before, after) > 0 else None

            after = wait_for(new_picture, timeout=min(timeout, 10))
            if after is not None:
                changed += 1
                report.notes.append(f"widget {n}: {name} changed the picture "
                                    f"({100 * changed_fraction(before, after):.0f}% of pixels)")
                if shots is not None:
                    before.save(shots / f"{stem}.widget{n}.before.png")
                    after.save(shots / f"{stem}.widget{n}.after.png")
                break
            tried.append(name)
        else:
            if tried:
                report.failures.append(f"widget {n}: no control changed its picture (tried {'; '.join(tried)})")
            else:
                interactive -= 1
                report.notes.append(f"widget {n}: every control has a single position")
    if interactive:
        report.notes.append(f"{changed}/{interactive} widgets with controls changed their picture")


# ----------------------------------------------------------------------------------------------------------
# A page


def full_page_screenshot(driver, path: Path, max_height: int = SCREENSHOT_MAX_HEIGHT) -> int:
    """The whole page as a PNG: the viewport is made as tall as the page (at most ``max_height`` px), captured
    through the DevTools protocol, then restored. Returns the page's height."""
    width, height = driver.execute_script(
        "return [window.innerWidth, Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)]")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": min(height, max_height), "deviceScaleFactor": 1, "mobile": False})
    try:
        time.sleep(0.5)  # one layout and paint at the new size
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.write_bytes(base64.b64decode(shot["data"]))
    return height


def check_page(driver, base: str, page: str, server_errors: list, shots: Path | None,
               timeout: float) -> PageReport:
    """Open ``page`` and run every check on it (see the module's docstring)."""
    report = PageReport(page)
    start = time.monotonic()
    driver.get_log("browser")  # what earlier pages left behind is not this page's
    server_errors.clear()
    driver.get(base + page)
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete", timeout)

    # Widgets render after the window's load event; wait until every view that can render has.
    def settled():
        state = driver.execute_script(PAGE_STATE_JS, VIEW_MIME, STATE_MIME)
        pending = [v for v in state["views"] if v["has_state"] and not v["rendered"]]
        return None if pending else state

    wait_for(settled, timeout)
    await_js(driver, "window.MathJax && MathJax.startup && MathJax.startup.promise", timeout)
    await_js(driver, IMAGES_SETTLED_JS, timeout)
    time.sleep(0.5)  # late console messages of the first render
    state = driver.execute_script(PAGE_STATE_JS, VIEW_MIME, STATE_MIME)

    views = state["views"]
    if views:
        rendered = sum(v["rendered"] for v in views)
        report.notes.append(f"{rendered}/{len(views)} widgets rendered")
        for v in views:
            if not v["has_state"]:
                report.failures.append(f"widget view of model {v['model_id']} has no widget state on the page "
                                       "(nothing is drawn)")
            elif not v["rendered"]:
                report.failures.append(f"widget of model {v['model_id']} not rendered after {timeout:.0f} s")
    if state["errorWidgets"]:
        report.failures.append(f"{state['errorWidgets']} error widgets (a view could not be created)")

    images = driver.execute_script("return document.images.length")
    report.notes.append(f"{images} images")
    for src in state["brokenImages"]:
        report.failures.append(f"image not loaded: {src}")
    for url in sorted(set(state["external"])):
        report.failures.append(f"request to another host: {url}")

    stem = page.removesuffix(".html").replace("/", "_")
    if shots is not None:
        for old in shots.glob(f"{stem}.widget*.png"):  # pictures of an earlier run
            old.unlink()
        driver.execute_script("window.scrollTo(0, 0)")
        height = full_page_screenshot(driver, shots / f"{stem}.png")
        if height > SCREENSHOT_MAX_HEIGHT:
            report.notes.append(f"screenshot shows the first {SCREENSHOT_MAX_HEIGHT} of {height} px")

    check_static_controls(driver, report, shots, stem, timeout)

    time.sleep(0.3)
    for path, status in sorted(set(server_errors)):
        if path not in IMPLICIT_REQUESTS:
            report.failures.append(f"HTTP {status} for {path}")
    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"
              and urlsplit(e.get("message", "").split(" ", 1)[0]).path not in IMPLICIT_REQUESTS]
    for entry in severe:
        report.failures.append(f"console: {entry.get('message', '')[:300]}")
    report.notes.insert(0, f"{len(severe)} console errors")
    report.seconds = time.monotonic() - start
    return report


# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--screenshots", default="_build/screenshots",
                        help="folder for the PNGs (default: %(default)s); '' saves none")
    parser.add_argument("--toc", type=Path, default=REPO / "_toc.yml",
                        help="the book's _toc.yml (default: %(default)s)")
    parser.add_argument("--page", action="append", default=None,
                        help="check only this page (e.g. book/birds.html); repeatable")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds a page may take to load and render its widgets (default: %(default)s)")
    parser.add_argument("--window", default="1280x1000", help="browser window size, WIDTHxHEIGHT")
    args = parser.parse_args(argv)

    html = args.html.resolve()
    for what, path in (("built book", html / "index.html"), ("toc", args.toc), ("browser", Path(args.chromium)),
                       ("driver", Path(args.chromedriver))):
        if not path.exists():
            print(f"error: no {what} at {path}", file=sys.stderr)
            return 2
    pages = args.page or toc_pages(args.toc)
    shots = Path(args.screenshots) if args.screenshots else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    width, height = (int(v) for v in args.window.lower().split("x"))

    started = time.monotonic()
    reports: list[PageReport] = []
    with serve(html) as (base, server_errors):
        driver = start_browser(args.chromium, args.chromedriver, width, height)
        try:
            print(f"{len(pages)} pages of {html} on {base} in {driver.capabilities.get('browserName')} "
                  f"{driver.capabilities.get('browserVersion')}", flush=True)
            for page in pages:
                if not (html / page).is_file():
                    report = PageReport(page, failures=[f"not built: {html / page} is missing"])
                else:
                    try:
                        report = check_page(driver, base, page, server_errors, shots, args.timeout)
                    except WebDriverException as err:
                        report = PageReport(page, failures=[f"browser error: {err.msg or err}"])
                reports.append(report)
                print(report.line(), flush=True)
        finally:
            driver.quit()

    failed = [r.page for r in reports if r.failures]
    where = f"; screenshots in {shots}" if shots is not None else ""
    print(f"{len(reports) - len(failed)}/{len(reports)} pages passed in {time.monotonic() - started:.0f} s{where}")
    if failed:
        print("failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
