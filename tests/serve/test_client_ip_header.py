"""Where the platform puts a trusted proxy in front (Kubernetes), it names the proxy's client-address
header in the environment; a user_config value still wins, and without either no header is trusted."""

from __future__ import annotations

import pytest

from guessme_serve.service import ServiceSettings
from guessme_serve.ws_connections import CLIENT_IP_HEADER_ENV, ConnectionSettings

pytestmark = pytest.mark.unit


def test_the_environment_names_the_trusted_header() -> None:
    settings = ServiceSettings.from_user_config({"round_burst": 3}, {CLIENT_IP_HEADER_ENV: "x-real-ip"})
    assert (settings.client_ip_header, settings.round_burst) == ("x-real-ip", 3.0)


def test_user_config_wins_over_the_environment() -> None:
    environ = {CLIENT_IP_HEADER_ENV: "x-real-ip"}
    settings = ServiceSettings.from_user_config({"client_ip_header": "x-forwarded-for"}, environ)
    assert settings.client_ip_header == "x-forwarded-for"
    assert ServiceSettings.from_user_config({"client_ip_header": ""}, environ).client_ip_header == ""


def test_without_either_no_header_is_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CLIENT_IP_HEADER_ENV, raising=False)
    assert ServiceSettings.from_user_config({}).client_ip_header == ""
    monkeypatch.setenv(CLIENT_IP_HEADER_ENV, "x-real-ip")
    assert ServiceSettings.from_user_config({}).client_ip_header == "x-real-ip"  # os.environ by default


def test_the_socket_cap_trusts_the_same_header(monkeypatch: pytest.MonkeyPatch) -> None:
    # The per-client socket cap (ws_connections) and the saved-round limits (ServiceSettings) must name the
    # same client: behind ingress-nginx every peer is the proxy, so a cap on the peer would count
    # every player as one.
    monkeypatch.setenv(CLIENT_IP_HEADER_ENV, "x-real-ip")
    assert ConnectionSettings.from_user_config({}).client_ip_header == "x-real-ip"
    assert ConnectionSettings.from_user_config({"client_ip_header": ""}).client_ip_header == ""
