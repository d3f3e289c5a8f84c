"""Call steps as TwiML: what a Twilio-compatible carrier reads back from the webhooks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from walletdesk.hotline.twiml import (
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Leave,
    Play,
    Record,
    Redirect,
    Say,
    Step,
    render,
)


def parsed(*steps: Step) -> ET.Element:
    document = render(steps)
    assert document.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(document)
    assert root.tag == "Response"
    return root


def test_say_in_each_language_with_its_voice() -> None:
    root = parsed(Say("您好，欢迎致电钱包客服。", "zh-CN"), Say("Hello & welcome <again>", "en"))
    chinese, english = root
    assert (chinese.tag, chinese.text, chinese.attrib) == (
        "Say",
        "您好，欢迎致电钱包客服。",
        {"language": "zh-CN", "voice": "Polly.Zhiyu"},
    )
    assert (english.text, english.attrib) == (
        "Hello & welcome <again>",
        {"language": "en-US", "voice": "Polly.Joanna"},
    )


def test_a_language_without_a_voice_is_refused() -> None:
    with pytest.raises(ValueError, match="no voice for language 'fr'"):
        render([Say("Bonjour", "fr")])


def test_gather_keys_with_the_prompt_inside() -> None:
    step = Gather(
        "https://hotline.example/calls/CA1/step?state=ask_pin",
        prompts=(Say("请输入六位支付密码。", "zh-CN"),),
        num_digits=6,
        timeout=10,
    )
    (gather,) = parsed(step)
    assert gather.tag == "Gather"
    assert gather.attrib == {
        "input": "dtmf",
        "action": "https://hotline.example/calls/CA1/step?state=ask_pin",
        "numDigits": "6",
        "timeout": "10",
        "actionOnEmptyResult": "true",
    }
    (say,) = gather
    assert (say.tag, say.text, say.get("language")) == ("Say", "请输入六位支付密码。", "zh-CN")


def test_gather_finished_with_hash() -> None:
    (gather,) = parsed(Gather("/step", prompts=(Play("/hold.mp3"),), finish_on_key="#"))
    assert gather.get("finishOnKey") == "#"
    assert gather.get("numDigits") is None
    assert [(child.tag, child.text) for child in gather] == [("Play", "/hold.mp3")]


def test_enqueue_with_a_wait_url_and_leaving_the_queue() -> None:
    enqueue, leave = parsed(Enqueue("fraud", wait_url="/wait", action_url="/after-queue"), Leave())
    assert (enqueue.tag, enqueue.text) == ("Enqueue", "fraud")
    assert enqueue.attrib == {"waitUrl": "/wait", "action": "/after-queue"}
    assert leave.tag == "Leave"


def test_dial_record_redirect_and_hangup() -> None:
    dial, record, redirect, hangup = parsed(
        Dial("+8613800138000", action_url="/dialled", caller_id="+861012345678"),
        Record("/voicemail", max_length=90),
        Redirect("/calls/CA1/step"),
        Hangup(),
    )
    assert (dial.tag, dial.text) == ("Dial", "+8613800138000")
    assert dial.attrib == {"action": "/dialled", "timeout": "30", "callerId": "+861012345678"}
    assert record.attrib == {
        "action": "/voicemail",
        "maxLength": "90",
        "finishOnKey": "#",
        "playBeep": "true",
    }
    assert (redirect.tag, redirect.text) == ("Redirect", "/calls/CA1/step")
    assert hangup.tag == "Hangup" and not list(hangup)


def test_optional_attributes_are_left_out() -> None:
    (dial,) = parsed(Dial("+8613800138000"))
    assert dial.attrib == {"timeout": "30"}
    (enqueue,) = parsed(Enqueue("general", wait_url="/wait"))
    assert enqueue.attrib == {"waitUrl": "/wait"}


def test_the_steps_play_in_order() -> None:
    root = parsed(
        Say("Your balance is 12.50 yuan.", "en"),
        Gather("/step", prompts=(Say("Press star for the main menu.", "en"),), num_digits=1),
        Say("Goodbye.", "en"),
        Hangup(),
    )
    assert [child.tag for child in root] == ["Say", "Gather", "Say", "Hangup"]
