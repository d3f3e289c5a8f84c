"""The voice webhooks as a carrier sees them: signatures, status callbacks, a broken flow."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from walletdesk.app import create_app
from walletdesk.config import Settings
from walletdesk.db import Database
from walletdesk.hotline import flow as flow_module
from walletdesk.hotline.flow import FlowError
from walletdesk.hotline.models import Call, QueueEntry
from walletdesk.hotline.softphone import Softphone
from walletdesk.identity.service import set_pin
from walletdesk.notify.models import OutboxMessage

TOKEN = "demo-twilio-auth-token"
URL = "http://testserver/v1/voice/incoming"
FORM = {"CallSid": "CA0001", "From": "+8613800000001", "To": "+864000000000"}
PIN = "258036"


def _calls(db: Database) -> int:
    with db.unit_of_work() as session:
        return session.execute(select(func.count()).select_from(Call)).scalar_one()


def _signed(url: str, form: dict[str, str], token: str = TOKEN) -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}


def test_a_signed_call_is_answered_with_twiml(client: TestClient, db: Database) -> None:
    answer = client.post(URL, data=FORM, headers=_signed(URL, FORM))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert "<Gather" in answer.text and 'language="zh-CN"' in answer.text
    assert _calls(db) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Twilio-Signature": "forged"},
        _signed(URL, FORM, token="someone-elses-token"),
        _signed(URL, {**FORM, "From": "+8613800000002"}),  # the form was changed on the way
    ],
    ids=["missing", "garbage", "wrong-token", "tampered"],
)
def test_unsigned_or_forged_webhooks_are_refused(
    client: TestClient, db: Database, headers: dict[str, str]
) -> None:
    for path in ("incoming", "step", "wait", "status", "callback?entry=1"):
        url = f"http://testserver/v1/voice/{path}"
        answer = client.post(url, data=FORM, headers=headers)
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["code"] == "voice_signature_invalid"
    assert _calls(db) == 0


def test_behind_a_proxy_the_public_url_is_signed(settings: Settings, db: Database, gateway) -> None:
    public = "https://hotline.example.com"
    app = create_app(settings.model_copy(update={"twilio_public_url": public}), db, gateway)
    with TestClient(app) as client:
        refused = client.post(URL, data=FORM, headers=_signed(URL, FORM))
        assert refused.status_code == 403
        signed = _signed(f"{public}/v1/voice/incoming", FORM)
        assert client.post(URL, data=FORM, headers=signed).status_code == 200


def test_status_callbacks_end_the_call(client: TestClient, db: Database) -> None:
    client.post(URL, data=FORM, headers=_signed(URL, FORM))
    status_url = "http://testserver/v1/voice/status"
    form = {**FORM, "CallStatus": "no-answer"}
    assert client.post(status_url, data=form, headers=_signed(status_url, form)).status_code == 204
    with db.unit_of_work() as session:
        call = session.execute(select(Call)).scalar_one()
        assert call.status == "no_answer" and call.ended_at is not None


def test_a_late_copy_of_the_greeting_after_the_hang_up_hears_goodbye(
    client: TestClient, db: Database
) -> None:
    _post(client, URL, FORM, "idem-first-greeting")
    status_url = "http://testserver/v1/voice/status"
    form = {**FORM, "CallStatus": "completed"}
    assert client.post(status_url, data=form, headers=_signed(status_url, form)).status_code == 204
    with db.unit_of_work() as session:
        path = session.execute(select(Call.path)).scalar_one()
    late = ET.fromstring(_post(client, URL, FORM, "idem-late-greeting"))
    assert [verb.tag for verb in late] == ["Hangup"]
    with db.unit_of_work() as session:
        call = session.execute(select(Call)).scalar_one()
        assert call.status == "completed" and call.path == path


def test_the_softphone_signs_with_the_servers_token(client: TestClient) -> None:
    phone = Softphone(client, "http://testserver", "not-the-token", from_number="+8613800000001")
    with pytest.raises(Exception, match="403"):
        phone.call()


def test_a_broken_operator_flow_stops_start_up(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    broken = tmp_path / "flow.yaml"
    broken.write_text("start: nowhere\nprompts: {}\nstates:\n  a:\n    type: say\n")
    with pytest.raises(FlowError) as error:
        create_app(settings.model_copy(update={"hotline_flow_path": broken}), db)
    assert any(line.startswith("line ") for line in error.value.errors)


# --- a carrier's retries -----------------------------------------------------------------------

STEP = "http://testserver/v1/voice/step"


def _post(client: TestClient, url: str, form: dict[str, str], token: str | None) -> str:
    headers = _signed(url, form)
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    answer = client.post(url, data=form, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.text


def _action(twiml_text: str) -> str:
    """Where the answer's Gather posts the keys."""
    return ET.fromstring(twiml_text).find("Gather").get("action")


