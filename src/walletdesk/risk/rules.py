"""Risk rules: pure functions over one event and the customer's recent history.

Nothing here reads the database or the clock: risk.service loads the history and the event
carries its own time, so each rule is checked in a unit test with a few hand-made values and
the whole rule set runs in microseconds. A rule answers "did I fire, and with which facts?";
the action it leads to comes from the configuration (rules.yaml), so an operator can make a
rule stricter, softer or monitor-only without touching code.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

# Weakest to strictest: a decision takes the strictest action among the rules that fired.
ALLOW, CHALLENGE, HOLD, DECLINE, LOCK = "allow", "challenge", "hold", "decline", "lock"
ACTIONS = (ALLOW, CHALLENGE, HOLD, DECLINE, LOCK)
_RANK = {action: rank for rank, action in enumerate(ACTIONS)}

EVENT_KINDS = (
    "login",
    "payment",
    "transfer",
    "topup",
    "withdrawal",
    "exchange",  # between the customer's own wallets: no rule looks at it today
    "card_added",
    "credential_change",
)
# Money leaving the customer for someone else: what a thief is after.
OUTGOING = frozenset({"payment", "transfer", "withdrawal"})


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """Something about to happen; amounts are minor units of `currency`."""

    kind: str
    customer_id: int
    at: datetime
    amount: int | None = None
    currency: str | None = None
    new_device: bool = False
    recipient_id: int | None = None
    card_fingerprint: str | None = None
    failed_logins_before: int = 0  # failed logins just before this successful one (identity)
    password_reset_at: datetime | None = None  # the last password reset (identity)
    per_transaction_limit: int | None = None  # in minor units of `currency`


@dataclass(frozen=True, slots=True)
class PastMovement:
    """An outgoing payment, transfer or withdrawal that succeeded or is still pending."""

    amount: int
    currency: str
    at: datetime
    recipient_id: int | None = None


@dataclass(frozen=True, slots=True)
class AddedCard:
    fingerprint: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RiskHistory:
    """What the rules may know of the customer's past, oldest first.

    Movements are kept in detail only as far back as the longest rule window reaches; for the
    months before, the amounts alone are enough to know what the customer usually spends,
    and they are far cheaper to load.
    """

    # Recent outgoing movements: at least as far back as the longest enabled rule window.
    outgoing: tuple[PastMovement, ...] = ()
    # Amounts of outgoing movements per currency over the whole history (history_days).
    usual_amounts: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    # Customers this one has successfully sent money to before (at least the event's recipient,
    # if known: the evaluator looks up only that one).
    known_recipients: frozenset[int] = frozenset()
    cards: tuple[AddedCard, ...] = ()  # cards added, removed ones included

    @classmethod
    def of(
        cls,
        movements: Iterable[PastMovement],
        known_recipients: Iterable[int] = (),
        cards: Iterable[AddedCard] = (),
    ) -> RiskHistory:
        """A history whose movements, all in detail, also give the usual amounts."""
        movements = tuple(movements)
        amounts: dict[str, list[int]] = {}
        for movement in movements:
            amounts.setdefault(movement.currency, []).append(movement.amount)
        return cls(
            outgoing=movements,
            usual_amounts={currency: tuple(values) for currency, values in amounts.items()},
            known_recipients=frozenset(known_recipients),
            cards=tuple(cards),
        )


@dataclass(frozen=True, slots=True)
class RuleHit:
    rule: str
    action: str
    reason_params: dict[str, Any]  # JSON-safe facts the explanation is built from


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """One rule's settings, already validated (see risk.config)."""

    enabled: bool
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def money(self, name: str, currency: str | None) -> int | None:
        """A per-currency threshold in minor units; None when the currency has none."""
        table: Mapping[str, int] = self.params[name]
        return table.get(currency) if currency else None


@dataclass(frozen=True, slots=True)
class RiskConfig:
    rules: Mapping[str, RuleConfig]
    history_days: int = 90  # how far back the evaluator loads history

    @property
    def longest_window_minutes(self) -> int:
        """How far back the enabled rules look at movements in detail."""
        windows = [
            settings.params.get("window_minutes", 0)
            for settings in self.rules.values()
            if settings.enabled
        ]
        return max(windows, default=0)


Facts = dict[str, Any]
Check = Callable[[RiskEvent, RiskHistory, RuleConfig], Facts | None]

