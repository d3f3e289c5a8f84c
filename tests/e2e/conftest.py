"""A real `walletdesk serve` process on a free port, over the `database_url` test database.

The server runs as a child process, exactly as an operator starts it: settings come from
WALLETDESK_* variables, the database is the (already migrated) one the `database_url` fixture
made, and the sandbox card gateway keeps its charges in a file of the test's own. Tests talk to it
over HTTP and read the database through their own `Database` to check what it did.

Every test under tests/e2e is marked `e2e` (select with `pytest -m e2e` or `pytest tests/e2e`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from walletdesk.db import Database

ADMIN_TOKEN = "e2e-admin-token"
START_TIMEOUT = 45.0  # seconds until /health must answer; the machine is shared and busy
STOP_TIMEOUT = 20.0
HERE = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: talks HTTP to a real `walletdesk serve` process")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """One running `walletdesk serve`; `url` is its base URL."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """Crash it: SIGKILL, no chance to finish or roll back anything itself."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> int:
        """Shut it down the way an operator does (SIGTERM); returns its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
            raise AssertionError(
                f"server did not stop within {STOP_TIMEOUT}s of SIGTERM\n{self.log()}"
            ) from None


@dataclass
class ServerLauncher:
    """Starts servers on one database; stops whichever are still running at the end."""

    database_url: str
    sandbox_path: Path
    work_dir: Path
    started: list[ServerProcess] = field(default_factory=list)

    def start(self, **settings: str) -> ServerProcess:
        """A server with WALLETDESK_<NAME> = value for each extra setting, once /health is up."""
        for _ in range(3):  # the free port may be taken by someone else before the server binds
            server = self._spawn(settings)
            if self._wait_healthy(server):
                self.started.append(server)
                return server
            if "address already in use" not in server.log().lower():
                raise AssertionError(f"server exited while starting\n{server.log()}")
        raise AssertionError("could not find a free port for the server")

    def _spawn(self, settings: dict[str, str]) -> ServerProcess:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETDESK_")}
        env |= {
            "WALLETDESK_DATABASE_URL": self.database_url,
            "WALLETDESK_GATEWAY_SANDBOX_PATH": str(self.sandbox_path),
            "WALLETDESK_ADMIN_TOKEN": ADMIN_TOKEN,
            "WALLETDESK_DATABASE_POOL_SIZE": "25",
            **{f"WALLETDESK_{name.upper()}": value for name, value in settings.items()},
        }
        log_path = self.work_dir / f"server-{port}.log"
        command = [sys.executable, "-m", "walletdesk.cli", "serve"]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=self.work_dir,  # no stray .env file from the developer's checkout
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return ServerProcess(f"http://127.0.0.1:{port}", process, log_path)

    def _wait_healthy(self, server: ServerProcess) -> bool:
        """Poll /health until it answers 200; False if the process exited first."""
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=server.url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                try:
                    answer = client.get("/health")
                    if answer.status_code == 200 and answer.json()["database"] is True:
                        return True
                except httpx.TransportError:
                    pass  # not listening yet
                try:
                    server.process.wait(timeout=0.1)  # doubles as the pause between polls
                    return False
                except subprocess.TimeoutExpired:
                    continue
        server.kill()
        raise AssertionError(f"/health did not answer within {START_TIMEOUT}s\n{server.log()}")

    def stop_all(self) -> None:
        failures = []
        for server in self.started:
            if server.process.poll() is not None:
                continue  # killed on purpose by the test
            status = server.stop()
            # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal (exit -15).
            if status not in (0, -signal.SIGTERM):
                failures.append(f"{server.url} exited with {status}\n{server.log()}")
        assert not failures, "\n".join(failures)


@pytest.fixture
def sandbox_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox_gateway.db"


@pytest.fixture
def e2e_db(database_url: str) -> Iterator[Database]:
    """The test's own view of the server's database, for set-up and for checking results."""
    database = Database(database_url, pool_size=5)
    yield database
    database.dispose()


@pytest.fixture
def launch_server(
    database_url: str, sandbox_path: Path, tmp_path: Path
) -> Iterator[Callable[..., ServerProcess]]:
    """Start (more) servers on the test database: `launch_server(idempotency_lock_seconds="1")`."""
    launcher = ServerLauncher(database_url, sandbox_path, tmp_path)
    try:
        yield launcher.start
    finally:
        launcher.stop_all()


@pytest.fixture
def server(launch_server: Callable[..., ServerProcess]) -> str:
    """The base URL of a running server; it is stopped (and must exit cleanly) after the test."""
    return launch_server().url
