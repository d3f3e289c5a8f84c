"""`walletdesk call` against a real server: the newcomer's first call to the hotline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.hotline_support import always_open
from tests.integration.wallet_support import Books
from walletdesk.db import Database
from walletdesk.identity.service import set_pin
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.service import customers

PHONE, PIN = "+8613800138000", "258036"


def _call(server: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLETDESK_")}
    env |= {f"WALLETDESK_{name.upper()}": value for name, value in settings.items()}
    command = [sys.executable, "-m", "walletdesk.cli", "call", "--url", server, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def test_a_call_hears_the_greeting_and_the_balance(
    server: str, e2e_db: Database, sandbox_path: Path
) -> None:
    always_open(e2e_db)  # the main menu, whatever the hour the test runs at
    with e2e_db.unit_of_work() as session:
        person, _ = customers.create_customer(session, "张伟", phone=PHONE, language="zh-CN")
        set_pin(session, person.id, PIN)
        customer_id = person.id
    Books(e2e_db, SandboxGateway(sandbox_path), sandbox_path).fund(customer_id, 88800)

    result = _call(server, "--from", PHONE, "--keys", f"1,{PIN}")
    assert result.returncode == 0, result.stderr
    assert "您好，欢迎致电钱包客服。" in result.stdout
    assert "您的可用余额为：888.00 CNY。" in result.stdout


def test_an_unknown_caller_in_english_reaches_the_queue(server: str, e2e_db: Database) -> None:
    always_open(e2e_db)
    result = _call(server, "--from", "+14155550199", "--lang", "en", "--keys", "0")
    assert result.returncode == 0, result.stderr
    assert "Hello, and thank you for calling walletdesk." in result.stdout
    assert "You are number 1 in line." in result.stdout


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed: nothing to speak with"
)
def test_speak_writes_the_greeting_as_speech_in_each_language(
    server: str, e2e_db: Database, tmp_path: Path
) -> None:
    callers = {"zh-CN": ("张伟", PHONE), "en": ("Alice", "+14155550199")}
    with e2e_db.unit_of_work() as session:
        for language, (name, number) in callers.items():
            customers.create_customer(session, name, phone=number, language=language)
    for language, (_, number) in callers.items():
        audio = tmp_path / language
        result = _call(server, "--speak", "--from", number, softphone_audio_dir=str(audio))
        assert result.returncode == 0, result.stderr
        # Each prompt became a WAV file, in order; the first is the greeting, in the caller's
        # language (the TwiML language: zh-CN, en-US), with seconds of speech in it.
        files = sorted(audio.glob("*.wav"))
        assert len(files) >= 2 and all(f.read_bytes()[:4] == b"RIFF" for f in files)
        voice = "zh-CN" if language == "zh-CN" else "en-US"
        assert files[0].name == f"001-{voice}.wav"
        assert files[0].stat().st_size > 8000  # a WAV header alone is 44 bytes
