"""Debian's Chromium driven by Debian's chromedriver through python3-selenium, for the
browser tests of the clerks' workspace (test_web*.py): nothing here downloads a browser or a
driver (/usr/bin/chromium and /usr/bin/chromedriver are given explicitly). Also axe-core (from
tests/system/web/node_modules, installed by `make deps`) injected into a page for its
accessibility check, and screenshots under build/screenshots/."""
import atexit
import json
import os
import shutil
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE = os.path.join(ROOT, "tests", "system", "web", "node_modules", "axe-core", "axe.min.js")
SHOTS = os.path.join(ROOT, "build", "screenshots")


_run_dir = []


def run_dir():
    """A directory of this test run's own, removed when the run ends: the browsers' downloads
    and temporary files (their singleton sockets) go there. In /tmp itself, each run left
    its saved CSVs ("gaps-FY2083-84-en (4).csv") and a Chromium directory per browser."""
    if not _run_dir:
        _run_dir.append(tempfile.mkdtemp(prefix="reint-browsers-"))
        atexit.register(shutil.rmtree, _run_dir[0], True)
    return _run_dir[0]


def chromium(ca=None, lang="en-US", width=1366, height=768):
    """A headless Chromium at the given window size. ca: a PEM CA the browser must trust for
    HTTPS (the node's web CA), through an NSS database of its own (a user-data dir's)."""
    assert os.path.exists(CHROMIUM), "chromium is not installed (make deps installs it)"
    assert os.path.exists(CHROMEDRIVER), "chromium-driver is not installed (make deps)"
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=%d,%d" % (width, height), "--lang=" + lang,
              "--disable-features=Translate,OptimizationHints,MediaRouter",
              "--no-first-run", "--no-default-browser-check", "--disable-extensions",
              "--disable-background-networking", "--disable-sync",
              "--disable-component-update", "--metrics-recording-only"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    o.add_experimental_option("prefs", {"intl.accept_languages": lang,
                                        "download.default_directory": run_dir(),
                                        "download.prompt_for_download": False})
    if ca:
        o.add_argument("--ignore-certificate-errors-spki-list=" + spki_hash(ca["leaf"]))
    d = webdriver.Chrome(service=Service(CHROMEDRIVER, env=dict(os.environ, TMPDIR=run_dir())),
                         options=o)
    d.set_page_load_timeout(30)
    d.set_script_timeout(60)
    return d


def spki_hash(cert_path):
    """Base64 SHA-256 of a certificate's public key, the form Chromium's
    --ignore-certificate-errors-spki-list takes (pins exactly that key)."""
    import base64
    import hashlib
    import subprocess
    der = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der,
                          capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def wait(d, pred, timeout=20, what="the page"):
    try:
        return WebDriverWait(d, timeout, poll_frequency=0.1).until(lambda _: pred())
    except TimeoutException:
        raise AssertionError("timed out waiting for %s; page text:\n%s\nconsole:\n%s"
                             % (what, body_text(d), "\n".join(console(d))))


def body_text(d):
    """The page's visible text, read in one script call (an element found first may be
    replaced by the page before its text is read)."""
    return d.execute_script("return document.body ? document.body.innerText : ''") or ""


def console(d):
    """The browser console's lines since the last call (errors, CSP reports, ...)."""
    try:
        return ["%s %s" % (e["level"], e["message"]) for e in d.get_log("browser")]
    except Exception:  # noqa: BLE001
        return []


def h1(d):
    return d.execute_script("const e = document.querySelector('h1');"
                            "return e ? e.innerText : ''") or ""


def wait_h1(d, text, timeout=20):
    wait(d, lambda: text in h1(d), timeout, "a page headed %r" % text)


def screenshot(d, name):
    os.makedirs(SHOTS, exist_ok=True)
    path = os.path.join(SHOTS, name + ".png")
    # The whole page, not only the window: the height of its content.
    height = d.execute_script("return Math.max(document.body.scrollHeight, 600)")
    width = d.get_window_size()["width"]
    d.set_window_size(width, min(height + 140, 4000))
    time.sleep(0.2)
    d.save_screenshot(path)
    return path


def axe(d):
    """Runs axe-core in the page (injected by the test, not served by the node) and returns
    its violations of impact serious or critical."""
    with open(AXE) as f:
        src = f.read()
    d.execute_script(src)
    res = d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations))).catch(e => done('ERR ' + e));")
    assert not res.startswith("ERR"), res
    return [v for v in json.loads(res) if v["impact"] in ("serious", "critical")]


def describe(violations):
    return "\n".join("%s (%s): %s\n  %s" % (v["id"], v["impact"], v["help"],
                                            "\n  ".join(n["html"][:200] for n in v["nodes"][:5]))
                     for v in violations)


def capture_downloads(d):
    """Keeps every Blob the page saves (a CSV, a PNG) for last_download."""
    d.execute_script("""
      window.__blobs = [];
      if (!window.__wrapped) {
        const orig = URL.createObjectURL.bind(URL);
        URL.createObjectURL = (b) => { window.__blobs.push(b); return orig(b); };
        window.__wrapped = true;
      }""")


def last_download(d, binary=False):
    """[type, text] of the last Blob saved since capture_downloads (binary: its first 8
    bytes)."""
    return d.execute_async_script("""
      const done = arguments[arguments.length - 1];
      const b = window.__blobs[window.__blobs.length - 1];
      if (!b) { done(null); return; }
      (%s).then(x => done([b.type, x]));""" % (
        "b.arrayBuffer().then(a => [...new Uint8Array(a.slice(0, 8))])" if binary
        else "b.text()"))


def check_one_tab_stop(d, units):
    """The items matching the CSS selector units (a map's) are one stop of Tab: one has
    tabindex 0, the arrow key moves the focus and that stop to the next, and an item focused
    otherwise (a click) is then the one stop (common/web/dom.js, rovingFocus)."""
    from selenium.webdriver.common.keys import Keys
    stop = units + "[tabindex='0']"
    assert len(d.find_elements("css selector", stop)) == 1
    first = d.find_element("css selector", stop)
    first.send_keys(Keys.ARROW_RIGHT)
    moved = d.execute_script("return document.activeElement")
    assert moved.get_attribute("data-code") != first.get_attribute("data-code")
    assert moved.get_attribute("tabindex") == "0" and first.get_attribute("tabindex") == "-1"
    d.execute_script("document.querySelectorAll(arguments[0])[5].focus()", units)
    stops = d.find_elements("css selector", stop)
    assert len(stops) == 1 and stops[0] == d.execute_script("return document.activeElement")
