"""`walletdesk serve` keeps published demo secrets off the network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from walletdesk import config
from walletdesk.cli import app


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    config.get_settings.cache_clear()
    yield
    config.get_settings.cache_clear()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "wallet.example"])
def test_serve_refuses_a_network_address_while_demo_secrets_are_in_use(host: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", host, "--port", "1"])
    assert result.exit_code == 2
    assert "refusing to listen" in result.output
    assert "WALLETDESK_TWILIO_AUTH_TOKEN" in result.output
