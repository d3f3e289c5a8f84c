"""Every notification reads whole in both languages: no missing values, no stray braces."""

from __future__ import annotations

import re
from typing import Any

import pytest

from walletdesk.config import get_settings
from walletdesk.notify.templates import (
    AUTO_PARAMS,
    TEMPLATES,
    check_params,
    language_of,
    placeholders,
    render,
)

# One set of params per event; ASCII values, so CJK in an English text can only be a slip.
SAMPLES: dict[str, dict[str, Any]] = {
    "case_reply": {
        "case_number": "2601150016",
        "subject": "Payment failed",
        "reply": "Please send the transaction number",
    },
    "csat_request": {"case_number": "2601150027"},
    "case_email_received": {"case_number": "1234567897", "subject": "My top-up is missing"},
    "hotline_self_service_locked": {},
    "desk_knowledge_check_locked": {},
    "hotline_callback_failed": {"attempts": 3},
    "agent_action": {"done": "froze your account"},
    "support_verification_code": {"code": "482913", "minutes": 10, "purpose": "agent_verify"},
    "complaint_opened": {
        "case_number": "2601150042",
        "original_number": "2601150016",
        "when": "2026-01-15T02:00:00+00:00",
    },
    "dispute_filed": {
        "case_number": "4001234567",
        "transaction_number": "482913005731",
        "amount": "CNY 648.00",
        "merchant": "GameZone",
        "when": "2026-01-22T02:00:00+00:00",
    },
    "dispute_provisional_credit": {"case_number": "4001234567", "amount": "CNY 648.00"},
    "dispute_under_review": {"case_number": "4001234567", "transaction_number": "482913005731"},
    "dispute_won": {"case_number": "4001234567", "amount": "CNY 648.00", "merchant": "GameZone"},
    "dispute_lost": {"case_number": "4001234567", "outcome": "the merchant proved delivery"},
    "dispute_withdrawn": {"case_number": "4001234567", "transaction_number": "482913005731"},
    "one_time_code": {"code": "482913", "minutes": 10, "purpose": "verify_device"},
    "password_reset_link": {"link": "https://wallet.example/reset#token=Qx9z", "minutes": 60},
    "password_reset_code": {"code": "550321", "minutes": 10},
    "new_device_login": {"device": "Pixel 8", "when": "2026-01-15T02:00:00+00:00"},
    "password_changed": {},
    "pin_changed": {},
    "authenticator_enabled": {},
    "contact_changed": {"what": "phone"},
    "account_locked": {"reason": "failed_logins"},
    "account_frozen": {},
    "account_unfrozen": {},
    "large_payment": {"amount": "CNY 8,000.00", "counterparty": "Sunrise Grocery"},
    "risk_hold": {"amount": "CNY 12,500.00"},
    "registration_attempt": {},
    "contact_summary": {
        "case_number": "40012345678",
        "summary": "Refund 7731 traced",
        "next_steps": "It arrives within 3 days",
    },
}
REQUIRED_EVENTS = {
    "one_time_code",
    "password_reset_link",
    "password_reset_code",
    "new_device_login",
    "password_changed",
    "pin_changed",
    "contact_changed",
    "account_locked",
    "account_frozen",
    "account_unfrozen",
    "large_payment",
    "risk_hold",
    "contact_summary",
}
SECURITY_EVENTS = {
    "authenticator_enabled",
    "new_device_login",
    "password_changed",
    "pin_changed",
    "contact_changed",
    "account_locked",
    "large_payment",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
LANGUAGES = ("zh-CN", "en")


def test_every_required_event_has_a_template_and_every_template_a_sample() -> None:
    assert set(TEMPLATES) >= REQUIRED_EVENTS
    assert set(SAMPLES) == set(TEMPLATES)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("event", sorted(SAMPLES))
def test_each_event_renders_whole_in_each_language(event: str, language: str) -> None:
    rendered = render(event, SAMPLES[event], language)
    for text in (rendered.subject, rendered.body):
        assert text.strip()
        assert "{" not in text and "}" not in text, text
        assert "None" not in text
    assert bool(CJK.search(rendered.body)) == (language == "zh-CN")
    assert bool(CJK.search(rendered.subject)) == (language == "zh-CN")


@pytest.mark.parametrize("event", sorted(TEMPLATES))
def test_both_languages_use_exactly_the_declared_params(event: str) -> None:
    template = TEMPLATES[event]
    declared = set(template.params)
    for text in (template.en, template.zh):
        used = placeholders(text.subject) | placeholders(text.body)
        assert used - set(AUTO_PARAMS) == declared, (event, used)


@pytest.mark.parametrize("event", sorted(e for e in SAMPLES if SAMPLES[e]))
def test_a_missing_param_is_refused_by_name_without_echoing_values(event: str) -> None:
    for name in TEMPLATES[event].params:
        params = {k: v for k, v in SAMPLES[event].items() if k != name}
        with pytest.raises(ValueError, match=name) as caught:
            render(event, params, "en")
        for value in params.values():
            assert str(value) not in str(caught.value)


def test_unknown_event_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown notification event"):
        check_params("lottery_win", {})


def test_security_events_are_marked_and_credentials_are_secret() -> None:
    assert {e for e, t in TEMPLATES.items() if t.security} >= SECURITY_EVENTS
    secret = {e for e, t in TEMPLATES.items() if t.secret}
    assert secret == {
        "one_time_code",
        "support_verification_code",
        "password_reset_link",
        "password_reset_code",
    }


def test_values_appear_in_the_text_and_codes_in_words() -> None:
    zh = render("one_time_code", SAMPLES["one_time_code"], "zh-CN")
    assert "482913" in zh.body and "10 分钟" in zh.body and "在新设备上登录" in zh.body
    en = render("account_locked", {"reason": "payment_pin"}, "en")
    assert "payment PIN was entered wrongly" in en.body
    assert get_settings().hotline_number in en.body  # locked: tell them where to call


def test_a_challenge_purpose_reads_the_same_whatever_its_id() -> None:
    body = render("one_time_code", {"code": "1", "minutes": 5, "purpose": "challenge:77"}, "en")
    assert "confirm a sensitive action" in body.body and "77" not in body.body


def test_an_unknown_reason_is_shown_as_the_caller_wrote_it() -> None:
    text = render("account_locked", {"reason": "card reported stolen by the bank"}, "en").body
    assert "card reported stolen by the bank" in text


def test_time_is_shown_in_the_operator_zone_to_the_minute() -> None:
    text = render("new_device_login", SAMPLES["new_device_login"], "en").body
    assert "2026-01-15 10:00 (UTC+08:00)" in text  # Asia/Shanghai, the default zone


def test_sms_carries_the_signature_and_email_a_sign_off() -> None:
    zh = render("pin_changed", {}, "zh-CN")
    assert zh.sms_text().startswith("【walletdesk】")
    en = render("pin_changed", {}, "en")
    assert en.sms_text().startswith("[walletdesk] ")
    assert en.email_body().startswith(en.body) and en.email_body().rstrip().endswith("walletdesk")


@pytest.mark.parametrize(
    ("preference", "expected"),
    [("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("en", "en"), ("en-GB", "en"), (None, "zh-CN")],
)
def test_customer_language_maps_to_a_supported_one(preference: str | None, expected: str) -> None:
    assert language_of(preference) == expected
