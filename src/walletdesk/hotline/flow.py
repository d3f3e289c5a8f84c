"""IVR call flows as data: a YAML file of states and prompts, loaded into immutable objects.

A flow names its `start` state, a `prompts` table (each text in zh-CN and en, with {placeholders}
the engine fills from what actions found) and its `states`. Each state has a `type`:

  say      prompt, next, bilingual                 speak, then move on
  gather   prompt, num_digits and/or finish_on_key, timeout, retries, save_as, retry_prompt,
           next and/or on_digits {digits: state}, on_timeout, on_retries_exhausted
  menu     prompt, options {key: state}, timeout, retries, retry_prompt, default, bilingual
  branch   condition, then, else
  action   action, input (a gathered value), params, on_success, on_failure, on_result
  enqueue  queue, skills, priority, wait (the states played while the caller waits), next
  record   prompt, max_length, finish_on_key, next  (a voicemail)
  dial     number (E.164), timeout, next  (where the caller goes if nobody answers)
  hangup   prompt (an optional goodbye)
  resume   prompt (optional): back to the state that asked for verification

Any state may also carry `language` (the call speaks zh-CN or en from there on) and
`verify_first: true`: an unverified caller first goes through the flow's `verification` states,
which end in a `resume` that returns to it, so several self-service options share one
verification path.

An action ends in a result: `on_result` sends particular results (such as `locked`, `wrong` or
`not_found`) to their own states; any other goes to `on_success` or `on_failure`. The `input` an
action reads is the digits a gather kept under that `save_as` name, and what it finds fills the
placeholders of the prompts that follow. A PIN or a code (the input of verify_pin or verify_otp)
is never written to the call's row, so the action that checks it must follow its gather before
the call waits for the caller again.

Input: silence, or keys that match nothing, is a failed attempt; the caller hears `retry_prompt`
(when given) and the prompt again, up to `retries` more times, then goes to
`on_retries_exhausted` (gather) or `default` (menu). A gather's `on_timeout` takes a silent
caller there at once instead.

Actions and conditions are names the engine binds to domain services; the validator takes the
engine's registry, so a flow naming something the engine cannot do never loads. Loading reports
every problem at once, each as "line N: message".
"""

from __future__ import annotations

import re
import string
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from walletdesk.kit.i18n import SUPPORTED as LANGUAGES

DEFAULT_ACTIONS = frozenset(
    {
        "balance",
        "last_transactions",
        "explain_last_failure",
        "send_reset_link",
        "freeze_account",
        "case_status",
        "dispute_status",
        "file_dispute",
        "service_hours",
        "verify_pin",
        "send_otp",
        "verify_otp",
        "request_callback",
        "identify_caller",
    }
)
DEFAULT_CONDITIONS = frozenset(
    {"caller_identified", "language_known", "is_open", "verified", "pin_set", "wait_known"}
)
# Actions whose input is a secret (a PIN, a code): kept for the webhook that gathered it only.
DEFAULT_SECRET_ACTIONS = frozenset({"verify_pin", "verify_otp"})
PHONE_KEYS = "0123456789*#"
MAX_DIGITS = 32

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_TOP_LEVEL = ("start", "verification", "prompts", "states")


