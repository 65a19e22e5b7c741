"""The game in a real browser against the real serve app and a real trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from support.serve_fixtures import ServeApp

from .conftest import PHONE, TRACK_SOCKETS, draw_digit, get_json

pytestmark = pytest.mark.e2e

# Each drawn digit must be read correctly by the model. With the game rounds below (3, 8 and 5)
# every digit is drawn once per run.
FREE_DRAW_DIGITS = [0, 1, 2, 4, 6, 7, 9]


def stored_rounds(serve_app: ServeApp) -> list[dict[str, Any]]:
    from guessme_serve.rounds import shard_paths

    return [
        json.loads(line) for p in shard_paths(serve_app.player_data) for line in p.read_text().splitlines()
    ]


def probabilities(page: Page) -> dict[int, float]:
    bars = page.get_by_test_id("probabilities").locator("[data-testid^='prob-']")
    expect(bars).to_have_count(10)
    values = bars.evaluate_all("els => els.map(e => [Number(e.dataset.digit), Number(e.dataset.value)])")
    return {int(d): float(v) for d, v in values}


def test_free_draw_the_ai_reads_hand_drawn_digits(
    page: Page, game_url: str, screenshots: Path, console_errors: list[str]
) -> None:
    page.goto(f"{game_url}/?mode=free")
    expect(page.get_by_test_id("status")).to_have_text("connected")
    guess = page.get_by_test_id("guess")
    for digit in FREE_DRAW_DIGITS:
        draw_digit(page, digit)
        expect(guess).to_have_text(str(digit))
        probs = probabilities(page)
        assert max(probs, key=probs.__getitem__) == digit, probs
        assert probs[digit] > 0.5, probs
        assert abs(sum(probs.values()) - 1) < 0.01, probs
        if digit == 7:
            page.screenshot(path=screenshots / "desktop-free-draw.png")
        page.get_by_test_id("clear").click()
        expect(guess).to_have_text("?")
    # Undo takes back the last stroke: the AI re-reads the 4 without its stem.
    draw_digit(page, 4)
    expect(guess).to_have_text("4")
    with_stem = page.get_by_test_id("prob-4").get_attribute("data-value")
    page.get_by_test_id("undo").click()
    expect(page.get_by_test_id("prob-4")).not_to_have_attribute("data-value", with_stem or "")
    assert console_errors == []


@pytest.mark.parametrize(
    ("viewport", "targets"),
    [pytest.param(None, [3, 8], id="desktop"), pytest.param(PHONE, [5], id="phone")],
)
def test_play_a_game_to_the_end_screen(
    page: Page,
    game_url: str,
    serve_app: ServeApp,
    screenshots: Path,
    console_errors: list[str],
    viewport: dict[str, int] | None,
    targets: list[int],
) -> None:
    name = "phone" if viewport else "desktop"
    if viewport:
        page.set_viewport_size(viewport)
    live_before = get_json(f"{game_url}/model")["live"]["rounds"]
    stored_before = stored_rounds(serve_app)
    page.goto(f"{game_url}/?targets={','.join(map(str, targets))}")
    expect(page.get_by_test_id("status")).to_have_text("connected")
    consent = page.get_by_test_id("consent")
    consent.check()  # share the finished rounds: they are posted to /rounds

    for i, target in enumerate(targets):
        expect(page.get_by_test_id("target")).to_have_text(str(target))
        expect(page.get_by_test_id("round")).to_have_text(f"{i + 1}/{len(targets)}")
        page.get_by_test_id("start").click()
        draw_digit(page, target)
        if i == 0:
            page.screenshot(path=screenshots / f"{name}-drawing.png")
        result = page.get_by_test_id("round-result")
        expect(result).to_contain_text(f"The AI got it: {target}")
        expect(page.get_by_test_id("score")).to_have_text(str(i + 1))
        if i == 0 and not viewport:
            page.screenshot(path=screenshots / "desktop-round-won.png")
        page.get_by_test_id("next-round").click()

    over = page.get_by_test_id("game-over")
    expect(over).to_be_visible()
    expect(page.get_by_test_id("final-score")).to_have_text(str(len(targets)))
    items = page.get_by_test_id("gallery-item")
    expect(items).to_have_count(len(targets))
    for i, target in enumerate(targets):
        expect(items.nth(i)).to_have_attribute("data-won", "true")
        expect(items.nth(i)).to_contain_text(f"The AI thought: {target} (")
    expect(page.get_by_test_id("saved-count")).to_contain_text(f"{len(targets)} drawing")
    page.get_by_test_id("game-over").scroll_into_view_if_needed()
    page.screenshot(path=screenshots / f"{name}-game-over.png", full_page=True)
    # The backend stored the shared rounds as labelled data and counted them for the served model.
    stored = stored_rounds(serve_app)[len(stored_before) :]
    assert [(r["target"], r["guess"], r["won"]) for r in stored] == [(t, t, True) for t in targets]
    assert all(r["strokes"] and r["width"] == r["height"] == 400 for r in stored)
    assert get_json(f"{game_url}/model")["live"]["rounds"] == live_before + len(targets)
    assert console_errors == []


def test_the_socket_reconnects_after_a_drop(page: Page, game_url: str, screenshots: Path) -> None:
    page.add_init_script(TRACK_SOCKETS)
    page.goto(f"{game_url}/?mode=free")
    status = page.get_by_test_id("status")
    expect(status).to_have_text("connected")

    # The network goes away and the live connection drops with it.
    page.context.set_offline(True)
    page.evaluate("window.__sockets.forEach((s) => s.close())")
    expect(status).to_have_text("reconnecting")
    draw_digit(page, 7)  # drawing goes on offline; the latest drawing waits for the connection
    page.screenshot(path=screenshots / "desktop-reconnecting.png")
    expect(page.get_by_test_id("guess")).to_have_text("?")

    # Back online: the socket reconnects by itself (backoff) and the waiting drawing gets its answer.
    page.context.set_offline(False)
    expect(status).to_have_text("connected", timeout=15_000)
    expect(page.get_by_test_id("guess")).to_have_text("7")
    open_sockets = page.evaluate("window.__sockets.filter((s) => s.readyState === WebSocket.OPEN).length")
    assert open_sockets == 1, "the game keeps exactly one live connection"
    assert page.evaluate("window.__sockets.length") >= 2, "a new connection replaced the dropped one"
