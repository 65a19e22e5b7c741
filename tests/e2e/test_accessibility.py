"""An axe-core audit (WCAG 2.0-2.2, levels A and AA) of every view of the game, at desktop and phone
size, in each state a player sees: the game's round card, a round being drawn, a won and a lost round,
the end screen; free draw before and after a drawing; the model panel.

axe-core comes from the front end's devDependencies (apps/frontend/package-lock.json, so `npm ci`
installs it) and is injected into the page as axe-core's README describes: load axe.min.js, then
`axe.run(context, {runOnlyTags})`. A check fails on any violation and names the rule, the elements
and axe's summary of what is wrong with each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import DESKTOP, PHONE, draw_digit

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[2] / "apps/frontend/node_modules/axe-core/axe.min.js"
# axe-core's tags for the WCAG 2.x success criteria at levels A and AA (axe-core doc/API.md).
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


def audit(page: Page, where: str) -> list[str]:
    """The WCAG A/AA violations axe finds on the page as it is now, one line per element."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `scripts/setup.sh node` (npm ci installs axe-core)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    results: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        WCAG_A_AA,
    )
    return [
        f"{where}: {v['id']} ({v['impact']}) {' '.join(node['target'])}: {node['failureSummary']}"
        for v in results["violations"]
        for node in v["nodes"]
    ]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_view_passes_an_axe_wcag_audit(page: Page, game_url: str, viewport: dict[str, int]) -> None:
    page.set_viewport_size(viewport)
    found: list[str] = []

    # The game: two rounds, one won (a drawn 3), one given up (lost), then the end screen.
    page.goto(f"{game_url}/?targets=3,5")
    expect(page.get_by_test_id("status")).to_have_text("connected")
    found += audit(page, "game, round card")
    page.get_by_test_id("start").click()
    found += audit(page, "game, drawing")
    draw_digit(page, 3)
    expect(page.get_by_test_id("round-result")).to_contain_text("The AI got it: 3")
    found += audit(page, "game, round won")
    page.get_by_test_id("next-round").click()
    page.get_by_test_id("start").click()
    page.get_by_test_id("give-up").click()
    expect(page.get_by_test_id("round-result")).to_contain_text("No guess")
    found += audit(page, "game, round lost")
    page.get_by_test_id("next-round").click()
    expect(page.get_by_test_id("game-over")).to_be_visible()
    found += audit(page, "game, end screen")

    page.goto(f"{game_url}/?mode=free")
    expect(page.get_by_test_id("status")).to_have_text("connected")
    found += audit(page, "free draw")
    draw_digit(page, 7)
    expect(page.get_by_test_id("guess")).to_have_text("7")
    found += audit(page, "free draw, a guess")

    page.goto(f"{game_url}/?mode=about")
    expect(page.get_by_test_id("status")).to_have_text("connected")
    expect(page.get_by_test_id("model-test-accuracy")).to_contain_text("%")  # the model's details loaded
    found += audit(page, "about the model")

    assert not found, "WCAG 2 A/AA violations (axe-core):\n" + "\n".join(found)