class FlowError(ValueError):
    """A flow that cannot be used; `errors` lists every problem as "line N: message"."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = tuple(errors)
        super().__init__("the call flow is not valid:\n" + "\n".join(self.errors))


# --- the model -----------------------------------------------------------------------------------


def _no_entries() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Prompt:
    key: str
    line: int
    texts: Mapping[str, str]  # language -> text
    placeholders: frozenset[str]

    def text(self, language: str, values: Mapping[str, object] | None = None) -> str:
        return self.texts[language].format_map(values or {})


@dataclass(frozen=True, slots=True, kw_only=True)
class State:
    name: str
    line: int
    language: str | None = None
    verify_first: bool = False

    def targets(self) -> tuple[str, ...]:
        """The states this one can lead to, in the order its fields name them."""
        return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Say(State):
    prompt: str
    next: str
    bilingual: bool = False

    def targets(self) -> tuple[str, ...]:
        return (self.next,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gather(State):
    prompt: str
    on_retries_exhausted: str
    num_digits: int | None = None
    finish_on_key: str | None = None
    timeout: int = 5
    retries: int = 2
    retry_prompt: str | None = None
    save_as: str | None = None
    next: str | None = None  # any digits not listed in on_digits
    on_digits: Mapping[str, str] = field(default_factory=_no_entries)
    on_timeout: str | None = None

    def targets(self) -> tuple[str, ...]:
        optional = (self.next, self.on_timeout, self.on_retries_exhausted)
        return (*self.on_digits.values(), *(name for name in optional if name))


@dataclass(frozen=True, slots=True, kw_only=True)
class Menu(State):
    prompt: str
    options: Mapping[str, str]  # phone key -> state
    default: str
    timeout: int = 5
    retries: int = 2
    retry_prompt: str | None = None
    bilingual: bool = False

    def targets(self) -> tuple[str, ...]:
        return (*self.options.values(), self.default)


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch(State):
    condition: str
    then: str
    otherwise: str  # `else` in the file

    def targets(self) -> tuple[str, ...]:
        return (self.then, self.otherwise)


@dataclass(frozen=True, slots=True, kw_only=True)
class Action(State):
    action: str
    on_success: str
    on_failure: str
    on_result: Mapping[str, str] = field(default_factory=_no_entries)  # result -> state
    input: str | None = None  # the name a gather saved its digits as
    params: Mapping[str, str | int | bool] = field(default_factory=_no_entries)

    def targets(self) -> tuple[str, ...]:
        return (*self.on_result.values(), self.on_success, self.on_failure)


@dataclass(frozen=True, slots=True, kw_only=True)
class Enqueue(State):
    queue: str
    wait: str
    skills: tuple[str, ...] = ()
    priority: int = 0  # higher is answered sooner
    next: str | None = None  # a caller who leaves the queue without reaching an agent

    def targets(self) -> tuple[str, ...]:
        return (self.wait, self.next) if self.next else (self.wait,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Record(State):
    prompt: str
    next: str
    max_length: int = 120  # seconds
    finish_on_key: str = "#"

    def targets(self) -> tuple[str, ...]:
        return (self.next,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dial(State):
    number: str
    next: str
    timeout: int = 30

    def targets(self) -> tuple[str, ...]:
        return (self.next,)


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(State):
    prompt: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resume(State):
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    start: str
    states: Mapping[str, State]
    prompts: Mapping[str, Prompt]
    verification: str | None = None  # where `verify_first` states send an unverified caller


def load_flow(
    source: str | Path,
    *,
    actions: Iterable[str] = DEFAULT_ACTIONS,
    conditions: Iterable[str] = DEFAULT_CONDITIONS,
    secret_actions: Iterable[str] = DEFAULT_SECRET_ACTIONS,
) -> Flow:
    """A flow from YAML text (str) or a file (Path); FlowError lists everything wrong with it."""
    text = source.read_text("utf-8") if isinstance(source, Path) else source
    checker = _Checker(frozenset(actions), frozenset(conditions), frozenset(secret_actions))
    return checker.flow(text)


def default_flow(**names: Iterable[str]) -> Flow:
    """The flow shipped with walletdesk (hotline/flows/default.yaml); `names` as load_flow's."""
    text = resources.files("walletdesk.hotline").joinpath("flows/default.yaml").read_text("utf-8")
    return load_flow(text, **names)


def check_flow_file(path: str | Path, **names: Iterable[str]) -> list[str]:
    """Everything wrong with a flow file, one "line N: message" each; empty when it is valid.
    `names` as load_flow's."""
    try:
        load_flow(Path(path), **names)
    except OSError as error:
        return [f"cannot read {path}: {error.strerror or error}"]
    except FlowError as error:
        return list(error.errors)
    return []


