"""A softphone that calls the hotline by driving its voice webhooks exactly as a carrier does.

It makes up a CallSid, signs each request (X-Twilio-Signature, with the auth token the server
checks), posts /v1/voice/incoming, and plays the TwiML it gets back: prints each Say (and speaks
it with espeak-ng when asked: aloud, or into WAV files in WALLETDESK_SOFTPHONE_AUDIO_DIR on a
machine without a sound device), answers each Gather with the next group of keys (or what the
person types), follows Redirects and action URLs, waits in a queue by polling its wait URL, shows
the agent when a Dial connects one, and ends with the status callback a carrier sends.

It also takes the hotline's calls: `answer` picks up a callback's dial (posting the answer URL
the dialer named, then the status callbacks), `miss` lets it ring out.

`Softphone` takes any client with httpx's `post(url, data=..., headers=...)`: an httpx.Client
on a real server, or FastAPI's TestClient in tests.
"""

from __future__ import annotations

import select
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import urljoin

import httpx
import typer
from twilio.request_validator import RequestValidator

from walletdesk.config import get_settings
from walletdesk.hotline.replay import TOKEN_HEADER
from walletdesk.hotline.voice_paths import INCOMING, STATUS

MAX_DOCUMENTS = 500  # TwiML answers in one call: a flow that never stops is not a phone call
ESPEAK_VOICES = {"zh-CN": "zh", "en-US": "en"}


class Client(Protocol):
    def post(self, url: str, *, data: dict[str, str], headers: dict[str, str]) -> Any: ...


@dataclass
class Heard:
    """What happened on the call, in order: ("say", language, text), ("keys", digits),
    ("queue", name), ("agent", who), ("hangup", who hung up), ("missed", carrier status)."""

    events: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def said(self) -> list[str]:
        return [event[2] for event in self.events if event[0] == "say"]

    def text(self) -> str:
        return "\n".join(self.said)


def keys_from(text: str | None) -> list[str]:
    """--keys "1,123456#": one group of digits per Gather, in order."""
    return [group.strip() for group in text.split(",")] if text else []


