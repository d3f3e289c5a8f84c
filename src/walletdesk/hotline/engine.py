"""The IVR engine: runs a call through its flow, one webhook at a time.

Each webhook resumes the call where its last answer left it (`Call.state`, `Call.memory`),
takes the caller's input for that state, and moves through states that need nothing from the
caller (say, branch, action, resume) until one does: a gather or menu (answered by the next
webhook), a queue, a recording, a dial or a hang-up. What the caller hears on the way is the
list of TwiML steps returned.

Memory keeps the prompts' placeholders (`values`), failed attempts at the current input, the
state to resume after verification, and the queue the call waits in. Digits gathered for a PIN
or a code (the input of verify_pin or verify_otp) are masked in the call's path and never written
to the call's row at all: they go from the gather to the action within one webhook.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from walletdesk.config import Settings
from walletdesk.hotline import calls, flow, queue, twiml
from walletdesk.hotline.actions import ACTIONS, CONDITIONS, SECRET_ACTIONS, SUCCESS, Context
from walletdesk.hotline.models import Call, CallStatus
from walletdesk.kit.i18n import SUPPORTED as LANGUAGES
from walletdesk.kit.i18n import choose
from walletdesk.staff.models import StaffUser

log = logging.getLogger(__name__)

MAX_HOPS = 200  # states passed in one answer; more means a loop with nothing to ask the caller
QUEUED_RESULTS = ("bridged", "bridging-in-process")  # Enqueue action: the agent took the call


# What a flow may name: the actions and conditions this engine runs.
FLOW_NAMES = {
    "actions": ACTIONS.keys(),
    "conditions": CONDITIONS.keys(),
    "secret_actions": SECRET_ACTIONS,
}


def load(settings: Settings) -> flow.Flow:
    """The operator's flow file, or the shipped one; FlowError lists every problem."""
    path: Path | None = settings.hotline_flow_path
    return flow.load_flow(path, **FLOW_NAMES) if path else flow.default_flow(**FLOW_NAMES)


@dataclass(frozen=True, slots=True)
class Urls:
    step: str  # where gathers, recordings and the queue's end are posted
    wait: str  # the queue's wait URL


def _inputs_of(call_flow: flow.Flow, actions: Collection[str]) -> frozenset[str]:
    """The names of gathered digits that these actions take as input."""
    return frozenset(
        state.input
        for state in call_flow.states.values()
        if isinstance(state, flow.Action) and state.action in actions and state.input
    )


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