# --- YAML that remembers where things are --------------------------------------------------------


class _Located(dict[str, Any]):
    """A YAML mapping that keeps its own line and the line of each key (1-based)."""

    line: int
    lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    """Safe YAML whose mapping keys stay text as written: 1, 0, #, on and no are not numbers
    or booleans, and 010 is not octal. Keys given twice are noted, not silently dropped."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.duplicates: list[tuple[int, str, int]] = []  # line, key, line of the first one


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Located:
    loader.flatten_mapping(node)
    mapping = _Located()
    mapping.line, mapping.lines = node.start_mark.line + 1, {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be plain text", key_node.start_mark
            )
        key, line = key_node.value, key_node.start_mark.line + 1
        if key in mapping:
            loader.duplicates.append((line, key, mapping.lines[key]))
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --- field readers: each returns the value to keep or raises _Bad --------------------------------


class _Bad(Exception):
    """What is wrong with one field, as (line, message) pairs; None is the field's own line.

    `partial` holds the entries of a mapping that are right, so their links are still checked.
    """

    def __init__(self, problems: list[tuple[int | None, str]], partial: Any = None) -> None:
        super().__init__(problems)
        self.problems, self.partial = problems, partial


def _bad(message: str) -> _Bad:
    return _Bad([(None, message)])


Reader = Callable[[Any, str, "_Checker"], Any]


def _name(value: Any, key: str, _: _Checker) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _bad(f"{key} must be a name: a letter, then letters, digits, _ or -")
    return value


def _flag(value: Any, key: str, _: _Checker) -> bool:
    if not isinstance(value, bool):
        raise _bad(f"{key} must be true or false")
    return value


def _whole(low: int, high: int) -> Reader:
    def read(value: Any, key: str, _: _Checker) -> int:
        # bool is an int in Python; `true` is never a sensible count.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _bad(f"{key} must be a whole number from {low} to {high}")
        return value

    return read


def _phone_key(value: Any, key: str, _: _Checker) -> str:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or len(text) != 1 or text not in PHONE_KEYS:
        raise _bad(f"{key} must be one phone key: 0-9, * or # (quoted, like '#')")
    return text


def _language(value: Any, key: str, _: _Checker) -> str:
    if value not in LANGUAGES:
        raise _bad(f"{key} must be one of {', '.join(LANGUAGES)}")
    return value


def _action(value: Any, key: str, checker: _Checker) -> str:
    return _known(value, key, "action", checker.actions)


def _condition(value: Any, key: str, checker: _Checker) -> str:
    return _known(value, key, "condition", checker.conditions)


def _known(value: Any, key: str, what: str, known: frozenset[str]) -> str:
    if not isinstance(value, str) or value not in known:
        raise _bad(f"{key} {value!r} is not a known {what} (known: {', '.join(sorted(known))})")
    return value


def _phone_number(value: Any, key: str, _: _Checker) -> str:
    if not isinstance(value, str) or not _E164.match(value):
        raise _bad(f"{key} must be a phone number in E.164 form, like '+8610xxxxxxxx'")
    return value


def _names(value: Any, key: str, checker: _Checker) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad(f"{key} must be a list of names, like [security, payments]")
    return tuple(_name(item, f"each of {key}", checker) for item in value)


def _params(value: Any, key: str, _: _Checker) -> Mapping[str, str | int | bool]:
    if not isinstance(value, Mapping):
        raise _bad(f"{key} must map names to plain values")
    for name, item in value.items():
        if not _NAME.match(name) or not isinstance(item, str | int | bool):
            raise _bad(f"{key} {name}: must be a name with a text, number or true/false value")
    return MappingProxyType(dict(value))


def _entries(read_key: Callable[[str], bool], key_rule: str) -> Reader:
    """A mapping of keys (checked by `read_key`) to state names, e.g. a menu's options."""

    def read(value: Any, key: str, checker: _Checker) -> Mapping[str, str]:
        if not isinstance(value, Mapping) or not value:
            raise _bad(f"{key} must map {key_rule} to state names")
        problems: list[tuple[int | None, str]] = []
        good = {}
        for entry, target in value.items():
            if not read_key(entry):
                problems.append((value.lines[entry], f"{key}: {entry!r} is not {key_rule}"))
                continue
            try:
                good[entry] = _name(target, f"{key} {entry}", checker)
            except _Bad as bad:
                problems.extend((value.lines[entry], message) for _, message in bad.problems)
        if problems:
            raise _Bad(problems, partial=MappingProxyType(good))
        return MappingProxyType(good)

    return read