class Softphone:
    def __init__(
        self,
        client: Client,
        base_url: str,
        auth_token: str,
        *,
        from_number: str,
        to_number: str = "+864000000000",
        keys: list[str] | None = None,
        language: str | None = None,
        ask: Callable[[float], str | None] | None = None,
        show: Callable[[str], None] = print,
        speak: bool = False,
        audio_dir: Path | None = None,
        sid: str | None = None,
        hold: float = 0.0,
    ) -> None:
        self.client, self.base_url = client, base_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.sid = sid or f"CA{uuid.uuid4().hex}"  # given: a call the hotline placed
        self.direction = "outbound-api" if sid else "inbound"
        self.from_number, self.to_number = from_number, to_number
        self.keys = list(keys or [])
        self.language = language  # answers a language menu by itself
        self.ask = ask  # a person at the keypad: (timeout seconds) -> keys, or None to hang up
        self.show = show
        self.espeak = shutil.which("espeak-ng") if speak else None
        self.audio_dir = audio_dir  # speech goes to WAV files there rather than a sound device
        self.spoken = 0
        self.heard = Heard()
        # Out of keys while queued: stay on the line, silent, this many seconds for an agent.
        self.hold = hold
        self.hold_deadline: float | None = None

    # --- the call ------------------------------------------------------------------------------

    def call(self) -> Heard:
        self.play_through(self.post(INCOMING))
        self.post(STATUS, CallStatus="completed")
        return self.heard

    def answer(self, answer_url: str) -> Heard:
        """Pick up a call the hotline placed to this phone (a callback's dial)."""
        self.post(STATUS, CallStatus="in-progress")  # the carrier's "answered" event
        self.play_through(self.post(answer_url))
        self.post(STATUS, CallStatus="completed")
        return self.heard

    def miss(self, carrier_status: str = "no-answer") -> None:
        """Let a call the hotline placed ring out (or be busy): only its status arrives."""
        self.note("missed", carrier_status, show=f"(missed call: {carrier_status})")
        self.post(STATUS, CallStatus=carrier_status)

    def play_through(self, document: ET.Element | None) -> None:
        """Play TwiML answers one after another until the call is over."""
        for _ in range(MAX_DOCUMENTS):
            if document is None:
                return
            document = self.play(document)

    def play(self, document: ET.Element, enqueue: ET.Element | None = None) -> ET.Element | None:
        """Play one TwiML answer; the next one to play, or None when the call is over."""
        for verb in document:
            match verb.tag:
                case "Say":
                    self.say(verb)
                case "Play":
                    self.note("play", verb.text or "", show=f"[plays {verb.text}]")
                case "Gather":
                    return self.gather(verb)
                case "Redirect":
                    return self.post(verb.text or "")
                case "Enqueue":
                    return self.wait_in_queue(verb)
                case "Leave":
                    if enqueue is None:
                        continue
                    return self.post(enqueue.get("action", ""), QueueResult="leave")
                case "Dial":
                    who = self.dialled(verb)
                    self.note("agent", who, show=f"*** connected to agent {who} ***")
                    if self.ask is not None:
                        self.ask(float("inf"))  # talk; any line ends the call
                    self.note("hangup", "caller", show="(you hang up)")
                    return None
                case "Record":
                    self.note("record", "", show="[beep: leave a message, then #]")
                    return self.post(
                        verb.get("action", ""), RecordingUrl=f"urn:softphone:{self.sid}"
                    )
                case "Hangup":
                    self.note("hangup", "hotline", show="(the hotline hangs up)")
                    return None
        return None

    def gather(self, verb: ET.Element) -> ET.Element | None:
        for prompt in verb:
            if prompt.tag == "Say":
                self.say(prompt)
        digits = self.next_keys(verb)
        if digits is None:
            self.note("hangup", "caller", show="(you hang up)")
            return None
        self.note("keys", digits, show=f"> {digits or '(silence)'}")
        return self.post(verb.get("action", ""), Digits=digits)

    def wait_in_queue(self, enqueue: ET.Element) -> ET.Element | None:
        self.note("queue", enqueue.text or "", show=f"[waiting in queue {enqueue.text}]")
        self.hold_deadline = time.monotonic() + self.hold
        document = self.post(enqueue.get("waitUrl", ""))
        for _ in range(MAX_DOCUMENTS):
            if document is None:
                return None
            if document.find("Hangup") is not None and document.find("Leave") is None:
                return document
            following = self._play_waiting(document, enqueue)
            if following is _POLL:
                document = self.post(enqueue.get("waitUrl", ""))
            else:
                return following
        return None

    def _play_waiting(self, document: ET.Element, enqueue: ET.Element) -> Any:
        """Wait music and menus: a document that ends without leaving means poll again."""
        verbs = list(document)
        for index, verb in enumerate(verbs):
            if verb.tag == "Gather":
                answer = self.gather(verb)
                if answer is None:
                    return None
                return self._play_waiting(answer, enqueue)
            if verb.tag in ("Leave", "Dial", "Hangup", "Redirect"):
                rest = ET.Element(document.tag)  # what is said before was said already
                rest.extend(verbs[index:])
                return self.play(rest, enqueue)
            if verb.tag == "Say":
                self.say(verb)
        return _POLL

    # --- keys ----------------------------------------------------------------------------------

    def next_keys(self, gather: ET.Element) -> str | None:
        """The next key group (cut as the carrier would: at finishOnKey, after numDigits); or
        the person's keys; None when there is nobody left to press anything."""
        chosen = self._language_key(gather)
        if chosen is not None:
            return chosen
        if self.keys:
            raw = self.keys.pop(0)
        elif self.ask is not None:
            raw = self.ask(float(gather.get("timeout", "5")))
            if raw is None:
                return None
        elif self._holding():
            # A carrier hears nothing until the Gather times out, then moves on: so do we.
            time.sleep(min(float(gather.get("timeout", "5")), self._hold_left()))
            return ""
        else:
            return None
        finish = gather.get("finishOnKey")
        if finish and finish in raw:
            raw = raw[: raw.index(finish)]
        limit = gather.get("numDigits")
        return raw[: int(limit)] if limit else raw

    def _hold_left(self) -> float:
        return 0.0 if self.hold_deadline is None else self.hold_deadline - time.monotonic()

    def _holding(self) -> bool:
        return self._hold_left() > 0

    def _language_key(self, gather: ET.Element) -> str | None:
        """--lang answers a menu spoken in several languages: the key of the n-th language."""
        if self.language is None:
            return None
        spoken = [say.get("language", "") for say in gather.iter("Say")]
        if len(set(spoken)) < 2:
            return None
        wanted = "zh-CN" if self.language.startswith("zh") else "en-US"
        if wanted not in spoken:
            return None
        key = str(spoken.index(wanted) + 1)
        self.language = None  # once
        self.note("keys", key, show=f"> {key}")
        return key

    # --- output --------------------------------------------------------------------------------

    def say(self, verb: ET.Element) -> None:
        language, text = verb.get("language", ""), (verb.text or "").strip()
        self.note("say", language, text, show=text)
        if self.espeak:
            self.speak(language, text)

    def speak(self, language: str, text: str) -> None:
        """Read the prompt aloud, or into the audio directory's next WAV file."""
        assert self.espeak is not None
        command = [self.espeak, "-v", ESPEAK_VOICES.get(language, "en")]
        if self.audio_dir is not None:
            self.spoken += 1
            self.audio_dir.mkdir(parents=True, exist_ok=True)
            command += ["-w", str(self.audio_dir / f"{self.spoken:03d}-{language}.wav")]
        subprocess.run([*command, text], check=False, capture_output=True)

    def note(self, *event: str, show: str) -> None:
        self.heard.events.append(tuple(event))
        self.show(show)

    @staticmethod
    def dialled(verb: ET.Element) -> str:
        client = verb.find("Client")
        text = client.text if client is not None else verb.text
        return (text or "").removeprefix("client:").strip()

    # --- the carrier's side --------------------------------------------------------------------

    def post(self, url: str, **params: str) -> ET.Element | None:
        """Post a signed webhook; the TwiML answer, or None when there is none."""
        full = urljoin(self.base_url + "/", url)
        form = {
            "CallSid": self.sid,
            "From": self.from_number,
            "To": self.to_number,
            "Direction": self.direction,
            "CallStatus": "in-progress",
            **params,
        }
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(full, form),
            TOKEN_HEADER: uuid.uuid4().hex,  # one per request, as a carrier marks its webhooks
        }
        answer = self.client.post(full, data=form, headers=headers)
        answer.raise_for_status()
        if not answer.content:
            return None
        return ET.fromstring(answer.content)


