"""HTTPS straight from `walletdesk serve --tls-cert --tls-key`: a client that trusts the
certificate talks to it, one that does not is refused, and plain HTTP gets nowhere.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import START_TIMEOUT, ServerProcess


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture(scope="module")
def certificate(work: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "walletdesk test")])
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = work / "cert.pem", work / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def https_server(
    certificate: tuple[Path, Path], sqlite_template: Path, work: Path
) -> Iterator[ServerProcess]:
    """One server for the module: starting one takes seconds and these tests only read."""
    database = work / "walletdesk.db"
    shutil.copy(sqlite_template, database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETDESK_")}
    env |= {
        "WALLETDESK_DATABASE_URL": f"sqlite:///{database}",
        "WALLETDESK_GATEWAY_SANDBOX_PATH": str(work / "gateway.db"),
    }
    server = _start(certificate, env, work)
    try:
        yield server
    finally:
        status = server.stop()
        assert status in (0, -15), server.log()


def test_health_answers_over_https_with_the_served_certificate(
    https_server: ServerProcess, certificate: tuple[Path, Path]
) -> None:
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    with httpx.Client(verify=trusting, timeout=10) as client:
        answer = client.get(f"{https_server.url}/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "database": True}


def test_a_client_that_does_not_trust_the_certificate_is_refused(
    https_server: ServerProcess,
) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https_server.url}/health", timeout=10)


def test_plain_http_gets_no_answer(https_server: ServerProcess) -> None:
    plain = https_server.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/health", timeout=10)


def _start(certificate: tuple[Path, Path], env: dict[str, str], work: Path) -> ServerProcess:
    for _ in range(3):  # the free port may be taken by someone else before the server binds
        server = _spawn(certificate, env, work)
        if _wait_healthy(server, certificate[0]):
            return server
        if "address already in use" not in server.log().lower():
            raise AssertionError(f"server exited while starting\n{server.log()}")
    raise AssertionError("could not find a free port for the server")


def _spawn(certificate: tuple[Path, Path], env: dict[str, str], work: Path) -> ServerProcess:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cert, key = certificate
    command = [sys.executable, "-m", "walletdesk.cli", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    log_path = work / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    return ServerProcess(f"https://127.0.0.1:{port}", process, log_path)


def _wait_healthy(server: ServerProcess, cert: Path) -> bool:
    """Poll /health over HTTPS until it answers; False if the process exited first."""
    trusting = ssl.create_default_context(cafile=str(cert))
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(verify=trusting, timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(f"{server.url}/health").status_code == 200:
                    return True
            except httpx.TransportError:
                pass  # not listening yet
            try:
                server.process.wait(timeout=0.1)  # doubles as the pause between polls
                return False
            except subprocess.TimeoutExpired:
                continue
    server.kill()
    raise AssertionError(
        f"/health did not answer over HTTPS within {START_TIMEOUT}s\n{server.log()}"
    )
