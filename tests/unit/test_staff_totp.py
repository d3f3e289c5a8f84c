"""Which authenticator codes a staff sign-in accepts: clock drift of one step, never a replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from walletdesk.kit.crypto import accepted_step

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
NOW = datetime(2026, 1, 15, 2, 0, 10, tzinfo=UTC)
TOTP = pyotp.TOTP(SECRET)
STEP = TOTP.timecode(NOW)


@pytest.mark.parametrize("drift", [-30, 0, 30])
def test_a_code_from_a_phone_one_step_off_is_accepted(drift: int) -> None:
    phone_code = TOTP.at(NOW + timedelta(seconds=drift))
    assert accepted_step(SECRET, phone_code, None, NOW) == STEP + drift // 30


@pytest.mark.parametrize("drift", [-60, 60])
def test_a_code_two_steps_off_is_refused(drift: int) -> None:
    assert accepted_step(SECRET, TOTP.at(NOW + timedelta(seconds=drift)), None, NOW) is None


def test_a_used_code_and_any_older_one_are_refused() -> None:
    assert accepted_step(SECRET, TOTP.at(NOW), STEP, NOW) is None
    assert accepted_step(SECRET, TOTP.at(NOW - timedelta(seconds=30)), STEP, NOW) is None
    assert accepted_step(SECRET, TOTP.at(NOW + timedelta(seconds=30)), STEP, NOW) == STEP + 1


def test_spaces_around_a_typed_code_do_not_matter_but_other_digits_do() -> None:
    assert accepted_step(SECRET, f" {TOTP.at(NOW)} ", None, NOW) == STEP
    wrong = f"{(int(TOTP.at(NOW)) + 1) % 1_000_000:06d}"
    assert accepted_step(SECRET, wrong, None, NOW) is None
