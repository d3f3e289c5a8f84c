"""Idle connections: `walletdesk serve` keeps one open for WALLETDESK_KEEP_ALIVE_SECONDS, so a
proxy or carrier with a shorter idle timeout closes it first and never sends a request down a
connection the server is closing at that moment."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.e2e.conftest import ServerProcess


def _answered(connection: http.client.HTTPConnection) -> bool:
    """GET /health on the connection as it is (no new one is opened): whether it answered."""
    try:
        connection.request("GET", "/health")
        answer = connection.getresponse()
        answer.read()
        return answer.status == 200
    except (http.client.RemoteDisconnected, ConnectionError):  # the server had closed it
        return False


def _connection(server: ServerProcess) -> http.client.HTTPConnection:
    """A keep-alive connection to `server` that has answered one request."""
    address = urlsplit(server.url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    assert _answered(connection)
    return connection


def test_an_idle_connection_stays_open_for_the_keep_alive_and_no_longer(
    launch_server: Callable[..., ServerProcess],
) -> None:
    patient = launch_server(keep_alive_seconds="5")
    hasty = launch_server(keep_alive_seconds="1")
    kept, dropped = _connection(patient), _connection(hasty)
    try:
        time.sleep(2.5)  # the idle time under test: a real wait on real servers
        assert _answered(kept), "closed before its keep-alive ran out"
        assert not _answered(dropped), "still open after its keep-alive ran out"
    finally:
        kept.close()
        dropped.close()