# Parameter kinds a rule can declare; risk.config validates and converts each.
COUNT, MINUTES, PERCENT, RATIO, MONEY = "count", "minutes", "percent", "ratio", "money"


@dataclass(frozen=True, slots=True)
class RuleSpec:
    name: str
    check: Check
    params: Mapping[str, str]  # parameter name -> kind


RULES: dict[str, RuleSpec] = {}


def rule(name: str, **params: str) -> Callable[[Check], Check]:
    """Register a check under `name` with the parameters its configuration must give."""

    def register(check: Check) -> Check:
        RULES[name] = RuleSpec(name, check, params)
        return check

    return register


def strictest(actions: Iterable[str]) -> str:
    return max(actions, key=_RANK.__getitem__, default=ALLOW)


def decide(event: RiskEvent, history: RiskHistory, config: RiskConfig) -> tuple[str, list[RuleHit]]:
    """Run every enabled rule; the decision is the strictest action among those that fired."""
    hits = []
    for name, settings in config.rules.items():
        if not settings.enabled:
            continue
        facts = RULES[name].check(event, history, settings)
        if facts is not None:
            hits.append(RuleHit(name, settings.action, facts))
    return strictest(hit.action for hit in hits), hits


@dataclass(frozen=True, slots=True)
class HistoryNeeds:
    movements: bool  # outgoing movements, recent ones in detail and the usual amounts
    cards: bool
    recipient: bool  # whether the event's recipient was paid before


def history_needed(event: RiskEvent) -> HistoryNeeds:
    """The parts of the history some rule can use for this event; the evaluator loads only
    those, so a login costs no query at all. Keep in step with the rules below (a unit test
    runs every rule on the trimmed history to check)."""
    return HistoryNeeds(
        movements=event.kind in OUTGOING,
        cards=event.kind == "card_added",
        recipient=event.kind == "transfer" and event.recipient_id is not None,
    )


# --- helpers ------------------------------------------------------------------------------------


def _recent(history: RiskHistory, event: RiskEvent, minutes: int) -> list[PastMovement]:
    """Outgoing movements in the `minutes` before the event."""
    since = event.at - timedelta(minutes=minutes)
    return [m for m in history.outgoing if since < m.at <= event.at]


def _money_out(event: RiskEvent) -> bool:
    return event.kind in OUTGOING and event.amount is not None and event.currency is not None


def _at_least(event: RiskEvent, settings: RuleConfig, name: str) -> bool:
    """Is the event's amount at or above the rule's threshold for its currency?"""
    threshold = settings.money(name, event.currency)
    return threshold is not None and event.amount is not None and event.amount >= threshold


def _amount_facts(event: RiskEvent) -> Facts:
    return {"amount": event.amount, "currency": event.currency}


# --- the rules ----------------------------------------------------------------------------------


@rule("velocity_count", window_minutes=MINUTES, max_count=COUNT)
def velocity_count(event: RiskEvent, history: RiskHistory, settings: RuleConfig) -> Facts | None:
    """Many payments in a few minutes: scripted draining of a taken-over account."""
    if event.kind not in OUTGOING:
        return None
    window = settings.params["window_minutes"]
    count = len(_recent(history, event, window)) + 1
    if count <= settings.params["max_count"]:
        return None
    return {"count": count, "window_minutes": window}


@rule("velocity_amount", window_minutes=MINUTES, max_amount=MONEY)
def velocity_amount(event: RiskEvent, history: RiskHistory, settings: RuleConfig) -> Facts | None:
    """Much money out in a short time, even in amounts that look harmless one by one."""
    limit = settings.money("max_amount", event.currency)
    if not _money_out(event) or limit is None:
        return None
    window = settings.params["window_minutes"]
    total = event.amount or 0
    total += sum(m.amount for m in _recent(history, event, window) if m.currency == event.currency)
    if total <= limit:
        return None
    return {"total": total, "currency": event.currency, "window_minutes": window}


@rule("amount_above_usual", multiplier=RATIO, min_history=COUNT, min_amount=MONEY)
def amount_above_usual(
    event: RiskEvent, history: RiskHistory, settings: RuleConfig
) -> Facts | None:
    """An amount many times the customer's typical one (the median resists a few big outliers)."""
    if not _money_out(event) or not _at_least(event, settings, "min_amount"):
        return None
    past = history.usual_amounts.get(event.currency or "", ())
    if len(past) < settings.params["min_history"]:
        return None  # too little history to know what "usual" is
    usual = statistics.median_low(past)
    multiplier: Fraction = settings.params["multiplier"]
    if event.amount is None or event.amount <= usual * multiplier:
        return None
    return {**_amount_facts(event), "usual": usual}


