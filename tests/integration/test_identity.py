"""Identity through the HTTP API on a real database: sign-up to payment, and every guard on the way.

Codes are read where the customer would read them: the message waiting in the outbox.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from walletdesk.app import create_app
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.kit.clock import FrozenClock
from walletdesk.notify.models import OutboxMessage
from walletdesk.notify.service import open_params
from walletdesk.wallet.gateway import SandboxGateway
from walletdesk.wallet.service import cards, customers, topups
from walletdesk.wallet.service.customers import find_by_contact

PASSWORD = "plum blossom river 42"
PIN = "258036"


@pytest.fixture
def client(db: Database, tmp_path: Path, frozen_clock: FrozenClock) -> Iterator[TestClient]:
    settings = Settings(
        database_url=db.url,
        gateway_sandbox_path=tmp_path / "gateway.db",
        run_worker_in_process=False,
    )
    app = create_app(settings, db, SandboxGateway(settings.gateway_sandbox_path))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def merchant(db: Database) -> str:
    with db.unit_of_work() as session:
        customers.create_merchant(session, "SHOP", "Shop", currencies=("CNY",))
    return "SHOP"


SECRET_EVENTS = ("one_time_code", "password_reset_code", "password_reset_link")


def latest_secret(db: Database, destination: str, key: str = "code") -> str:
    """What the newest code or link message to `destination` carries."""
    with db.unit_of_work() as session:
        message = session.execute(
            select(OutboxMessage)
            .where(
                OutboxMessage.destination == destination,
                OutboxMessage.event.in_(SECRET_EVENTS),
            )
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        ).scalar_one()
        return str(open_params(message)[key])


def events_for(db: Database, destination: str) -> list[str]:
    with db.unit_of_work() as session:
        return list(
            session.execute(
                select(OutboxMessage.event)
                .where(OutboxMessage.destination == destination)
                .order_by(OutboxMessage.id)
            ).scalars()
        )


def register(client: TestClient, db: Database, phone: str) -> None:
    answer = client.post(
        "/v1/auth/register", json={"name": "测试", "password": PASSWORD, "phone": phone}
    )
    assert answer.status_code == 202
    code = latest_secret(db, phone)
    assert (
        client.post("/v1/auth/verify-contact", json={"login": phone, "code": code}).status_code
        == 200
    )


def register_email(client: TestClient, db: Database, email: str) -> None:
    client.post("/v1/auth/register", json={"name": "x", "password": PASSWORD, "email": email})
    client.post("/v1/auth/verify-contact", json={"login": email, "code": latest_secret(db, email)})


def login(client: TestClient, phone: str, device: str = "phone-A", password: str = PASSWORD) -> Any:
    return client.post(
        "/v1/auth/login", json={"login": phone, "password": password, "device_id": device}
    )


def signed_in(
    client: TestClient, db: Database, phone: str, device: str = "phone-A"
) -> dict[str, str]:
    """Headers of a customer registered, logged in on a verified device, with a PIN."""
    register(client, db, phone)
    token = login(client, phone, device).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    code = latest_secret(db, phone)
    assert (
        client.post("/v1/auth/device/verify", json={"code": code}, headers=headers).status_code
        == 200
    )
    pin = client.post(
        "/v1/auth/pin", json={"pin": PIN}, headers={**headers, "Idempotency-Key": "pin"}
    )
    assert pin.status_code == 200, pin.json()
    return headers


def fund(client: TestClient, db: Database, phone: str, amount: int) -> None:
    """Credit the wallet through a real top-up on the sandbox card."""
    gateway = client.app.state.gateway  # type: ignore[attr-defined]
    with db.unit_of_work() as session:
        customer = find_by_contact(session, phone)
        assert customer is not None
        card = cards.add_card(session, gateway, customer.id, "4242424242424242", 12, 2031, "123")
        customer_id, card_id = customer.id, card.id
    with db.unit_of_work() as session:
        topups.top_up(db, session, gateway, customer_id, card_id, amount, "CNY")


def pass_challenge(
    client: TestClient, db: Database, phone: str, answer: Any, headers: dict[str, str]
) -> None:
    assert answer.json()["code"] == "verification_required", answer.json()
    challenge = answer.json()["challenge_id"]
    code = latest_secret(db, phone)
    passed = client.post(f"/v1/challenges/{challenge}/verify", json={"code": code}, headers=headers)
    assert passed.status_code == 200


def pay(
    client: TestClient, headers: dict[str, str], key: str, amount: str, pin: str | None = PIN
) -> Any:
    extra = {"Idempotency-Key": key, **({"X-Payment-PIN": pin} if pin else {})}
    return client.post(
        "/v1/payments",
        json={"merchant_code": "SHOP", "amount": amount, "currency": "CNY"},
        headers={**headers, **extra},
    )


def enroll_totp(client: TestClient, db: Database, phone: str, headers: dict[str, str]) -> Any:
    """Setting up an authenticator needs a code on the factor the customer already has."""
    asked = client.post("/v1/auth/totp/enroll", headers=headers)
    pass_challenge(client, db, phone, asked, headers)
    return client.post("/v1/auth/totp/enroll", headers=headers).json()


# --- sign-up to payment --------------------------------------------------------------------------


def test_new_customer_signs_up_verifies_and_pays_after_step_up(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110001"
    headers = signed_in(client, db, phone)
    fund(client, db, phone, 100_00)
    first = pay(client, headers, "pay-1", "10.00")
    assert first.status_code == 403
    assert first.json()["reason"] == "new_device"
    pass_challenge(client, db, phone, first, headers)
    retried = pay(client, headers, "pay-1", "10.00")
    assert retried.status_code == 201, retried.json()
    assert retried.json()["status"] == "succeeded"
    # The device has paid once: the next small payment needs no second factor.
    assert pay(client, headers, "pay-2", "5.00").status_code == 201


def test_unverified_contact_cannot_move_money(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110002"
    client.post("/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone})
    token = login(client, phone).json()["token"]
    answer = pay(client, {"Authorization": f"Bearer {token}"}, "k", "1.00")
    assert answer.json()["code"] == "contact_not_verified"


def test_new_device_must_be_confirmed_before_paying(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110003"
    signed_in(client, db, phone)
    token = login(client, phone, device="stolen-phone").json()
    assert token["device_verification_required"] is True
    answer = pay(client, {"Authorization": f"Bearer {token['token']}"}, "k", "1.00")
    assert answer.json()["code"] == "device_not_verified"
    assert "new_device_login" in events_for(db, phone)


def test_large_payment_needs_step_up_and_the_challenge_binds_to_that_request(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110004"
    headers = signed_in(client, db, phone)
    fund(client, db, phone, 20_000_00)
    assert pay(client, headers, "warm-up", "1.00").status_code == 403  # first payment: step-up
    challenge = pay(client, headers, "big", "6000.00").json()
    assert challenge["code"] == "verification_required"
    # Without passing it, a retry is refused again; a different body is a different request.
    assert pay(client, headers, "big", "6000.00").json()["code"] == "verification_required"
    code = latest_secret(db, phone)
    client.post(
        f"/v1/challenges/{challenge['challenge_id']}/verify", json={"code": code}, headers=headers
    )
    other_body = pay(client, headers, "big", "6500.00")
    assert other_body.json()["code"] == "verification_required"
    assert pay(client, headers, "big", "6000.00").status_code == 201


def test_step_up_bypass_attempts_all_fail(client: TestClient, db: Database, merchant: str) -> None:
    alice, mallory = "+8613811110005", "+8613811110006"
    alice_headers = signed_in(client, db, alice)
    mallory_headers = signed_in(client, db, mallory, device="phone-M")
    fund(client, db, alice, 20_000_00)
    challenge = pay(client, alice_headers, "big", "6000.00").json()["challenge_id"]
    code = latest_secret(db, alice)
    # Someone else's session cannot answer it, a wrong code does not pass it.
    stolen = client.post(
        f"/v1/challenges/{challenge}/verify", json={"code": code}, headers=mallory_headers
    )
    assert stolen.status_code == 404
    wrong = client.post(
        f"/v1/challenges/{challenge}/verify", json={"code": "000000"}, headers=alice_headers
    )
    assert wrong.status_code == 422
    # A passed challenge that has expired no longer counts.
    client.post(f"/v1/challenges/{challenge}/verify", json={"code": code}, headers=alice_headers)
    from walletdesk.kit import clock

    clock_now = clock.now()
    assert isinstance(clock._current, FrozenClock)
    clock._current.set(clock_now + timedelta(minutes=11))
    assert pay(client, alice_headers, "big", "6000.00").json()["code"] == "verification_required"
    with db.unit_of_work() as session:
        paid = session.execute(
            text("SELECT count(*) FROM wallet_transactions WHERE kind='payment'")
        ).scalar()
    assert paid == 0


def test_wrong_pin_counts_and_locks_payments_for_a_while(
    client: TestClient, db: Database, merchant: str, frozen_clock: FrozenClock
) -> None:
    phone = "+8613811110007"
    headers = signed_in(client, db, phone)
    fund(client, db, phone, 100_00)
    assert pay(client, headers, "k0", "1.00", pin=None).json()["code"] == "pin_required"
    codes = [pay(client, headers, f"k{i}", "1.00", pin="999999").json()["code"] for i in range(5)]
    assert codes == ["pin_wrong"] * 4 + ["pin_locked"]
    assert pay(client, headers, "k9", "1.00").json()["code"] == "pin_locked"  # even the right PIN
    frozen_clock.advance(timedelta(minutes=31))
    assert pay(client, headers, "k9", "1.00").json()["code"] == "verification_required"


# --- enumeration -------------------------------------------------------------------------------


def test_registration_does_not_reveal_a_taken_number(client: TestClient, db: Database) -> None:
    phone = "+8613811110008"
    register(client, db, phone)
    again = client.post(
        "/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone}
    )
    fresh = client.post(
        "/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": "+8613811110009"}
    )
    assert (again.status_code, again.json()) == (fresh.status_code, fresh.json())
    assert events_for(db, phone)[-1] == "registration_attempt"


def test_login_and_forgot_password_answer_alike_for_unknown_accounts(
    client: TestClient, db: Database
) -> None:
    phone = "+8613811110010"
    register(client, db, phone)
    wrong = login(client, phone, password="not the password at all")
    unknown = login(client, "+8613811119999", password="not the password at all")
    assert (wrong.status_code, wrong.json()) == (unknown.status_code, unknown.json())
    known = client.post("/v1/auth/password/forgot", json={"login": phone, "channel": "sms"})
    nobody = client.post(
        "/v1/auth/password/forgot", json={"login": "+8613811119999", "channel": "sms"}
    )
    assert (known.status_code, known.json()) == (nobody.status_code, nobody.json())


# --- login throttling ----------------------------------------------------------------------------


def test_failed_logins_slow_down_then_lock_for_a_while_and_notify(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    phone = "+8613811110011"
    register(client, db, phone)
    for _ in range(10):
        assert login(client, phone, password="wrong password!").status_code == 401
        frozen_clock.advance(timedelta(minutes=2))  # wait out each growing delay
    assert "account_locked" in events_for(db, phone)
    assert login(client, phone).status_code == 401  # locked: even the right password waits
    frozen_clock.advance(timedelta(minutes=16))
    assert login(client, phone).status_code == 200  # the lock ends by itself


def test_growing_delay_refuses_even_the_right_password_during_the_wait(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    phone = "+8613811110012"
    register(client, db, phone)
    for _ in range(4):
        login(client, phone, password="wrong password!")
    assert login(client, phone).status_code == 401
    frozen_clock.advance(timedelta(seconds=3))
    assert login(client, phone).status_code == 200


# --- password reset --------------------------------------------------------------------------


def _reset_link_token(db: Database, email: str) -> str:
    link = latest_secret(db, email, key="link")
    assert link.startswith("http://127.0.0.1:8000/reset-password#token=")
    return link.split("#token=")[1]


def test_reset_link_works_once_and_ends_every_session(client: TestClient, db: Database) -> None:
    email = "reset@example.com"
    register_email(client, db, email)
    token = login(client, email).json()["token"]
    client.post("/v1/auth/password/forgot", json={"login": email, "channel": "email"})
    secret = _reset_link_token(db, email)
    assert len(secret) >= 43  # 256 bits, base64url
    new = "a brand new passphrase"
    assert (
        client.post(
            "/v1/auth/password/reset", json={"token": secret, "new_password": new}
        ).status_code
        == 200
    )
    again = client.post(
        "/v1/auth/password/reset", json={"token": secret, "new_password": "another one here"}
    )
    assert again.json()["code"] == "code_invalid"
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login(client, email, password=new).status_code == 200
    assert "password_changed" in events_for(db, email)


def test_reset_link_expires_and_a_newer_one_replaces_it(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    email = "expiry@example.com"
    register_email(client, db, email)
    client.post("/v1/auth/password/forgot", json={"login": email, "channel": "email"})
    first = _reset_link_token(db, email)
    client.post("/v1/auth/password/forgot", json={"login": email, "channel": "email"})
    second = _reset_link_token(db, email)
    body = {"new_password": "a brand new passphrase"}
    assert client.post("/v1/auth/password/reset", json={"token": first, **body}).status_code == 422
    frozen_clock.advance(timedelta(minutes=61))
    assert client.post("/v1/auth/password/reset", json={"token": second, **body}).status_code == 422


def test_sms_reset_code_allows_only_five_guesses(client: TestClient, db: Database) -> None:
    phone = "+8613811110013"
    register(client, db, phone)
    client.post("/v1/auth/password/forgot", json={"login": phone, "channel": "sms"})
    code = latest_secret(db, phone)
    body = {"login": phone, "new_password": "a brand new passphrase"}
    for guess in ("000001", "000002", "000003", "000004", "000005"):
        if guess != code:
            client.post("/v1/auth/password/reset", json={**body, "code": guess})
    late = client.post("/v1/auth/password/reset", json={**body, "code": code})
    assert late.json()["code"] == "code_invalid"


def test_reset_page_sends_no_referrer(client: TestClient) -> None:
    page = client.get("/reset-password")
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "no-referrer"


def test_reset_link_host_comes_from_settings_not_the_request(
    client: TestClient, db: Database
) -> None:
    email = "host@example.com"
    register_email(client, db, email)
    client.post(
        "/v1/auth/password/forgot",
        json={"login": email, "channel": "email"},
        headers={"Host": "evil.example"},
    )
    assert "evil.example" not in latest_secret(db, email, key="link")


# --- one-time codes ------------------------------------------------------------------------------


def test_codes_are_single_use_voided_after_five_misses_and_replaced_on_resend(
    client: TestClient, db: Database
) -> None:
    phone = "+8613811110014"
    client.post("/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone})
    first = latest_secret(db, phone)
    client.post("/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone})
    second = latest_secret(db, phone)

    def verify(code: str) -> Any:
        return client.post("/v1/auth/verify-contact", json={"login": phone, "code": code})

    if first != second:
        assert verify(first).status_code == 422  # the resend replaced it
    for miss in range(5):
        wrong = f"{(int(second) + miss + 1) % 1_000_000:06d}"
        verify(wrong)
    assert verify(second).status_code == 422  # voided by the misses
    client.post("/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone})
    third = latest_secret(db, phone)
    assert verify(third).status_code == 200
    assert verify(third).status_code == 422  # single use


def test_codes_are_never_stored_in_clear(client: TestClient, db: Database) -> None:
    phone = "+8613811110015"
    client.post("/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone})
    code = latest_secret(db, phone)
    with db.unit_of_work() as session:
        for table in ("one_time_codes", "outbox_messages"):
            for row in session.execute(text(f"SELECT * FROM {table}")):
                assert code not in " ".join(str(value) for value in row)


# --- TOTP -----------------------------------------------------------------------------------------


def test_totp_enrolment_replay_and_recovery_codes(
    client: TestClient, db: Database, frozen_clock: FrozenClock, merchant: str
) -> None:
    phone = "+8613811110016"
    headers = signed_in(client, db, phone)
    enrolment = enroll_totp(client, db, phone, headers)
    assert enrolment["otpauth_uri"].startswith("otpauth://totp/")
    assert "<svg" in enrolment["qr_svg"]
    totp = pyotp.TOTP(enrolment["secret"])
    code = totp.at(frozen_clock.now())
    confirmed = client.post("/v1/auth/totp/confirm", json={"code": code}, headers=headers).json()
    recovery = confirmed["recovery_codes"]
    assert len(recovery) == 10
    fund(client, db, phone, 20_000_00)
    challenge = pay(client, headers, "big", "6000.00").json()["challenge_id"]
    replay = client.post(f"/v1/challenges/{challenge}/verify", json={"code": code}, headers=headers)
    assert replay.status_code == 422  # the enrolment code's time step is spent
    frozen_clock.advance(timedelta(seconds=30))
    fresh = totp.at(frozen_clock.now())
    assert (
        client.post(
            f"/v1/challenges/{challenge}/verify", json={"code": fresh}, headers=headers
        ).status_code
        == 200
    )
    second = pay(client, headers, "big-2", "6000.00").json()["challenge_id"]
    assert (
        client.post(
            f"/v1/challenges/{second}/verify", json={"code": recovery[0]}, headers=headers
        ).status_code
        == 200
    )
    third = pay(client, headers, "big-3", "6000.00").json()["challenge_id"]
    assert (
        client.post(
            f"/v1/challenges/{third}/verify", json={"code": recovery[0]}, headers=headers
        ).status_code
        == 422
    )


def test_password_reset_does_not_bypass_two_factor(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    phone = "+8613811110017"
    headers = signed_in(client, db, phone)
    secret = enroll_totp(client, db, phone, headers)["secret"]
    client.post(
        "/v1/auth/totp/confirm",
        json={"code": pyotp.TOTP(secret).at(frozen_clock.now())},
        headers=headers,
    )
    client.post("/v1/auth/password/forgot", json={"login": phone, "channel": "sms"})
    body = {
        "login": phone,
        "code": latest_secret(db, phone),
        "new_password": "a brand new passphrase",
    }
    refused = client.post("/v1/auth/password/reset", json=body)
    assert refused.json()["code"] == "second_factor_required"
    frozen_clock.advance(timedelta(seconds=30))
    body["second_factor"] = pyotp.TOTP(secret).at(frozen_clock.now())
    assert client.post("/v1/auth/password/reset", json=body).status_code == 200


# --- sessions, devices, freezing ----------------------------------------------------------------


def test_sessions_end_when_idle_when_too_old_and_on_logout(
    client: TestClient, db: Database, frozen_clock: FrozenClock
) -> None:
    phone = "+8613811110018"
    register(client, db, phone)
    web = client.post(
        "/v1/auth/login",
        json={"login": phone, "password": PASSWORD, "web": True, "device_id": "browser-1"},
    )
    cookie = web.headers["set-cookie"]
    assert cookie.startswith("__Host-walletdesk_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=lax", "Path=/"):
        assert flag.lower() in cookie.lower()
    web_token = web.json()["token"]
    frozen_clock.advance(timedelta(minutes=16))
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {web_token}"}).status_code == 401
    api_token = login(client, phone).json()["token"]
    api = {"Authorization": f"Bearer {api_token}"}
    assert client.get("/v1/me", headers=api).status_code == 200
    client.post("/v1/auth/logout", headers=api)
    assert client.get("/v1/me", headers=api).status_code == 401
    long_lived = {"Authorization": f"Bearer {login(client, phone).json()['token']}"}
    for _ in range(31):
        frozen_clock.advance(timedelta(days=1))
        client.get("/v1/me", headers=long_lived)  # never idle, but 30 days is the most
    assert client.get("/v1/me", headers=long_lived).status_code == 401


def test_tokens_are_long_random_and_stored_hashed(client: TestClient, db: Database) -> None:
    phone = "+8613811110019"
    register(client, db, phone)
    token = login(client, phone).json()["token"]
    assert len(token) >= 43  # 256 bits in base64url
    with db.unit_of_work() as session:
        stored = " ".join(
            str(v) for row in session.execute(text("SELECT * FROM auth_sessions")) for v in row
        )
    assert token not in stored


def test_revoking_a_device_ends_its_sessions(client: TestClient, db: Database) -> None:
    phone = "+8613811110020"
    headers = signed_in(client, db, phone)
    other = {"Authorization": f"Bearer {login(client, phone, device='tablet').json()['token']}"}
    devices = client.get("/v1/devices", headers=headers).json()
    tablet = next(d for d in devices if not d["current"])
    answer = client.delete(
        f"/v1/devices/{tablet['id']}", headers={**headers, "Idempotency-Key": "rv"}
    )
    assert answer.status_code == 200
    assert client.get("/v1/me", headers=other).status_code == 401
    assert client.get("/v1/me", headers=headers).status_code == 200


def test_freeze_is_immediate_and_unfreeze_needs_a_second_factor(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110021"
    headers = signed_in(client, db, phone)
    fund(client, db, phone, 100_00)
    pass_challenge(client, db, phone, pay(client, headers, "first", "1.00"), headers)
    assert pay(client, headers, "first", "1.00").status_code == 201
    frozen = client.post("/v1/account/freeze", json={}, headers={**headers, "Idempotency-Key": "f"})
    assert frozen.json()["status"] == "frozen"
    refused = pay(client, headers, "after-freeze", "1.00")
    assert (refused.status_code, refused.json()["code"]) == (423, "account_frozen")
    keyed = {**headers, "Idempotency-Key": "u"}
    unfreeze = client.post("/v1/account/unfreeze", json={"password": PASSWORD}, headers=keyed)
    pass_challenge(client, db, phone, unfreeze, headers)
    done = client.post("/v1/account/unfreeze", json={"password": PASSWORD}, headers=keyed)
    assert done.json()["status"] == "active"
    assert pay(client, headers, "after-unfreeze", "1.00").status_code == 201
    assert "account_frozen" in events_for(db, phone)


# --- card numbers never kept -------------------------------------------------------------------

# Digits standing alone: a hex fingerprint or token holds a Luhn-valid run of 13+ digits about
# once in 200 cards (a flaky failure in CI), and a number kept would not sit inside hex.
_CARD_LIKE = re.compile(r"(?<![0-9A-Za-z])\d{13,19}(?![0-9A-Za-z])")


def _luhn(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


def test_card_numbers_and_cvcs_never_reach_the_database_logs_or_answers(
    client: TestClient, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with db.unit_of_work() as session:
        _, token = customers.create_customer(session, "Card Owner", phone="+8613811110022")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "card"}
    number = "4242 4242 4242 4242"
    answer = client.post(
        "/v1/cards",
        json={"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "987"},
        headers=headers,
    )
    assert answer.status_code == 201
    assert "4242424242424242" not in answer.text and "987" not in answer.text
    assert "4242424242424242" not in caplog.text
    with db.unit_of_work() as session:
        tables = [row[0] for row in session.execute(text(_TABLES[session.get_bind().dialect.name]))]
        for table in tables:
            for row in session.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    found = [m for m in _CARD_LIKE.findall(str(value)) if _luhn(m)]
                    assert not found, f"card-like number in {table}: {found}"


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type='table'",
    "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname='public'",
}


def test_login_attempts_are_rate_limited_per_account_with_retry_after(
    client: TestClient, db: Database
) -> None:
    phone = "+8613811110023"
    register(client, db, phone)
    answers = [login(client, phone, password=f"guess number {i}") for i in range(11)]
    assert [a.status_code for a in answers[:10]] == [401] * 10
    assert answers[10].status_code == 429
    assert answers[10].json()["code"] == "rate_limited"
    assert int(answers[10].headers["retry-after"]) > 0


def test_nobody_can_register_away_an_operator_made_customers_number(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110024"
    with db.unit_of_work() as session:
        _, token = customers.create_customer(session, "Integration", phone=phone)
    headers = {"Authorization": f"Bearer {token}"}
    fund(client, db, phone, 10_00)
    answer = client.post(
        "/v1/auth/register", json={"name": "x", "password": PASSWORD, "phone": phone}
    )
    assert answer.status_code == 202
    assert events_for(db, phone)[-1] == "registration_attempt"
    assert login(client, phone).status_code == 401  # no password was set by the attempt
    assert pay(client, headers, "still-works", "1.00", pin=None).status_code == 201


def test_changing_the_phone_needs_both_the_old_and_the_new_number_and_tells_the_old_one(
    client: TestClient, db: Database
) -> None:
    old, new = "+8613811110025", "+8613811110026"
    headers = signed_in(client, db, old)
    body = {"phone": new}
    keyed = {**headers, "Idempotency-Key": "new-phone"}
    asked = client.post("/v1/account/contact", json=body, headers=keyed)
    pass_challenge(client, db, old, asked, headers)
    assert client.post("/v1/account/contact", json=body, headers=keyed).status_code == 202
    wrong = client.post(
        "/v1/account/contact/confirm", json={"what": "phone", "code": "000000"}, headers=headers
    )
    assert wrong.status_code == 422
    code = latest_secret(db, new)
    done = client.post(
        "/v1/account/contact/confirm", json={"what": "phone", "code": code}, headers=headers
    )
    assert done.json()["phone"] == new
    assert events_for(db, old)[-1] == "contact_changed"
    assert "contact_changed" in events_for(db, new)
    assert login(client, new).status_code == 200


def test_a_large_payment_always_tells_the_customer(
    client: TestClient, db: Database, merchant: str
) -> None:
    phone = "+8613811110027"
    with db.unit_of_work() as session:
        _, token = customers.create_customer(session, "Big Spender", phone=phone)
    headers = {"Authorization": f"Bearer {token}"}
    fund(client, db, phone, 20_000_00)
    assert pay(client, headers, "small", "100.00", pin=None).status_code == 201
    assert "large_payment" not in events_for(db, phone)
    assert pay(client, headers, "large", "6000.00", pin=None).status_code == 201
    assert events_for(db, phone)[-1] == "large_payment"


def test_a_forgotten_pin_is_reset_only_with_a_second_factor(
    client: TestClient, db: Database
) -> None:
    phone = "+8613811110028"
    headers = signed_in(client, db, phone)
    forgot = {"pin": "975318", "password": PASSWORD}
    keyed = {**headers, "Idempotency-Key": "new-pin"}
    asked = client.post("/v1/auth/pin", json=forgot, headers=keyed)
    pass_challenge(client, db, phone, asked, headers)
    assert client.post("/v1/auth/pin", json=forgot, headers=keyed).status_code == 200
    assert events_for(db, phone)[-1] == "pin_changed"
    # A code alone (a stolen phone) is not enough: the old PIN or the password is needed too.
    bare = {"pin": "864209"}
    keyed = {**headers, "Idempotency-Key": "pin-without-proof"}
    pass_challenge(
        client, db, phone, client.post("/v1/auth/pin", json=bare, headers=keyed), headers
    )
    refused = client.post("/v1/auth/pin", json=bare, headers=keyed)
    assert refused.json()["code"] == "pin_change_needs_proof"


def test_a_code_proves_only_the_address_it_was_sent_to(client: TestClient, db: Database) -> None:
    phone, email = "+8613811110029", "kim@example.com"
    client.post(
        "/v1/auth/register",
        json={"name": "Kim", "password": PASSWORD, "phone": phone, "email": email},
    )
    code = latest_secret(db, phone)  # the code went to the phone
    client.post("/v1/auth/verify-contact", json={"login": email, "code": code})
    with db.unit_of_work() as session:
        verified = session.execute(
            text(
                "SELECT phone_verified_at IS NOT NULL, email_verified_at IS NOT NULL"
                " FROM credentials JOIN customers ON customers.id = credentials.customer_id"
                " WHERE customers.phone = :phone"
            ),
            {"phone": phone},
        ).one()
    assert tuple(bool(v) for v in verified) == (True, False)
    # A reset link goes only to a proven address: none is sent to this email.
    client.post("/v1/auth/password/forgot", json={"login": email, "channel": "email"})
    assert "password_reset_link" not in events_for(db, email)


def test_freezing_signs_out_every_other_session(client: TestClient, db: Database) -> None:
    phone = "+8613811110030"
    headers = signed_in(client, db, phone)
    thief = {
        "Authorization": f"Bearer {login(client, phone, device='stolen-phone').json()['token']}"
    }
    frozen = client.post("/v1/account/freeze", json={}, headers={**headers, "Idempotency-Key": "f"})
    assert frozen.json()["status"] == "frozen"
    assert client.get("/v1/me", headers=thief).status_code == 401
    assert client.get("/v1/me", headers=headers).status_code == 200


def test_a_stolen_password_cannot_enrol_an_authenticator_or_revoke_devices(
    client: TestClient, db: Database
) -> None:
    phone = "+8613811110031"
    owner = signed_in(client, db, phone)
    attacker = {
        "Authorization": f"Bearer {login(client, phone, device='attacker-pc').json()['token']}"
    }
    enrol = client.post("/v1/auth/totp/enroll", headers=attacker)
    assert enrol.json()["code"] == "verified_device_required"
    own_device = next(d for d in client.get("/v1/devices", headers=owner).json() if d["current"])
    revoke = client.delete(
        f"/v1/devices/{own_device['id']}", headers={**attacker, "Idempotency-Key": "r"}
    )
    assert revoke.json()["code"] == "verified_device_required"
    assert client.get("/v1/me", headers=owner).status_code == 200


def test_huge_ids_are_bad_input_not_a_crash(client: TestClient, db: Database) -> None:
    phone = "+8613811110032"
    headers = signed_in(client, db, phone)
    huge = 2**70
    keyed = {**headers, "Idempotency-Key": "huge"}
    assert client.delete(f"/v1/devices/{huge}", headers=keyed).status_code == 422
    assert client.delete(f"/v1/cards/{huge}", headers=keyed).status_code == 422
    assert client.get(f"/v1/transactions?cursor={huge}", headers=headers).status_code == 422


def test_an_email_given_at_sign_up_can_be_proven_later(client: TestClient, db: Database) -> None:
    phone, email = "+8613811110033", "lee@example.com"
    client.post(
        "/v1/auth/register",
        json={"name": "Lee", "password": PASSWORD, "phone": phone, "email": email},
    )
    client.post("/v1/auth/verify-contact", json={"login": phone, "code": latest_secret(db, phone)})
    token = login(client, phone).json()["token"]
    sent = client.post("/v1/auth/verify-email", headers={"Authorization": f"Bearer {token}"})
    assert sent.status_code == 202
    code = latest_secret(db, email)
    assert (
        client.post("/v1/auth/verify-contact", json={"login": email, "code": code}).status_code
        == 200
    )
    client.post("/v1/auth/password/forgot", json={"login": email, "channel": "email"})
    assert "password_reset_link" in events_for(db, email)
