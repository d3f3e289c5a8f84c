"""`walletdesk call` against a real server: the newcomer's first call to the hotline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.integration.wallet_support import Books
from walletdesk.db import Database
from walletdesk.identity.service import set_pin
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.service import customers

PHONE, PIN = "+8613800138000", "258036"


def _call(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETDESK_")}
    command = [sys.executable, "-m", "walletdesk.cli", "call", "--url", server, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_a_call_hears_the_greeting_and_the_balance(
    server: str, e2e_db: Database, sandbox_path: Path
) -> None:
    with e2e_db.unit_of_work() as session:
        person, _ = customers.create_customer(session, "张伟", phone=PHONE, language="zh-CN")
        set_pin(session, person.id, PIN)
        customer_id = person.id
    Books(e2e_db, SandboxGateway(sandbox_path), sandbox_path).fund(customer_id, 88800)

    result = _call(server, "--from", PHONE, "--keys", f"1,{PIN}")
    assert result.returncode == 0, result.stderr
    assert "您好，欢迎致电钱包客服。" in result.stdout
    assert "您的账户余额为：888.00 CNY。" in result.stdout


def test_an_unknown_caller_in_english_reaches_the_queue(server: str) -> None:
    result = _call(server, "--from", "+14155550199", "--lang", "en", "--keys", "0")
    assert result.returncode == 0, result.stderr
    assert "Hello, and thank you for calling walletdesk." in result.stdout
    assert "You are number 1 in line." in result.stdout
