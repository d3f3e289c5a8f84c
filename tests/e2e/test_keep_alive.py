"""Idle connections: `walletdesk serve` keeps one open for WALLETDESK_KEEP_ALIVE_SECONDS, so a
proxy or carrier with a shorter idle timeout closes it first and never sends a request down a
connection the server is closing at that moment."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.e2e.conftest import ServerProcess

REQUEST = b"GET /health HTTP/1.1\r\nHost: walletdesk\r\nConnection: keep-alive\r\n\r\n"


def _answered(connection: socket.socket) -> bool:
    """Send /health on the open connection: whether an answer came back."""
    try:
        connection.sendall(REQUEST)
        return connection.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:  # reset: the server had closed it
        return False


def _connection(server: ServerProcess) -> socket.socket:
    """A connection to `server` that has answered one request."""
    address = urlsplit(server.url)
    connection = socket.create_connection((address.hostname, address.port), timeout=10)
    assert _answered(connection)
    return connection


def test_an_idle_connection_stays_open_for_the_keep_alive_and_no_longer(
    launch_server: Callable[..., ServerProcess],
) -> None:
    patient = launch_server(keep_alive_seconds="5")
    hasty = launch_server(keep_alive_seconds="1")
    with _connection(patient) as kept, _connection(hasty) as dropped:
        time.sleep(2.5)  # the idle time under test: a real wait on real servers
        assert _answered(kept), "closed before its keep-alive ran out"
        assert not _answered(dropped), "still open after its keep-alive ran out"
