"""Browser tests: Playwright drives Debian's Chromium against a live `dsgw serve` (real OPA).

The gateway is started once per session on SQLite in a temporary state folder, and `dsgw demo`
fills it (participants with their key files, a listed product, a finalised contract, a
delivery with its receipt). Chromium is /usr/bin/chromium (deploy/lib.sh ensure_chromium); no
browser is downloaded. Without it the tests skip with the reason, or fail under CI=true.
Screenshots go to tests/browser/artifacts/<test>/ (gitignored); the folder is printed.
"""

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.policy.opa_process import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "browser" / "artifacts"
# Chromium on the project's closed network: without the background-networking flags it keeps
# trying Google's hosts (.library/env/machines/polyglot.md); --no-sandbox because tests run as
# root in a container. Playwright adds --headless and its own empty profile.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 900}


def chromium_path() -> str | None:
    """Return Debian's Chromium (or DSGW_CHROMIUM_BIN), or None when there is none."""
    candidate = os.environ.get("DSGW_CHROMIUM_BIN") or "/usr/bin/chromium"
    return candidate if os.access(candidate, os.X_OK) else None


def _unavailable(reason: str) -> None:
    """Fail under CI (the browser tests must run there), else skip, saying why."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class World:
    url: str
    state: Path
    ids: dict[str, str]
    keys: Path

    def key(self, role: str) -> Path:
        return self.keys / f"{role}.jwk"


def _dsgw(state: Path, *args: str, cwd: Path, timeout: float = 240):
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--state", str(state), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "DSGW_STATE"},
    )


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """A live `dsgw serve` (its own OPA) on SQLite, filled by `dsgw demo`."""
    base = tmp_path_factory.mktemp("portal")
    state = base / "state"
    port = free_port()
    log_path = base / "serve.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--state", str(state), "serve", "--port", str(port)],
        cwd=base,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "DSGW_STATE"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "dsgw serve did not answer within 90 s"
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        demo = _dsgw(state, "demo", cwd=base)
        assert demo.returncode == 0, demo.stdout + demo.stderr
        env = (state / "demo" / "latest" / "env.sh").read_text()
        ids = dict(
            line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#")
        )
        yield World(url=url, state=state, ids=ids, keys=Path(ids.pop("KEYS").strip("'\"")))
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium under Playwright, headless, with the closed network's flags."""
    executable = chromium_path()
    if executable is None:
        _unavailable(
            f"no Chromium at {os.environ.get('DSGW_CHROMIUM_BIN') or '/usr/bin/chromium'}: run "
            "./deploy/test.sh, whose ensure_chromium installs Debian's chromium and "
            "fonts-noto-cjk (or point DSGW_CHROMIUM_BIN at one)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _unavailable(f"the playwright package is not installed ({exc}): pip install -e '.[test]'")
    playwright = sync_playwright().start()
    try:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as exc:  # Playwright's own error types vary by version
        playwright.stop()
        _unavailable(f"Chromium {executable} does not start under Playwright: {exc}")
    yield launched
    launched.close()
    playwright.stop()


def _folder(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)[:120]
    folder = ARTIFACTS / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


class Pages:
    """Browser contexts for one test: console errors collected, screenshots saved."""

    def __init__(self, browser, world: World, folder: Path) -> None:
        self.browser = browser
        self.world = world
        self.folder = folder
        self.errors: list[str] = []
        self.expected: list[re.Pattern] = []
        self.contexts = []
        self.shots = 0

    def open(self, path: str = "/portal/", *, viewport: dict | None = None, **options):
        """Return a new page (its own context: its own memory, so its own sign-in)."""
        # The browser's own widgets (the file chooser's label) speak the page's language too.
        options.setdefault("locale", "en-GB" if "lang=en" in path else "zh-CN")
        context = self.browser.new_context(
            viewport=viewport or LAPTOP, accept_downloads=True, **options
        )
        self.contexts.append(context)
        page = context.new_page()
        # an error's text, and where it came from (a failed request's text names no URL)
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and self.errors.append(f"{m.text} @ {(m.location or {}).get('url', '')}")
            ),
        )
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.goto(self.world.url + path)
        page.wait_for_selector("#view:not(:has-text('加载中')):not(:has-text('Loading'))")
        return page

    def expect_console_error(self, pattern: str) -> None:
        """Allow console errors matching `pattern` (a failed request the test provokes)."""
        self.expected.append(re.compile(pattern))

    def shot(self, page, name: str) -> Path:
        """Save a full-page screenshot as an artefact; return its path."""
        self.shots += 1
        path = self.folder / f"{self.shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


def open_pages(browser, world, request):
    """Yield `Pages` on `world`'s gateway, screenshots under tests/browser/artifacts/<test>/;
    then close them and fail the test on any console error it did not expect."""
    folder = _folder(request)
    print(f"\nscreenshots: {folder}")
    pages = Pages(browser, world, folder)
    yield pages
    for context in pages.contexts:
        context.close()
    unexpected = pages.unexpected_errors()
    assert not unexpected, f"console errors on the portal's pages: {unexpected}"


@pytest.fixture
def pages(browser, world, request):
    """Pages on the live gateway; the test fails on any console error it did not expect."""
    yield from open_pages(browser, world, request)


def sign_in(page, participant: str, key: Path) -> None:
    """Sign in the way a participant does: type the id, open the JWK file, submit."""
    page.fill("#signin-participant", participant)
    page.set_input_files("#signin-key", str(key))
    page.click("#signin-submit")
    page.wait_for_selector("#signed-in:not([hidden])")