@pytest.mark.parametrize("token", ["idem-step-1", None], ids=["token", "fingerprint"])
def test_a_retried_step_is_answered_again_and_acted_on_once(
    client: TestClient, db: Database, customer, token: str | None
) -> None:
    person = customer("张伟")
    form = {**FORM, "From": person.phone}
    greeting = _post(client, URL, form, "idem-incoming")
    assert _post(client, URL, form, "idem-incoming") == greeting
    step_url = "http://testserver" + _action(greeting)
    first = _post(client, step_url, {**form, "Digits": "4"}, token)  # 4: send a reset code
    with db.unit_of_work() as session:
        call = session.execute(select(Call)).scalar_one()
        path_length = len(call.path)
    assert "重置密码的链接或验证码已发送" in first

    assert _post(client, step_url, {**form, "Digits": "4"}, token) == first
    with db.unit_of_work() as session:
        call = session.execute(select(Call)).scalar_one()
        assert len(call.path) == path_length and call.actions.count("send_reset_link") == 1
        sent = session.execute(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.event == "password_reset_code")
        ).scalar_one()
    assert sent == 1


def test_without_a_token_the_keyed_pin_cannot_be_guessed_from_the_call(
    client: TestClient, db: Database, customer
) -> None:
    """A carrier that sends no idempotency token: what the call keeps to recognise a retry of
    the PIN's webhook is no plain hash of the form, which trying all million PINs would undo."""
    person = customer("Alice", language="en")
    with db.unit_of_work() as session:
        set_pin(session, person.id, PIN)
    form = {**FORM, "From": person.phone}
    greeting = _post(client, URL, form, None)
    asked = _post(client, "http://testserver" + _action(greeting), {**form, "Digits": "1"}, None)
    pin_url = "http://testserver" + _action(asked)
    keyed = {**form, "Digits": PIN}
    assert "Your available balance is" in _post(client, pin_url, keyed, None)
    with db.unit_of_work() as session:
        memory = session.execute(select(Call)).scalar_one().memory
    parts = urlsplit(pin_url)
    fingerprint = json.dumps([f"{parts.path}?{parts.query}", sorted(keyed.items())])
    unkeyed = "form:" + hashlib.sha256(fingerprint.encode()).hexdigest()
    assert memory["last_webhook"]["key"].startswith("form:")
    assert memory["last_webhook"]["key"] != unkeyed
    assert PIN not in json.dumps(memory)


def test_the_same_key_at_two_menus_in_a_row_is_two_answers(
    client: TestClient, db: Database
) -> None:
    """Without a token, pressing 1 at the language menu then 1 at the main menu is not a retry."""
    greeting = _post(client, URL, FORM, None)  # an unknown caller: the language menu
    chose = _post(client, "http://testserver" + _action(greeting), {**FORM, "Digits": "1"}, None)
    assert _action(chose) != _action(greeting)
    menu = _post(client, "http://testserver" + _action(chose), {**FORM, "Digits": "1"}, None)
    assert menu != chose
    with db.unit_of_work() as session:
        call = session.execute(select(Call)).scalar_one()
        assert [entry.get("digits") for entry in call.path if "digits" in entry] == ["1", "1"]


def test_an_operator_flow_can_queue_a_caller_on_the_first_webhook(
    settings: Settings, db: Database, gateway, customer, tmp_path: Path
) -> None:
    """A new call's rows are written at the end of its first webhook; a flow that puts a known
    caller straight into the queue still gets an entry that belongs to that call."""
    shipped = (Path(flow_module.__file__).parent / "flows" / "default.yaml").read_text()
    straight = shipped.replace(
        "  welcome_back:\n    type: say\n    prompt: welcome\n    next: check_hours\n",
        "  welcome_back:\n    type: say\n    prompt: welcome\n    next: general_queue\n",
    )
    assert straight != shipped
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text(straight)
    app = create_app(settings.model_copy(update={"hotline_flow_path": flow_file}), db, gateway)
    person = customer("王芳")
    with TestClient(app) as client:
        answer = _post(client, URL, {**FORM, "From": person.phone}, None)
    assert ET.fromstring(answer).find("Enqueue") is not None, answer
    with db.unit_of_work() as session:
        call = session.execute(select(Call)).scalar_one()
        entry = session.execute(select(QueueEntry)).scalar_one()
        assert (entry.call_id, entry.queue, call.status) == (call.id, "general", "queued")
        assert call.contact is not None and call.contact.customer_id == person.id