class Engine:
    def __init__(self, call_flow: flow.Flow, urls: Urls) -> None:
        self.flow, self.urls = call_flow, urls
        self.secret_inputs = _inputs_of(call_flow, SECRET_ACTIONS)

    # --- the webhooks --------------------------------------------------------------------------

    def incoming(self, session: Session, call: Call) -> list[twiml.Step]:
        """The greeting of a call `calls.start` opened at the flow's start."""
        if call.ended_at is not None:  # a late copy of the first webhook, after the hang-up
            return [twiml.Hangup()]
        if call.path:  # the carrier retried the first webhook: answer where the call is
            return self._ask_again(session, call)
        return self._run(session, call, self.flow.start)

    def step(self, session: Session, call: Call, form: Mapping[str, str]) -> list[twiml.Step]:
        """The answer to a gather, a recording, or the end of the call's wait in a queue."""
        if call.ended_at is not None:
            return [twiml.Hangup()]
        if "QueueResult" in form:
            return self._left_queue(session, call, form["QueueResult"])
        if connected := self._agent(session, call):
            return connected
        state = self.flow.states[call.state]
        if isinstance(state, flow.Record):
            values = self._values(call)
            values["case_number"] = calls.voicemail(session, call, form.get("RecordingUrl", ""))
            self._remember(call, values=values)
            return self._run(session, call, state.next)
        if not isinstance(state, flow.Menu | flow.Gather):
            return self._ask_again(session, call)
        digits = form.get("Digits", "")
        target, entered = self._answer(call, state, digits)
        if target is None:
            return self._gather(session, call, state, retry=True)
        return self._run(session, call, target, entered)

    def wait(self, session: Session, call: Call) -> list[twiml.Step]:
        """What a caller waiting in a queue hears now: the agent, or the wait states again."""
        if connected := self._agent(session, call):
            return connected
        wait_state = (call.memory or {}).get("queue_wait")
        if call.ended_at is not None or not wait_state:
            return [twiml.Leave()]
        return self._run(session, call, wait_state)

    def callback(self, session: Session, leg: Call, entry_id: int) -> list[twiml.Step]:
        """The customer picked up the callback dialled for queue entry `entry_id`: who they are
        being connected to, then the agent already waiting on the line."""
        agent = queue.callback_agent(session, leg, entry_id)
        if agent is None:  # the agent is gone (the entry was ended or moved): nothing to join
            return [twiml.Hangup()]
        calls.note_step(leg, "callback", None, secret=False, result=f"staff:{agent.id}")
        language = _language(leg)
        name = agent.display_name
        connecting = choose(
            language,
            en=f"This is walletdesk calling you back. Connecting you to {name}.",
            zh=f"您好，这里是钱包客服回电，正在为您接通客服{name}。",
        )
        return [twiml.Say(connecting, language), _dial_agent(agent)]

    # --- moving through states -----------------------------------------------------------------

    def _run(
        self, session: Session, call: Call, name: str, entered: Mapping[str, str] | None = None
    ) -> list[twiml.Step]:
        """From state `name` to the next one that waits; `entered` are the digits the caller
        just keyed, by the name the states after read them under."""
        steps: list[twiml.Step] = []
        ctx = Context(session, call, {**self._values(call), **(entered or {})})
        for _ in range(MAX_HOPS):
            state = self.flow.states[name]
            if state.language:
                call.language = state.language
            if state.verify_first and self.flow.verification and not CONDITIONS["verified"](ctx):
                self._remember(call, resume_to=name)
                name = self.flow.verification
                continue
            match state:
                case flow.Say():
                    steps += self._say(call, state.prompt, ctx.values, bilingual=state.bilingual)
                    name = state.next
                case flow.Branch():
                    holds = CONDITIONS[state.condition](ctx)
                    calls.note_step(call, name, None, secret=False, result=str(holds).lower())
                    name = state.then if holds else state.otherwise
                case flow.Action():
                    name = self._act(ctx, state)
                case flow.Resume():
                    if state.prompt:
                        steps += self._say(call, state.prompt, ctx.values)
                    memory = dict(call.memory or {})
                    name = memory.pop("resume_to", None) or self.flow.start
                    call.memory = memory
                case _:
                    # A PIN or code never goes into the call's row, even when no action took it.
                    kept = {k: v for k, v in ctx.values.items() if k not in self.secret_inputs}
                    self._remember(call, values=kept)
                    return steps + self._stop(session, call, state, kept)
        log.error("call %s: %d states without asking the caller anything", call.sid, MAX_HOPS)
        return [*steps, twiml.Hangup()]

    def _act(self, ctx: Context, state: flow.Action) -> str:
        value = ctx.values.get(state.input) if state.input else None
        if state.input in self.secret_inputs:
            ctx.values.pop(state.input, None)
        result = ACTIONS[state.action](ctx, value, state.params)
        calls.note_step(ctx.call, state.name, None, secret=False, result=result)
        if result in state.on_result:
            return state.on_result[result]
        return state.on_success if result == SUCCESS else state.on_failure

    def _stop(
        self, session: Session, call: Call, state: flow.State, values: dict[str, Any]
    ) -> list[twiml.Step]:
        """A state that needs the caller, the queue or the carrier: the call waits in it."""
        call.state = state.name
        in_queue = bool((call.memory or {}).get("queue_wait"))
        match state:
            case flow.Menu() | flow.Gather():
                return self._gather(session, call, state)
            case flow.Enqueue():
                self._remember(call, queue_wait=state.wait, enqueued=state.name)
                calls.note_step(call, state.name, None, secret=False, result=state.queue)
                skills = [*state.skills, call.language or _language(call)]
                queue.enqueue(
                    session, call, queue=state.queue, skills=skills, priority=state.priority
                )
                return [twiml.Enqueue(state.queue, self.urls.wait, action_url=self._step_url(call))]
            case flow.Record():
                return [
                    *self._say(call, state.prompt, values),
                    twiml.Record(self._step_url(call), state.max_length, state.finish_on_key),
                ]
            case flow.Dial():
                return [
                    twiml.Dial(state.number, action_url=self._step_url(call), timeout=state.timeout)
                ]
            case flow.Hangup():
                goodbye = self._say(call, state.prompt, values) if state.prompt else []
                # Inside a queue's wait, the caller first leaves the queue (Twilio's rule).
                return [*goodbye, twiml.Leave() if in_queue else twiml.Hangup()]
        raise AssertionError(f"state {state.name!r} cannot stop a call")

    # --- input ---------------------------------------------------------------------------------

    def _answer(
        self, call: Call, state: flow.Menu | flow.Gather, digits: str
    ) -> tuple[str | None, dict[str, str]]:
        """Where the keyed digits lead (None: ask again; after the last retry, the way out), and
        what they enter for the states after: a gather's digits under its `save_as` name."""
        secret = isinstance(state, flow.Gather) and state.save_as in self.secret_inputs
        calls.note_step(call, state.name, digits, secret=secret)
        target = self._target(state, digits)
        if target is not None:
            self._remember(call, attempts=0)
            if isinstance(state, flow.Gather) and state.save_as and digits:
                return target, {state.save_as: digits}
            return target, {}
        attempts = int((call.memory or {}).get("attempts", 0)) + 1
        if attempts > state.retries:
            self._remember(call, attempts=0)
            way_out = state.default if isinstance(state, flow.Menu) else state.on_retries_exhausted
            return way_out, {}
        self._remember(call, attempts=attempts)
        return None, {}

    @staticmethod
    def _target(state: flow.Menu | flow.Gather, digits: str) -> str | None:
        if isinstance(state, flow.Menu):
            return state.options.get(digits)
        if not digits:
            return state.on_timeout
        if state.num_digits is not None and len(digits) != state.num_digits:
            return None
        return state.on_digits.get(digits, state.next)

    def _gather(
        self, session: Session, call: Call, state: flow.Menu | flow.Gather, *, retry: bool = False
    ) -> list[twiml.Step]:
        values = self._values(call)
        prompts: list[twiml.Say] = []
        if retry and state.retry_prompt:
            prompts += self._say(call, state.retry_prompt, values)
        bilingual = isinstance(state, flow.Menu) and state.bilingual
        prompts += self._say(call, state.prompt, values, bilingual=bilingual)
        if isinstance(state, flow.Menu):
            return [
                twiml.Gather(
                    self._step_url(call), tuple(prompts), num_digits=1, timeout=state.timeout
                )
            ]
        return [
            twiml.Gather(
                self._step_url(call),
                tuple(prompts),
                num_digits=state.num_digits,
                finish_on_key=state.finish_on_key,
                timeout=state.timeout,
            )
        ]

    def _ask_again(self, session: Session, call: Call) -> list[twiml.Step]:
        state = self.flow.states[call.state]
        if isinstance(state, flow.Menu | flow.Gather):
            return self._gather(session, call, state)
        return self._stop(session, call, state, self._values(call))

    def _step_url(self, call: Call) -> str:
        """Where the answer to what the call hears now goes, with the call's turn: the same
        keys pressed at two menus in a row are two requests, not a carrier's retry (replay)."""
        return f"{self.urls.step}?turn={len(call.path)}"

    # --- the queue -----------------------------------------------------------------------------

    def _agent(self, session: Session, call: Call) -> list[twiml.Step] | None:
        """Once an agent has taken the waiting call: connect the caller to them."""
        # Accepting marks the call connected. A call still queued has no agent: asking the
        # queue here would also work out its position and estimate, which the wait states
        # (wait_known) do again right after (bench/hotline.py: a wait poll 50 -> 19 ms).
        if call.status != CallStatus.CONNECTED:
            return None
        agent = queue.wait_status(session, call).agent
        if agent is None:
            return None
        calls.note_step(call, "agent", None, secret=False, result=f"staff:{agent.id}")
        return [_dial_agent(agent)]

    def _left_queue(self, session: Session, call: Call, result: str) -> list[twiml.Step]:
        memory = dict(call.memory or {})
        enqueued = memory.pop("enqueued", None)
        memory.pop("queue_wait", None)
        call.memory = memory
        if result in QUEUED_RESULTS or enqueued is None:
            return [twiml.Hangup()]
        state = self.flow.states[enqueued]
        if isinstance(state, flow.Enqueue) and state.next and call.ended_at is None:
            return self._run(session, call, state.next)
        return [twiml.Hangup()]

    # --- words ---------------------------------------------------------------------------------

    def _say(
        self, call: Call, key: str, values: Mapping[str, Any], *, bilingual: bool = False
    ) -> list[twiml.Say]:
        prompt = self.flow.prompts[key]
        languages = LANGUAGES if bilingual else (_language(call),)
        return [twiml.Say(prompt.text(lang, _Blank(values)), lang) for lang in languages]

    @staticmethod
    def _values(call: Call) -> dict[str, Any]:
        return dict((call.memory or {}).get("values", {}))

    @staticmethod
    def _remember(call: Call, **entries: Any) -> None:
        call.memory = {**(call.memory or {}), **entries}  # a new dict: the JSON column sees it


def _dial_agent(agent: StaffUser) -> twiml.Dial:
    """The agent's softphone (a Twilio Client named after the staff member)."""
    return twiml.Dial(f"client:staff-{agent.id}")


def _language(call: Call) -> str:
    from walletdesk.config import get_settings

    return call.language or get_settings().default_language