def _is_name(text: str) -> bool:
    return bool(_NAME.match(text))


def _is_phone_key(text: str) -> bool:
    return len(text) == 1 and text in PHONE_KEYS


def _is_digits(text: str) -> bool:
    return 0 < len(text) <= MAX_DIGITS and all(char in PHONE_KEYS for char in text)


# --- what each state type holds ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    read: Reader
    required: bool = False
    way_out: bool = False  # required, and missing it leaves the caller stuck
    links: str | None = None  # "state", "states", "prompt", "input" or "saved": checked later
    attr: str | None = None  # the dataclass attribute, when it differs from the key


def _to_state(*, way_out: bool = False) -> _Field:
    return _Field(_name, way_out=way_out, links="state")


def _prompt(*, required: bool = False) -> _Field:
    return _Field(_name, required=required, links="prompt")


_COMMON = {"language": _Field(_language), "verify_first": _Field(_flag)}
_TIMEOUT, _RETRIES = _Field(_whole(1, 300)), _Field(_whole(0, 10))
_STATES: dict[str, tuple[type[State], dict[str, _Field]]] = {
    "say": (
        Say,
        {
            "prompt": _prompt(required=True),
            "next": _to_state(way_out=True),
            "bilingual": _Field(_flag),
        },
    ),
    "gather": (
        Gather,
        {
            "prompt": _prompt(required=True),
            "num_digits": _Field(_whole(1, MAX_DIGITS)),
            "finish_on_key": _Field(_phone_key),
            "timeout": _TIMEOUT,
            "retries": _RETRIES,
            "retry_prompt": _prompt(),
            "save_as": _Field(_name, links="saved"),
            "next": _to_state(),
            "on_digits": _Field(_entries(_is_digits, "keyed digits"), links="states"),
            "on_timeout": _to_state(),
            "on_retries_exhausted": _to_state(way_out=True),
        },
    ),
    "menu": (
        Menu,
        {
            "prompt": _prompt(required=True),
            "options": _Field(
                _entries(_is_phone_key, "one phone key"), required=True, links="states"
            ),
            "timeout": _TIMEOUT,
            "retries": _RETRIES,
            "retry_prompt": _prompt(),
            "default": _to_state(way_out=True),
            "bilingual": _Field(_flag),
        },
    ),
    "branch": (
        Branch,
        {
            "condition": _Field(_condition, required=True),
            "then": _to_state(way_out=True),
            "else": _Field(_name, way_out=True, links="state", attr="otherwise"),
        },
    ),
    "action": (
        Action,
        {
            "action": _Field(_action, required=True),
            "input": _Field(_name, links="input"),
            "params": _Field(_params),
            "on_success": _to_state(way_out=True),
            "on_failure": _to_state(way_out=True),
            "on_result": _Field(_entries(_is_name, "a result name"), links="states"),
        },
    ),
    "enqueue": (
        Enqueue,
        {
            "queue": _Field(_name, required=True),
            "skills": _Field(_names),
            "priority": _Field(_whole(0, 100)),
            "wait": _Field(_name, required=True, links="state"),
            "next": _to_state(),
        },
    ),
    "record": (
        Record,
        {
            "prompt": _prompt(required=True),
            "max_length": _Field(_whole(1, 3600)),
            "finish_on_key": _Field(_phone_key),
            "next": _to_state(way_out=True),
        },
    ),
    "dial": (
        Dial,
        {
            "number": _Field(_phone_number, required=True),
            "timeout": _Field(_whole(5, 600)),
            "next": _to_state(way_out=True),
        },
    ),
    "hangup": (Hangup, {"prompt": _prompt()}),
    "resume": (Resume, {"prompt": _prompt()}),
}