@rule("new_device_large_amount", large_amount=MONEY)
def new_device_large_amount(
    event: RiskEvent, history: RiskHistory, settings: RuleConfig
) -> Facts | None:
    """A large amount from a device never used before: stolen credentials used elsewhere.

    Top-ups count too: a stolen card is often loaded from the thief's own phone.
    """
    if event.kind not in OUTGOING | {"topup"} or not event.new_device:
        return None
    if not _at_least(event, settings, "large_amount"):
        return None
    return _amount_facts(event)


@rule("failed_logins_then_success", min_failures=COUNT)
def failed_logins_then_success(
    event: RiskEvent, history: RiskHistory, settings: RuleConfig
) -> Facts | None:
    """A run of wrong passwords ending in the right one: guessing or credential stuffing."""
    if event.kind != "login" or event.failed_logins_before < settings.params["min_failures"]:
        return None
    return {"failures": event.failed_logins_before}


@rule("reset_then_large_payment", window_minutes=MINUTES, large_amount=MONEY)
def reset_then_large_payment(
    event: RiskEvent, history: RiskHistory, settings: RuleConfig
) -> Facts | None:
    """A large amount soon after a password reset: the usual shape of an account takeover."""
    reset = event.password_reset_at
    if not _money_out(event) or reset is None or not _at_least(event, settings, "large_amount"):
        return None
    window = settings.params["window_minutes"]
    if not timedelta(0) <= event.at - reset <= timedelta(minutes=window):
        return None
    return {**_amount_facts(event), "window_minutes": window}


@rule("new_recipient_large_amount", large_amount=MONEY)
def new_recipient_large_amount(
    event: RiskEvent, history: RiskHistory, settings: RuleConfig
) -> Facts | None:
    """A large transfer to someone never paid before: scams and mule accounts."""
    if event.kind != "transfer" or event.recipient_id is None:
        return None
    if event.recipient_id in history.known_recipients:
        return None
    if not _at_least(event, settings, "large_amount"):
        return None
    return _amount_facts(event)


@rule("many_cards", window_minutes=MINUTES, max_cards=COUNT)
def many_cards(event: RiskEvent, history: RiskHistory, settings: RuleConfig) -> Facts | None:
    """Many different cards added in a short time: someone testing stolen card numbers."""
    if event.kind != "card_added":
        return None
    window = settings.params["window_minutes"]
    since = event.at - timedelta(minutes=window)
    # Distinct fingerprints: removing and re-adding one card is not "many cards".
    seen = {c.fingerprint for c in history.cards if since < c.at <= event.at}
    if event.card_fingerprint:
        seen.add(event.card_fingerprint)
    if len(seen) <= settings.params["max_cards"]:
        return None
    return {"cards": len(seen), "window_minutes": window}


@rule("just_under_limit", window_minutes=MINUTES, near_percent=PERCENT, min_count=COUNT)
def just_under_limit(event: RiskEvent, history: RiskHistory, settings: RuleConfig) -> Facts | None:
    """Repeated amounts just below the per-transaction limit: splitting to slip under it."""
    limit = event.per_transaction_limit
    if not _money_out(event) or limit is None or event.amount is None:
        return None
    percent = settings.params["near_percent"]

    def near(amount: int) -> bool:  # integer arithmetic: money never goes through a float
        return amount * 100 >= limit * percent and amount <= limit

    if not near(event.amount):
        return None
    window = settings.params["window_minutes"]
    recent = _recent(history, event, window)
    count = 1 + sum(1 for m in recent if m.currency == event.currency and near(m.amount))
    if count < settings.params["min_count"]:
        return None
    return {"count": count, "limit": limit, "currency": event.currency, "window_minutes": window}


@rule("credential_change_new_device")
def credential_change_new_device(
    event: RiskEvent, history: RiskHistory, settings: RuleConfig
) -> Facts | None:
    """Changing the password, phone or email from an unknown device locks the real owner out."""
    if event.kind != "credential_change" or not event.new_device:
        return None
    return {}