_POLL = object()


def keypad(timeout: float) -> str | None:
    """Keys typed on the terminal, Enter to send; silence after `timeout`; None at end of input."""
    sys.stdout.write("keys> ")
    sys.stdout.flush()
    wait = None if timeout == float("inf") else timeout
    ready, _, _ = select.select([sys.stdin], [], [], wait)
    if not ready:
        sys.stdout.write("\n")
        return ""
    line = sys.stdin.readline()
    return None if line == "" else line.strip()


def call_command(
    from_number: Annotated[
        str, typer.Option("--from", help="The calling number (E.164); a demo customer's by default")
    ] = "+8613800138000",
    lang: Annotated[
        str | None, typer.Option("--lang", help="zh or en: answers the language menu for you")
    ] = None,
    keys: Annotated[
        str | None,
        typer.Option("--keys", help='Keys for each menu in turn, comma-separated: "1,258036"'),
    ] = None,
    speak: Annotated[
        bool, typer.Option("--speak", help="Speak the prompts with espeak-ng")
    ] = False,
    url: Annotated[str | None, typer.Option("--url", help="The hotline's base URL")] = None,
    hold: Annotated[
        float,
        typer.Option(
            "--hold", help="Once the keys run out in a queue, wait this many seconds for an agent"
        ),
    ] = 0.0,
) -> None:
    """Call the hotline from the terminal, as a phone on a Twilio-compatible carrier would."""
    settings = get_settings()
    base = url or f"http://{settings.host}:{settings.port}"
    interactive = keys is None and sys.stdin.isatty()
    if speak and shutil.which("espeak-ng") is None:
        typer.echo("(espeak-ng is not installed: showing the prompts only)", err=True)
    with httpx.Client(timeout=30.0) as client:
        phone = Softphone(
            client,
            base,
            settings.twilio_auth_token.get_secret_value(),
            from_number=from_number,
            keys=keys_from(keys),
            language=lang,
            ask=keypad if interactive else None,
            show=typer.echo,
            speak=speak,
            audio_dir=settings.softphone_audio_dir,
            hold=hold,
        )
        typer.echo(f"calling {base} from {from_number} ...")
        try:
            phone.call()
        except httpx.HTTPError as error:
            typer.echo(f"the hotline did not answer: {error}", err=True)
            raise typer.Exit(1) from None
