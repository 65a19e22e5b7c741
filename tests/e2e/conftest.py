"""Browser tests: pytest-playwright driving Debian's chromium against the real serve app.

Playwright's own browser download does not work here, so the launch points at the system chromium
(GUESSME_CHROMIUM, else /usr/bin/chromium, else chromium on PATH). The serve app (session fixture
`serve_app`) serves the built game (apps/frontend/dist, `npm run build` first) at `/`.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page
from support.model_fixtures import TrainedModel
from support.serve_fixtures import ServeApp

from .digit_paths import DIGITS

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("GUESSME_STATE", REPO / ".guessme"))
DIST = REPO / "apps" / "frontend" / "dist"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# Records every WebSocket the page opens, so a test can cut the live connection like a network drop.
TRACK_SOCKETS = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); window.__sockets.push(this); }
  };
})();
"""


def chromium_path() -> str:
    candidates = (os.environ.get("GUESSME_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"))
    for candidate in (*candidates, shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail("no chromium: run scripts/setup.sh chromium (or set GUESSME_CHROMIUM)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": chromium_path(),
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": DESKTOP}


@pytest.fixture(scope="session")
def game_url(serve_app: ServeApp, trained_model: TrainedModel) -> str:
    """The real serve app, serving the real trained model and the built game."""
    if not (DIST / "index.html").is_file():
        pytest.fail("apps/frontend/dist is missing: run `npm --prefix apps/frontend run build` first")
    if serve_app.model_uri != trained_model.uri:  # a model-swap test ran first: serve the good model again
        serve_app.deploy(trained_model.uri)
    info = get_json(f"{serve_app.url}/model")
    assert str(info["model_version"]) == str(trained_model.version), info
    return serve_app.url


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as res:
        return json.load(res)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    path = STATE / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """Errors the page logs (uncaught exceptions included); tests assert there are none."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def draw_digit(page: Page, digit: int) -> None:
    """Draws `digit` with the mouse like a person: press, move along each stroke, release."""
    canvas: Locator = page.get_by_test_id("canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    assert box is not None, "the canvas is not visible"
    margin = 0.15  # people leave some room around their drawing
    for stroke in DIGITS[digit]:
        points = [
            (
                box["x"] + box["width"] * (margin + x * (1 - 2 * margin)),
                box["y"] + box["height"] * (margin + y * (1 - 2 * margin)),
            )
            for x, y in stroke
        ]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=4)
        page.mouse.up()
