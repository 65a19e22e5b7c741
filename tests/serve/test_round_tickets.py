"""Round tickets and the limits on saving, through the API in-process (no Ray)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from guessme_core.player_files import player_hash
from guessme_serve.rounds import TOMBSTONES, RoundStore, quota_message, shard_paths
from guessme_serve.service import GuessmeService, ServiceSettings
from guessme_serve.tickets import KEY_ENV, KEY_FILE, TicketError, TicketSigner, load_ticket_key

pytestmark = pytest.mark.unit

KEY = b"0123456789abcdef0123456789abcdef"
STROKES = {"strokes": [[[10, 50, 90], [20, 120, 220]]], "width": 280, "height": 280}


class Clock:
    def __init__(self) -> None:
        self.now = 1_796_000_000.0

    def __call__(self) -> float:
        return self.now


def test_tickets_verify_and_refuse_forged_expired_and_future_ones() -> None:
    clock = Clock()
    signer = TicketSigner(KEY, ttl_s=300, clock=clock)
    ticket = signer.issue(7, "sess")
    assert signer.verify(ticket.text) == ticket
    body, mac = ticket.text.rsplit(".", 1)
    forged = body.replace(".7.", ".1.") + "." + mac  # another label, the old signature
    cases = {
        forged: "invalid_ticket",
        TicketSigner(b"another key, also 32 characters..", clock=clock)
        .issue(7, "sess")
        .text: "invalid_ticket",
        "v1.a.b": "invalid_ticket",
        "x" * 500: "invalid_ticket",
    }
    for text, code in cases.items():
        with pytest.raises(TicketError) as err:
            signer.verify(text)
        assert err.value.code == code
    clock.now += 301
    with pytest.raises(TicketError, match="expired"):
        signer.verify(ticket.text)
    clock.now -= 400  # issued "in the future" for this verifier
    with pytest.raises(TicketError, match="future"):
        signer.verify(ticket.text)


def test_the_key_comes_from_the_environment_or_the_state_folder(tmp_path: Path) -> None:
    assert load_ticket_key({KEY_ENV: "s" * 40}) == b"s" * 40
    with pytest.raises(ValueError, match="at least"):
        load_ticket_key({KEY_ENV: "short"})
    first = load_ticket_key({"GUESSME_STATE": str(tmp_path)})
    assert load_ticket_key({"GUESSME_STATE": str(tmp_path)}) == first  # every local replica shares it
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o077 == 0  # readable by its owner only


def round_body(service: GuessmeService, session: str = "s1") -> dict[str, Any]:
    dealt = service.deal(session)
    return {
        **STROKES,
        "target": dealt.target,
        "ticket": dealt.ticket,
        "guess": 1,
        "probabilities": [0.1] * 10,
    }


def stored(service: GuessmeService) -> list[dict[str, Any]]:
    return [
        json.loads(line) for p in shard_paths(service.rounds.folder) for line in p.read_text().splitlines()
    ]


def test_a_reused_ticket_is_refused_409(client: TestClient, service: GuessmeService) -> None:
    body = round_body(service)
    assert client.post("/rounds", json=body).status_code == 201
    again = client.post("/rounds", json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "used_ticket"
    assert len(stored(service)) == 1


def test_a_flood_is_answered_429_stores_at_most_the_quota_and_predictions_go_on(
    client: TestClient, service: GuessmeService
) -> None:
    service.apply(ServiceSettings(round_rate_per_s=1000, round_burst=1000, rounds_per_client_per_day=5))
    codes = [client.post("/rounds", json=round_body(service)).status_code for _ in range(12)]
    assert codes == [201] * 5 + [429] * 7
    assert len(stored(service)) == 5
    refused = client.post("/rounds", json=round_body(service))
    assert refused.json()["code"] == "daily_quota"
    assert refused.headers["retry-after"] == "60"
    assert client.post("/predict", json=STROKES).status_code == 200
    # The short-term rate limit, before any body is read: a burst, then 429.
    service.apply(ServiceSettings(round_rate_per_s=0.01, round_burst=2))
    service.rounds = RoundStore(service.rounds.folder.parent / "other")
    rates = [client.post("/rounds", json=round_body(service)).status_code for _ in range(4)]
    assert rates == [201, 201, 429, 429]
    assert client.post("/rounds", content=b"{not even json").status_code == 429  # refused before parsing


def test_a_save_in_progress_does_not_hold_up_guesses(
    client: TestClient, service: GuessmeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save (rasterise, model, append under the folder's file lock) runs off the event loop: while one
    is still writing, a guess is answered. On the loop, the guess would wait for the save to finish."""
    writing, release, saved = threading.Event(), threading.Event(), threading.Event()
    save = service.add_round

    def slow_save(*args: Any) -> Any:
        writing.set()
        release.wait(timeout=5)  # a lock held by another replica, or a slow network volume
        saved.set()
        return save(*args)

    monkeypatch.setattr(service, "add_round", slow_save)
    body = round_body(service)
    with ThreadPoolExecutor(1) as pool:
        posted = pool.submit(client.post, "/rounds", json=body)
        assert writing.wait(timeout=10)
        guess = client.post("/predict", json=STROKES)
        answered_while_writing = not saved.is_set()
        release.set()
        assert posted.result().status_code == 201
    assert guess.status_code == 200
    assert answered_while_writing


