"""IVR flow files: the shipped flow, what the validator catches (with lines), and call paths."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import pytest

from walletdesk.hotline.flow import (
    DEFAULT_ACTIONS,
    Action,
    Branch,
    Enqueue,
    Flow,
    FlowError,
    Gather,
    Hangup,
    Menu,
    Record,
    Resume,
    Say,
    State,
    check_flow_file,
    default_flow,
    load_flow,
)

# Line numbers matter below: each test breaks one line of this small, valid flow.
SMALL = """\
start: hello
prompts:
  hello:
    zh-CN: 您好
    en: Hello
  menu:
    zh-CN: 余额请按 1，人工请按 0
    en: For your balance press 1, for an agent press 0
states:
  hello:
    type: say
    prompt: hello
    next: menu
  menu:
    type: menu
    prompt: menu
    options: {1: balance, 0: bye}
    default: bye
  balance:
    type: action
    action: balance
    on_success: bye
    on_failure: bye
  bye:
    type: hangup
"""


def errors_of(text: str, **registry: frozenset[str]) -> list[str]:
    with pytest.raises(FlowError) as raised:
        load_flow(text, **registry)
    return list(raised.value.errors)


def changed(old: str, new: str) -> str:
    assert SMALL.count(old) == 1
    return SMALL.replace(old, new)


# --- the shipped flow ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow() -> Flow:
    return default_flow()


def test_the_shipped_flow_is_valid(flow: Flow) -> None:
    shipped = resources.files("walletdesk.hotline").joinpath("flows/default.yaml")
    assert check_flow_file(Path(str(shipped))) == []
    assert isinstance(flow.states[flow.start], Action)


def test_every_state_of_the_shipped_flow_can_be_reached(flow: Flow) -> None:
    seen, waiting = {flow.start}, deque([flow.start])
    while waiting:
        state = flow.states[waiting.popleft()]
        following = list(state.targets())
        if state.verify_first:
            following.append(flow.verification)
        for name in following:
            if name not in seen:
                seen.add(name)
                waiting.append(name)
    assert seen == set(flow.states)


def test_every_shipped_prompt_is_used_and_fills_its_placeholders(flow: Flow) -> None:
    used = {
        getattr(state, field)
        for state in flow.states.values()
        for field in ("prompt", "retry_prompt")
        if getattr(state, field, None)
    }
    assert used == set(flow.prompts)
    wait = flow.prompts["queue_position"]
    assert wait.placeholders == {"position", "minutes"}
    assert wait.text("en", {"position": 3, "minutes": "4 minutes"}) == (
        "You are number 3 in line. The wait is about 4 minutes."
    )
    assert (
        wait.text("zh-CN", {"position": 3, "minutes": "4 分钟"})
        == "您目前排在第 3 位，预计等待约 4 分钟。"
    )


# --- call paths through the shipped flow ---------------------------------------------------------

KNOWN_CALLER = {"caller_identified": True, "language_known": True, "pin_set": True}
UNKNOWN_CALLER = {"caller_identified": False, "language_known": False}
NO_MATCH = {"identify_caller": "failure"}  # withheld or unregistered number


def walk(
    flow: Flow,
    keys: list[str],
    *,
    conditions: Mapping[str, bool],
    results: Mapping[str, str] | None = None,
    start: str | None = None,
) -> list[State]:
    """The states a caller goes through, pressing `keys`, until the call waits for more input,
    reaches a queue or ends. Actions succeed unless `results` says otherwise."""
    keys, results = list(keys), results or {}
    name, verified, pending = start or flow.start, False, None
    visited: list[State] = []
    while len(visited) < 100:
        state = flow.states[name]
        if state.verify_first and not verified:
            pending, name = name, flow.verification
            continue
        visited.append(state)
        match state:
            case Say():
                name = state.next
            case Menu() | Gather() if not keys:
                return visited
            case Menu():
                name = state.options[keys.pop(0)]
            case Gather():
                digits = keys.pop(0)
                name = state.on_digits.get(digits) or state.next
            case Branch():
                name = state.then if conditions[state.condition] else state.otherwise
            case Action():
                result = results.get(state.action, "success")
                fallback = state.on_success if result == "success" else state.on_failure
                name = state.on_result.get(result, fallback)
            case Resume():
                verified, name = True, pending
            case _:
                return visited
    raise AssertionError("the walk went round in circles")


def actions_in(states: list[State]) -> list[str]:
    return [state.action for state in states if isinstance(state, Action)]


@pytest.mark.parametrize("keys", [["9", "1"], ["3", "9", "1"]], ids=["closed menu", "main menu"])
def test_pressing_9_freezes_the_account_when_closed_without_verification(
    flow: Flow, keys: list[str]
) -> None:
    path = walk(flow, keys, conditions={**KNOWN_CALLER, "is_open": False})
    assert actions_in(path) == ["identify_caller", "service_hours", "freeze_account"]
    assert isinstance(path[-1], Menu)  # frozen: offers the security team


def test_pressing_9_freezes_the_account_when_open_without_verification(flow: Flow) -> None:
    path = walk(flow, ["9", "1"], conditions={**KNOWN_CALLER, "is_open": True})
    assert actions_in(path) == ["identify_caller", "freeze_account"]
    assert path[-2].name == "freeze_now"


def test_an_unknown_caller_reporting_fraud_goes_ahead_of_everyone(flow: Flow) -> None:
    path = walk(flow, ["1", "9"], conditions=UNKNOWN_CALLER | {"is_open": False}, results=NO_MATCH)
    queue = path[-1]
    assert isinstance(queue, Enqueue)
    assert (queue.queue, queue.skills) == ("fraud", ("security",))
    assert queue.priority > max(
        state.priority
        for state in flow.states.values()
        if isinstance(state, Enqueue) and state.queue != "fraud"
    )


def test_a_caller_known_by_number_skips_the_language_choice(flow: Flow) -> None:
    path = walk(flow, [], conditions={**KNOWN_CALLER, "is_open": True})
    assert [state.name for state in path] == [
        "identify",
        "known_language",
        "welcome_back",
        "check_hours",
        "main_menu",
    ]


def test_an_unknown_caller_chooses_english(flow: Flow) -> None:
    path = walk(flow, ["2"], conditions=UNKNOWN_CALLER | {"is_open": True}, results=NO_MATCH)
    assert isinstance(path[1], Menu) and path[1].bilingual
    assert path[2].language == "en"
    assert path[-1].name == "main_menu"


def test_balance_asks_for_the_pin_then_comes_back(flow: Flow) -> None:
    path = walk(flow, ["1", "123456"], conditions={**KNOWN_CALLER, "is_open": True})
    assert actions_in(path) == ["identify_caller", "verify_pin", "balance"]
    assert any(isinstance(state, Resume) for state in path)
    assert path[-1].name == "anything_else"


def test_without_a_pin_a_one_time_code_is_sent(flow: Flow) -> None:
    known = {**KNOWN_CALLER, "pin_set": False, "is_open": True}
    path = walk(flow, ["2", "654321"], conditions=known)
    assert actions_in(path) == ["identify_caller", "send_otp", "verify_otp", "last_transactions"]


def test_a_wrong_pin_is_asked_again_then_a_lock_offers_an_agent_ahead_of_others(flow: Flow) -> None:
    conditions = {**KNOWN_CALLER, "is_open": True}
    wrong = walk(flow, ["1", "000000"], conditions=conditions, results={"verify_pin": "wrong"})
    assert [state.name for state in wrong[-2:]] == ["pin_wrong", "ask_pin"]
    locked = walk(
        flow, ["1", "000000", "0"], conditions=conditions, results={"verify_pin": "locked"}
    )
    assert "balance" not in actions_in(locked)
    queue = locked[-1]
    assert isinstance(queue, Enqueue) and queue.priority > flow.states["general_queue"].priority


def test_a_case_or_dispute_number_is_keyed_in_after_verification(flow: Flow) -> None:
    conditions = {**KNOWN_CALLER, "is_open": True}
    asked = walk(flow, ["5", "123456"], conditions=conditions)[-1]
    assert isinstance(asked, Gather) and asked.finish_on_key == "#"
    path = walk(
        flow,
        ["5", "123456", "1234567890"],
        conditions=conditions,
        results={"dispute_status": "not_found"},
    )
    assert actions_in(path)[-2:] == ["dispute_status", "case_status"]
    assert path[-1].name == "anything_else"


def test_out_of_hours_offers_a_callback_at_opening_or_a_voicemail(flow: Flow) -> None:
    closed = {**KNOWN_CALLER, "is_open": False}
    callback = walk(flow, ["1"], conditions=closed)
    assert actions_in(callback)[-1] == "request_callback"
    assert isinstance(walk(flow, ["2"], conditions=closed)[-1], Record)


def test_asking_for_an_agent_out_of_hours_leads_to_the_closed_menu(flow: Flow) -> None:
    path = walk(flow, ["3", "0"], conditions={**KNOWN_CALLER, "is_open": False})
    assert path[-1].name == "closed_menu"


def test_a_waiting_caller_hears_the_estimate_and_can_ask_for_a_callback(flow: Flow) -> None:
    path = walk(flow, ["0"], conditions={**KNOWN_CALLER, "is_open": True})
    queue = path[-1]
    assert isinstance(queue, Enqueue) and queue.queue == "general"
    for known in (True, False):
        waiting = walk(flow, ["1"], conditions={"wait_known": known}, start=queue.wait)
        assert waiting[1].prompt == ("queue_position" if known else "queue_position_long")
        assert actions_in(waiting) == ["request_callback"]
        assert isinstance(waiting[-1], Hangup)
    silent = walk(flow, [], conditions={"wait_known": True}, start=queue.wait)
    assert silent[-1].default == queue.wait  # no key pressed: the estimate is announced again


# --- what the validator catches ------------------------------------------------------------------


def test_the_small_flow_is_valid() -> None:
    flow = load_flow(SMALL)
    assert flow.states["menu"].options == {"1": "balance", "0": "bye"}
    assert flow.states["hello"].line == 10


def test_an_unknown_state_is_named_with_its_line() -> None:
    errors = errors_of(changed("on_failure: bye", "on_failure: goodbye"))
    assert errors == ["line 23: state 'balance': on_failure goes to unknown state 'goodbye'"]


def test_an_unknown_menu_option_target_is_named_with_its_line() -> None:
    errors = errors_of(
        changed(
            "options: {1: balance, 0: bye}",
            "options:\n      1: balance\n      0: bye\n      9: freeze",
        )
    )
    assert errors == ["line 20: state 'menu': options 9 goes to unknown state 'freeze'"]


def test_an_unreachable_state_is_named_with_its_line() -> None:
    errors = errors_of(changed("options: {1: balance, 0: bye}", "options: {0: bye}"))
    assert errors == ["line 19: state 'balance' cannot be reached from the start ('hello')"]


def test_a_prompt_missing_a_language_is_named_with_its_line() -> None:
    errors = errors_of(changed("    en: Hello\n", ""))
    assert errors == ["line 3: prompt 'hello' has no en text"]


def test_a_missing_prompt_key_is_named_with_its_line() -> None:
    errors = errors_of(changed("prompt: hello", "prompt: greeting"))
    assert errors == ["line 12: state 'hello': prompt 'greeting' is not in the prompts table"]


def test_an_unknown_action_is_named_with_its_line() -> None:
    errors = errors_of(changed("action: balance", "action: balances"))
    assert len(errors) == 1
    assert errors[0].startswith("line 21: state 'balance': action 'balances' is not a known action")


def test_the_engine_passes_its_own_registry() -> None:
    assert load_flow(SMALL, actions={"balance"}).states["balance"].action == "balance"
    errors = errors_of(SMALL, actions=frozenset(DEFAULT_ACTIONS - {"balance"}))
    assert errors[0].startswith("line 21: state 'balance': action 'balance' is not a known action")


def test_an_unknown_condition_is_named_with_its_line() -> None:
    text = changed(
        "    type: say\n",
        "    type: branch\n    condition: open_now\n    then: menu\n    else: bye\n",
    )
    text = text.replace("    prompt: hello\n    next: menu\n", "")
    assert errors_of(text)[0].startswith(
        "line 12: state 'hello': condition 'open_now' is not a known condition"
    )


def test_a_state_with_no_way_out() -> None:
    errors = errors_of(changed("    next: menu\n", ""))
    assert "line 10: state 'hello' has no way out: add 'next'" in errors


def test_a_gather_that_cannot_finish() -> None:
    text = changed(
        "    type: say\n", "    type: gather\n    save_as: pin\n    on_retries_exhausted: bye\n"
    )
    assert errors_of(text) == [
        "line 10: state 'hello': a gather needs num_digits or finish_on_key, or the caller can never finish"
    ]


def test_bad_field_types() -> None:
    text = changed(
        "    default: bye\n",
        "    default: bye\n    retries: lots\n    timeout: 0\n    bilingual: 1\n",
    )
    assert errors_of(text) == [
        "line 19: state 'menu': retries must be a whole number from 0 to 10",
        "line 20: state 'menu': timeout must be a whole number from 1 to 300",
        "line 21: state 'menu': bilingual must be true or false",
    ]


def test_every_problem_is_reported_at_once_in_line_order() -> None:
    text = changed("on_failure: bye", "on_failure: goodbye").replace("    en: Hello\n", "")
    text = text.replace("next: menu", "next: menu\n    nxt: bye")
    assert errors_of(text) == [
        "line 3: prompt 'hello' has no en text",
        "line 13: state 'hello': unknown field 'nxt' for a say (fields: prompt, next, bilingual, language, verify_first)",
        "line 23: state 'balance': on_failure goes to unknown state 'goodbye'",
    ]


def test_a_state_given_twice() -> None:
    text = SMALL + "  menu:\n    type: hangup\n"
    assert "line 26: 'menu' is given twice (first at line 14)" in errors_of(text)


def test_placeholders_must_match_between_languages() -> None:
    text = changed("en: Hello", "en: Hello {name}")
    assert errors_of(text) == [
        "line 3: prompt 'hello': the languages use different placeholders (zh-CN: none; en: {name})"
    ]


def test_verify_first_needs_a_verification_path() -> None:
    text = changed("    action: balance\n", "    action: balance\n    verify_first: true\n")
    assert errors_of(text) == [
        "line 19: state 'balance' has verify_first, but the flow names no verification state"
    ]


def test_an_action_input_must_be_gathered_somewhere() -> None:
    text = changed("    action: balance\n", "    action: verify_pin\n    input: pin\n")
    assert errors_of(text) == [
        "line 22: state 'balance': input 'pin' is never gathered (no gather has save_as: pin)"
    ]


def test_phone_keys_stay_keys_and_must_be_quoted_when_they_are_hash_or_star() -> None:
    flow = load_flow(changed("{1: balance, 0: bye}", "{'#': balance, '*': bye, 0: bye}"))
    assert flow.states["menu"].options == {"#": "balance", "*": "bye", "0": "bye"}
    assert errors_of(changed("{1: balance, 0: bye}", "{10: balance, 0: bye}")) == [
        "line 17: state 'menu': options: '10' is not one phone key"
    ]


def test_yaml_that_does_not_parse_gives_its_line() -> None:
    errors = errors_of(changed("    next: menu\n", "    next: [menu\n"))
    assert len(errors) == 1 and errors[0].startswith("line 14: not valid YAML")


def test_check_flow_file_lists_the_problems_of_a_file(tmp_path: Path) -> None:
    broken = tmp_path / "flow.yaml"
    broken.write_text(changed("next: menu", "next: menus"), "utf-8")
    assert (
        check_flow_file(broken)[0] == "line 13: state 'hello': next goes to unknown state 'menus'"
    )
    assert check_flow_file(tmp_path / "missing.yaml")[0].startswith("cannot read")


PIN_CONFIRMED = """\
start: ask
prompts:
  ask:
    zh-CN: 请输入支付密码
    en: Your PIN, please
  sure:
    zh-CN: 确认请按 1
    en: Press 1 to confirm
states:
  ask:
    type: gather
    prompt: ask
    num_digits: 6
    save_as: pin
    next: sure
    on_retries_exhausted: bye
  sure:
    type: menu
    prompt: sure
    options: {1: check}
    default: bye
  check:
    type: action
    action: verify_pin
    input: pin
    on_success: bye
    on_failure: bye
  bye:
    type: hangup
"""


def test_a_pin_must_be_checked_before_the_call_waits_again() -> None:
    # The engine never writes a PIN to the call's row: a menu between the gather and the check
    # would hand verify_pin nothing, and the caller would hear "wrong PIN" for the right one.
    assert errors_of(PIN_CONFIRMED) == [
        "line 10: state 'ask': 'pin' is a secret kept only until the call waits again, "
        "and 'sure' waits before an action reads it"
    ]
    checked_first = PIN_CONFIRMED.replace("next: sure", "next: check").replace(
        "on_failure: bye", "on_failure: sure"
    )
    assert load_flow(checked_first).states["ask"].next == "check"
