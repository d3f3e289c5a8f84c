"""Call steps written as TwiML, the language of Twilio-compatible voice webhooks.

The flow engine decides what a caller hears and does next as a list of steps; this module only
writes them down with the twilio library's VoiceResponse, so that Twilio and any carrier that
speaks TwiML can play them. Speech uses Amazon Polly voices through Twilio (Zhiyu for Mandarin,
Joanna for US English); a TwiML carrier without them uses its own voice for the language.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from twilio.twiml.voice_response import Gather as GatherVerb
from twilio.twiml.voice_response import VoiceResponse

# A flow's language -> (TwiML language, voice)
VOICES: Mapping[str, tuple[str, str]] = {
    "zh-CN": ("zh-CN", "Polly.Zhiyu"),
    "en": ("en-US", "Polly.Joanna"),
}


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    language: str  # a flow language: zh-CN or en


@dataclass(frozen=True, slots=True)
class Play:
    url: str
    loop: int = 1


@dataclass(frozen=True, slots=True)
class Gather:
    """Keys from the phone pad, posted to `action_url` as Digits; empty after silence, so the
    engine counts that attempt too."""

    action_url: str
    prompts: tuple[Say | Play, ...] = ()  # played while the caller may already press keys
    num_digits: int | None = None
    finish_on_key: str | None = None
    timeout: int = 5  # seconds of silence before the keys so far are sent


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Wait in `queue`, hearing whatever `wait_url` answers, until an agent takes the call."""

    queue: str
    wait_url: str
    action_url: str | None = None  # told how the wait ended (bridged, left, hung up)


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the queue (answered to a wait URL); the call goes on at the Enqueue's action URL."""


@dataclass(frozen=True, slots=True)
class Dial:
    number: str  # E.164
    action_url: str | None = None  # told how the dialled leg ended
    timeout: int = 30  # seconds of ringing
    caller_id: str | None = None  # the number the dialled party sees


@dataclass(frozen=True, slots=True)
class Record:
    """A voicemail after a beep; the recording's URL is posted to `action_url`."""

    action_url: str
    max_length: int = 120  # seconds
    finish_on_key: str = "#"


@dataclass(frozen=True, slots=True)
class Redirect:
    url: str


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Step = Say | Play | Gather | Enqueue | Leave | Dial | Record | Redirect | Hangup


def render(steps: Iterable[Step]) -> str:
    """The TwiML document that plays `steps` in order."""
    response = VoiceResponse()
    for step in steps:
        _add(response, step)
    return response.to_xml()


def _add(response: VoiceResponse, step: Step) -> None:
    match step:
        case Say() | Play():
            _speak(response, step)
        case Gather():
            gather = response.gather(
                input="dtmf",
                action=step.action_url,
                num_digits=step.num_digits,
                finish_on_key=step.finish_on_key,
                timeout=step.timeout,
                action_on_empty_result=True,
            )
            for prompt in step.prompts:
                _speak(gather, prompt)
        case Enqueue():
            response.enqueue(step.queue, wait_url=step.wait_url, action=step.action_url)
        case Leave():
            response.leave()
        case Dial():
            response.dial(
                step.number, action=step.action_url, timeout=step.timeout, caller_id=step.caller_id
            )
        case Record():
            response.record(
                action=step.action_url,
                max_length=step.max_length,
                finish_on_key=step.finish_on_key,
                play_beep=True,
            )
        case Redirect():
            response.redirect(step.url)
        case Hangup():
            response.hangup()


def _speak(verb: VoiceResponse | GatherVerb, step: Say | Play) -> None:
    if isinstance(step, Play):
        verb.play(step.url, loop=step.loop)
        return
    if step.language not in VOICES:
        raise ValueError(f"no voice for language {step.language!r} (known: {', '.join(VOICES)})")
    language, voice = VOICES[step.language]
    verb.say(step.text, voice=voice, language=language)