# --- the checker ---------------------------------------------------------------------------------


@dataclass
class _Checker:
    actions: frozenset[str]
    conditions: frozenset[str]
    secret_actions: frozenset[str]
    problems: list[tuple[int, str]] = field(default_factory=list)
    # (line, state, field, state or prompt it names)
    state_links: list[tuple[int, str, str, str]] = field(default_factory=list)
    prompt_links: list[tuple[int, str, str, str]] = field(default_factory=list)
    input_links: list[tuple[int, str, str]] = field(default_factory=list)
    saved: set[str] = field(default_factory=set)

    def error(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def flow(self, text: str) -> Flow:
        data = self._parse(text)
        flow = self._read(data) if data is not None else None
        if self.problems or flow is None:
            self.problems.sort(key=lambda problem: problem[0])
            raise FlowError(f"line {line}: {message}" for line, message in self.problems)
        return flow

    def _parse(self, text: str) -> _Located | None:
        loader = _Loader(text)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
            problem = getattr(error, "problem", None) or str(error)
            self.error(mark.line + 1 if mark else 1, f"not valid YAML: {problem}")
            return None
        finally:
            loader.dispose()
        for line, key, first in loader.duplicates:
            self.error(line, f"{key!r} is given twice (first at line {first})")
        if not isinstance(data, _Located):
            self.error(1, "a flow is a mapping with start, prompts and states")
            return None
        return data

    def _read(self, data: _Located) -> Flow | None:
        for key in data:
            if key not in _TOP_LEVEL:
                self.error(
                    data.lines[key], f"unknown top-level key {key!r} ({', '.join(_TOP_LEVEL)})"
                )
        raw_states, raw_prompts = self._section(data, "states"), self._section(data, "prompts")
        if raw_states is None or raw_prompts is None:
            return None
        prompts = {}
        for key, raw in raw_prompts.items():
            prompt = self._prompt(key, raw, raw_prompts.lines[key])
            if prompt is not None:
                prompts[key] = prompt
        states = {}
        for name, raw in raw_states.items():
            state = self._state(name, raw, raw_states.lines[name])
            if state is not None:
                states[name] = state
        start = self._entry(data, "start", raw_states, required=True)
        verification = self._entry(data, "verification", raw_states, required=False)
        self._check_links(raw_states, raw_prompts)
        self._check_secrets(states)
        self._check_verification(raw_states, verification, data)
        if start is not None:
            self._check_reachable(start, verification, raw_states, states)
        return Flow(start or "", MappingProxyType(states), MappingProxyType(prompts), verification)

    def _section(self, data: _Located, key: str) -> _Located | None:
        section = data.get(key)
        if isinstance(section, _Located):
            return section
        line = data.lines.get(key, data.line)
        self.error(line, f"{key} must be a mapping" if key in data else f"{key} is missing")
        return None

    def _entry(self, data: _Located, key: str, states: _Located, *, required: bool) -> str | None:
        """The name of the state at `start` or `verification`, if it names one."""
        if key not in data:
            if required:
                self.error(data.line, f"{key} is missing: name the state the call begins in")
            return None
        value = data[key]
        if not isinstance(value, str) or value not in states:
            self.error(data.lines[key], f"{key} goes to unknown state {value!r}")
            return None
        return value

    def _prompt(self, key: str, raw: Any, line: int) -> Prompt | None:
        if not _NAME.match(key):
            self.error(line, f"prompt {key!r}: a prompt key must be a name")
        if not isinstance(raw, _Located):
            self.error(line, f"prompt {key!r} must map {' and '.join(LANGUAGES)} to their text")
            return None
        texts, placeholders = {}, {}
        for language, text in raw.items():
            where = f"prompt {key!r} {language}"
            if language not in LANGUAGES:
                self.error(
                    raw.lines[language], f"{where}: unknown language (use {', '.join(LANGUAGES)})"
                )
            elif not isinstance(text, str) or not text.strip():
                self.error(raw.lines[language], f"{where}: must be some text")
            else:
                try:
                    placeholders[language] = _placeholders(text)
                except ValueError as error:
                    self.error(raw.lines[language], f"{where}: {error}")
                    continue
                texts[language] = text
        for language in LANGUAGES:
            if language not in raw:
                self.error(line, f"prompt {key!r} has no {language} text")
        differ = len(set(placeholders.values())) > 1
        if differ:
            listed = "; ".join(f"{lang}: {_listed(names)}" for lang, names in placeholders.items())
            self.error(line, f"prompt {key!r}: the languages use different placeholders ({listed})")
        if differ or len(texts) != len(LANGUAGES):
            return None
        return Prompt(key, line, MappingProxyType(texts), frozenset(placeholders[LANGUAGES[0]]))

    def _state(self, name: str, raw: Any, line: int) -> State | None:
        if not _NAME.match(name):
            self.error(
                line, f"state {name!r}: a state name must be a letter, then letters, digits, _ or -"
            )
        if not isinstance(raw, _Located):
            self.error(line, f"state {name!r} must be a mapping with a type and its fields")
            return None
        kind = raw.get("type")
        if not isinstance(kind, str) or kind not in _STATES:
            found = f"unknown type {kind!r}" if "type" in raw else "no type"
            self.error(
                raw.lines.get("type", line),
                f"state {name!r} has {found} (one of {', '.join(_STATES)})",
            )
            return None
        cls, own_fields = _STATES[kind]
        fields = {**own_fields, **_COMMON}
        values: dict[str, Any] = {}
        valid = True
        for key, value in raw.items():
            if key == "type":
                continue
            spec = fields.get(key)
            if spec is None:
                expected = ", ".join(fields)
                self.error(
                    raw.lines[key],
                    f"state {name!r}: unknown field {key!r} for a {kind} (fields: {expected})",
                )
                valid = False
                continue
            try:
                values[spec.attr or key] = spec.read(value, key, self)
            except _Bad as bad:
                for line_of_entry, message in bad.problems:
                    self.error(line_of_entry or raw.lines[key], f"state {name!r}: {message}")
                if bad.partial is not None:
                    self._note_link(spec.links, name, key, bad.partial, raw)
                valid = False
                continue
            self._note_link(spec.links, name, key, values[spec.attr or key], raw)
        for key, spec in fields.items():
            if key in raw:
                continue
            if spec.way_out:
                self.error(line, f"state {name!r} has no way out: add {key!r}")
                valid = False
            elif spec.required:
                self.error(line, f"state {name!r} ({kind}) needs {key!r}")
                valid = False
        if kind == "gather":
            valid = self._check_gather(name, raw, line) and valid
        return cls(name=name, line=line, **values) if valid else None

    def _check_gather(self, name: str, raw: _Located, line: int) -> bool:
        valid = True
        if "num_digits" not in raw and "finish_on_key" not in raw:
            self.error(
                line,
                f"state {name!r}: a gather needs num_digits or finish_on_key, or the caller can never finish",
            )
            valid = False
        if "next" not in raw and "on_digits" not in raw:
            self.error(
                line,
                f"state {name!r} has no way out once digits are keyed: add 'next' or 'on_digits'",
            )
            valid = False
        return valid

    def _note_link(self, links: str | None, name: str, key: str, value: Any, raw: _Located) -> None:
        line = raw.lines[key]
        if links == "state":
            self.state_links.append((line, name, key, value))
        elif links == "states":
            for entry, target in value.items():
                self.state_links.append((raw[key].lines[entry], name, f"{key} {entry}", target))
        elif links == "prompt":
            self.prompt_links.append((line, name, key, value))
        elif links == "input":
            self.input_links.append((line, name, value))
        elif links == "saved":
            self.saved.add(value)

    def _check_links(self, states: _Located, prompts: _Located) -> None:
        for line, name, key, target in self.state_links:
            if target not in states:
                self.error(line, f"state {name!r}: {key} goes to unknown state {target!r}")
        for line, name, key, prompt in self.prompt_links:
            if prompt not in prompts:
                self.error(line, f"state {name!r}: {key} {prompt!r} is not in the prompts table")
        for line, name, value in self.input_links:
            if value not in self.saved:
                self.error(
                    line,
                    f"state {name!r}: input {value!r} is never gathered (no gather has save_as: {value})",
                )

    def _check_secrets(self, states: Mapping[str, State]) -> None:
        """A PIN or code is never written to the call's row, so it lasts only until the call
        waits for the caller again: the action checking it must come before that."""
        secrets = {
            state.input
            for state in states.values()
            if isinstance(state, Action) and state.action in self.secret_actions and state.input
        }
        for gather in states.values():
            if not isinstance(gather, Gather) or gather.save_as not in secrets:
                continue
            keyed = (*gather.on_digits.values(), *((gather.next,) if gather.next else ()))
            waits = _waits_before_reading(gather.save_as, keyed, states)
            if waits is not None:
                self.error(
                    gather.line,
                    f"state {gather.name!r}: {gather.save_as!r} is a secret kept only until the "
                    f"call waits again, and {waits!r} waits before an action reads it",
                )

    def _check_verification(
        self, states: _Located, verification: str | None, data: _Located
    ) -> None:
        if verification is not None or "verification" in data:
            return
        for name, raw in states.items():
            if not isinstance(raw, _Located):
                continue
            if raw.get("verify_first") is True:
                self.error(
                    states.lines[name],
                    f"state {name!r} has verify_first, but the flow names no verification state",
                )
            if raw.get("type") == "resume":
                self.error(
                    states.lines[name],
                    f"state {name!r} resumes after verification, but the flow names no verification state",
                )

    def _check_reachable(
        self,
        start: str,
        verification: str | None,
        raw_states: _Located,
        states: Mapping[str, State],
    ) -> None:
        seen, waiting = {start}, deque([start])
        while waiting:
            for target in self._successors(waiting.popleft(), verification, raw_states, states):
                if target in raw_states and target not in seen:
                    seen.add(target)
                    waiting.append(target)
        for name in raw_states:
            if name not in seen:
                self.error(
                    raw_states.lines[name],
                    f"state {name!r} cannot be reached from the start ({start!r})",
                )

    @staticmethod
    def _successors(
        name: str, verification: str | None, raw_states: _Located, states: Mapping[str, State]
    ) -> Iterator[str]:
        state = states.get(name)
        if state is None:  # a broken state: follow whatever it names, so errors do not cascade
            raw = raw_states[name]
            yield from _strings(raw)
            if verification and isinstance(raw, Mapping) and raw.get("verify_first") is True:
                yield verification
            return
        yield from state.targets()
        if state.verify_first and verification:
            yield verification


def _waits_before_reading(
    saved: str, starts: Iterable[str], states: Mapping[str, State]
) -> str | None:
    """The first state on the way from `starts` that waits for the caller (or may, through
    verification) before an action reads the input `saved`; None when none does."""
    seen: set[str] = set()
    ahead = deque(starts)
    while ahead:
        name = ahead.popleft()
        state = states.get(name)
        if state is None or name in seen:
            continue
        seen.add(name)
        if isinstance(state, Action) and state.input == saved:
            continue  # read here: this way is fine
        if state.verify_first or not isinstance(state, Say | Branch | Action):
            return name
        ahead.extend(state.targets())
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _placeholders(text: str) -> frozenset[str]:
    names = set()
    for _, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not _PLACEHOLDER.match(name) or spec or conversion:
            raise ValueError(f"{{{name}}} must be a plain placeholder, like {{balance}}")
        names.add(name)
    return frozenset(names)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(f"{{{name}}}" for name in sorted(names)) or "none"