def test_a_post_without_a_ticket_is_403_until_the_client_is_over_its_limit_then_429(
    client: TestClient, service: GuessmeService
) -> None:
    # The order behind bench_rounds' few 403s: the client's limits are checked first, from the request
    # head (cheap, before the body is read), the ticket only in the body. A post without a ticket is
    # refused 403 while its client is under the limits, 429 once over them; neither stores anything.
    service.apply(ServiceSettings(round_rate_per_s=1000, round_burst=1000, rounds_per_client_per_day=2))
    no_ticket = {**round_body(service), "ticket": ""}
    first = client.post("/rounds", json=no_ticket)
    assert (first.status_code, first.json()["code"]) == (403, "invalid_ticket")
    assert [client.post("/rounds", json=round_body(service)).status_code for _ in range(2)] == [201, 201]
    over = client.post("/rounds", json=no_ticket)
    assert (over.status_code, over.json()["code"]) == (429, "daily_quota")
    assert len(stored(service)) == 2


def test_every_refusal_names_its_own_reason_and_limit(client: TestClient, service: GuessmeService) -> None:
    # A refusal's JSON is rendered once per distinct message (api._refusal_body): its words must still
    # follow the settings of the moment, and its headers stay those of a JSON 429.
    answers = []
    # Each apply starts a new rate limiter; the last one has room for both posts, however fast they come.
    for rate, burst, per_day in ((0.01, 1, 200), (0.02, 1, 200), (1000, 100, 1)):
        service.apply(
            ServiceSettings(round_rate_per_s=rate, round_burst=burst, rounds_per_client_per_day=per_day)
        )
        answers += [client.post("/rounds", json=round_body(service)) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 429, 201, 429, 429, 429]
    assert [a.json() for a in answers if a.status_code == 429] == [
        {"detail": "too many drawings: at most 0.6 a minute are saved", "code": "rate_limited"},
        {"detail": "too many drawings: at most 1.2 a minute are saved", "code": "rate_limited"},
        {"detail": quota_message(1), "code": "daily_quota"},
        {"detail": quota_message(1), "code": "daily_quota"},
    ]
    for refused in answers[1::2]:
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["retry-after"] == "60"
        assert int(refused.headers["content-length"]) == len(refused.content)


def test_a_full_disk_budget_answers_507_and_predictions_go_on(
    client: TestClient, service: GuessmeService
) -> None:
    assert client.post("/rounds", json=round_body(service)).status_code == 201
    budget = int(service.rounds.used_bytes() * 1.5)  # room for half a round more
    service.apply(ServiceSettings(player_disk_budget_mb=budget / (1 << 20)))
    codes = [client.post("/rounds", json=round_body(service)).status_code for _ in range(2)]
    assert codes == [507, 507]
    res = client.post("/rounds", json=round_body(service))
    assert res.json()["code"] == "disk_budget"
    assert "not saved" in res.json()["detail"]
    assert sum(p.stat().st_size for p in shard_paths(service.rounds.folder)) <= budget
    assert client.post("/predict", json=STROKES).status_code == 200


def test_delete_my_drawings_writes_a_tombstone_of_the_player_hash(
    client: TestClient, service: GuessmeService
) -> None:
    res = client.post("/rounds/withdrawals", json={"player_id": "player-0001"})
    assert res.status_code == 202
    tomb = json.loads((service.rounds.folder / TOMBSTONES).read_text())
    assert tomb["player"] == player_hash("player-0001")
    assert client.post("/rounds/withdrawals", json={"player_id": "no/slashes"}).status_code == 422


def test_behind_a_proxy_the_client_is_the_address_it_appended(
    client: TestClient, service: GuessmeService
) -> None:
    service.apply(ServiceSettings(round_rate_per_s=0.01, round_burst=1, client_ip_header="x-forwarded-for"))

    def post(forwarded: str) -> int:
        return client.post(
            "/rounds", json=round_body(service), headers={"x-forwarded-for": forwarded}
        ).status_code

    assert post("6.6.6.6, 10.0.0.1") == 201
    assert post("7.7.7.7, 10.0.0.1") == 429  # a made-up first entry does not make a new client
    assert post("10.0.0.2") == 201  # another address
