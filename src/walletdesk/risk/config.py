"""The rule configuration: which rules run, their thresholds and the action each one leads to.

The shipped file is risk/rules.yaml; WALLETDESK_RISK_RULES_PATH points to an operator's own.
Every rule must be listed (turned off with `enabled: false`), so a rule added in a new release
never runs, or stays silent, without the operator having decided so. Anything wrong stops the
load with a message naming the rule and the setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

from walletdesk.config import get_settings
from walletdesk.kit.errors import DomainError
from walletdesk.kit.money import parse_amount
from walletdesk.kit.yamlfile import load_yaml
from walletdesk.risk.rules import (
    ACTIONS,
    COUNT,
    MINUTES,
    MONEY,
    PERCENT,
    RATIO,
    RULES,
    RiskConfig,
    RuleConfig,
    RuleSpec,
)

_RULE_KEYS = ("enabled", "action")


class RiskConfigError(ValueError):
    """The risk rule configuration cannot be used; the message says where and why."""


def load_config(path: Path | None = None) -> RiskConfig:
    """Read and validate a rules file; None reads the one shipped with walletdesk."""
    data, source = load_yaml(
        path,
        package="walletdesk.risk",
        name="rules.yaml",
        what="the risk rules",
        error=RiskConfigError,
    )
    return parse_config(data, source=source)


@lru_cache
def _cached(path: Path | None) -> RiskConfig:
    return load_config(path)


def current_config() -> RiskConfig:
    """The configuration in force, read once per process (and per path, for tests)."""
    return _cached(get_settings().risk_rules_path)


def parse_config(data: Any, *, source: str = "risk rules") -> RiskConfig:
    if not isinstance(data, Mapping):
        raise RiskConfigError(f"{source}: expected a mapping with 'history_days' and 'rules'")
    _no_unknown(data, ("history_days", "rules"), source)
    history_days = _whole(data.get("history_days", 90), f"{source}: history_days", minimum=1)
    rules = data.get("rules")
    if not isinstance(rules, Mapping):
        raise RiskConfigError(f"{source}: 'rules' must map each rule name to its settings")
    for name in rules:
        if name not in RULES:
            known = ", ".join(sorted(RULES))
            raise RiskConfigError(f"{source}: unknown rule {name!r} (known rules: {known})")
    parsed = {}
    for name, spec in RULES.items():
        if name not in rules:
            raise RiskConfigError(
                f"{source}: rule {name!r} is missing; list it, with 'enabled: false' to turn it off"
            )
        parsed[name] = _parse_rule(spec, rules[name], f"{source}: rule {name!r}")
        _check_windows(parsed[name], history_days, f"{source}: rule {name!r}")
    return RiskConfig(rules=parsed, history_days=history_days)


def _parse_rule(spec: RuleSpec, raw: Any, where: str) -> RuleConfig:
    if not isinstance(raw, Mapping):
        raise RiskConfigError(f"{where}: expected a mapping of settings")
    _no_unknown(raw, (*_RULE_KEYS, *spec.params), where)
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        raise RiskConfigError(f"{where}: 'enabled' must be true or false")
    action = raw.get("action")
    if action not in ACTIONS:
        raise RiskConfigError(f"{where}: 'action' must be one of {', '.join(ACTIONS)}")
    params = {}
    for param, kind in spec.params.items():
        if param not in raw:
            raise RiskConfigError(f"{where}: '{param}' is missing")
        params[param] = _parse_param(kind, raw[param], f"{where}: '{param}'")
    return RuleConfig(enabled=enabled, action=action, params=params)


def _parse_param(kind: str, value: Any, where: str) -> Any:
    if kind in (COUNT, MINUTES):
        return _whole(value, where, minimum=1)
    if kind == PERCENT:
        return _whole(value, where, minimum=1, maximum=99)
    if kind == RATIO:
        return _ratio(value, where)
    if kind == MONEY:
        return _money_table(value, where)
    raise AssertionError(f"unknown parameter kind {kind!r}")  # a programming error in rules.py


def _whole(value: Any, where: str, *, minimum: int, maximum: int | None = None) -> int:
    # bool is an int in Python; `true` is never a sensible count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RiskConfigError(f"{where} must be a whole number")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise RiskConfigError(f"{where} must be at least {minimum}{upper}")
    return value


def _ratio(value: Any, where: str) -> Fraction:
    # Kept as an exact fraction so that comparing it with amounts never rounds.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RiskConfigError(f"{where} must be a number such as 5 or 2.5")
    try:
        ratio = Fraction(str(value))
    except ValueError:
        raise RiskConfigError(f"{where} must be a number such as 5 or 2.5") from None
    if ratio <= 0:
        raise RiskConfigError(f"{where} must be more than zero")
    return ratio


def _money_table(value: Any, where: str) -> dict[str, int]:
    if not isinstance(value, Mapping) or not value:
        raise RiskConfigError(f"{where} must map currencies to amounts, like {{CNY: '5000'}}")
    table = {}
    for currency, amount in value.items():
        if isinstance(amount, bool | float) or not isinstance(amount, int | str):
            raise RiskConfigError(
                f"{where}: write the {currency} amount as quoted text, like '5000.00'"
            )
        try:
            table[str(currency)] = parse_amount(amount, str(currency))
        except DomainError as error:
            raise RiskConfigError(f"{where}: {currency}: {error.message('en')}") from None
    return table


def _no_unknown(raw: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise RiskConfigError(
                f"{where}: unknown setting {key!r} (expected: {', '.join(allowed)})"
            )


def _check_windows(settings: RuleConfig, history_days: int, where: str) -> None:
    """A window longer than the loaded history would silently see only part of it."""
    window = settings.params.get("window_minutes")
    if window is not None and window > history_days * 24 * 60:
        raise RiskConfigError(
            f"{where}: 'window_minutes' ({window}) is longer than history_days ({history_days})"
        )
