"""Risk rules as pure functions: each fires on the pattern it looks for and stays quiet on an
ordinary customer's history; the decision is the strictest action; the configuration file is
obeyed and a broken one is refused at load, naming the rule."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from walletdesk.config import get_settings
from walletdesk.risk.config import RiskConfigError, current_config, load_config, parse_config
from walletdesk.risk.explain import explain
from walletdesk.risk.rules import (
    RULES,
    AddedCard,
    PastMovement,
    RiskConfig,
    RiskEvent,
    RiskHistory,
    RuleConfig,
    RuleHit,
    decide,
    history_needed,
    strictest,
)

NOW = datetime(2026, 1, 15, 2, 0, tzinfo=UTC)
CUSTOMER = 1
FRIEND = 7  # someone the customer has paid before
STRANGER = 99
LIMIT = 5_000_000  # 50000.00 CNY, the default per-transaction limit
SHIPPED = load_config()


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def normal_history() -> RiskHistory:
    """Three months of everyday spending: a payment or two a day, 30 to 300 CNY."""
    outgoing = tuple(
        PastMovement(3_000 + (day * 3_700) % 27_000, "CNY", ago(days=day, hours=5))
        for day in range(90, 0, -1)
    )
    transfers = (PastMovement(20_000, "CNY", ago(days=30), FRIEND),)
    cards = (AddedCard("card-a", ago(days=80)), AddedCard("card-b", ago(days=20)))
    return RiskHistory.of(outgoing + transfers, {FRIEND}, cards)


def event(kind: str = "payment", amount: int | None = 12_000, **fields: object) -> RiskEvent:
    currency = "CNY" if amount is not None else None
    values: dict[str, object] = {
        "kind": kind,
        "customer_id": CUSTOMER,
        "at": NOW,
        "amount": amount,
        "currency": currency,
        "per_transaction_limit": LIMIT if amount is not None else None,
    }
    values.update(fields)
    return RiskEvent(**values)  # type: ignore[arg-type]


def burst(
    count: int, amount: int, *, minutes_apart: float = 1, to: int | None = None
) -> RiskHistory:
    """`count` recent movements on top of the normal history."""
    base = normal_history()
    recent = tuple(
        PastMovement(amount, "CNY", ago(minutes=(i + 1) * minutes_apart), to) for i in range(count)
    )
    return replace(base, outgoing=base.outgoing + recent)


def only(name: str, **params: object) -> RiskConfig:
    """The shipped configuration with just one rule on, its parameters optionally changed."""
    settings = SHIPPED.rules[name]
    changed = RuleConfig(True, settings.action, {**settings.params, **params})
    return RiskConfig({name: changed}, SHIPPED.history_days)


def fired(ev: RiskEvent, history: RiskHistory, config: RiskConfig = SHIPPED) -> list[str]:
    return [hit.rule for hit in decide(ev, history, config)[1]]


# --- each rule: fires on its pattern ------------------------------------------------------------

FIRING = {
    "velocity_count": (event(amount=5_000), burst(5, 5_000)),
    "velocity_amount": (event(amount=1_000_000), burst(3, 800_000, minutes_apart=10)),
    "amount_above_usual": (event(amount=400_000), normal_history()),
    "new_device_large_amount": (event(amount=600_000, new_device=True), normal_history()),
    "failed_logins_then_success": (event("login", None, failed_logins_before=6), normal_history()),
    "reset_then_large_payment": (
        event(amount=600_000, password_reset_at=ago(hours=2)),
        normal_history(),
    ),
    "new_recipient_large_amount": (
        event("transfer", 1_500_000, recipient_id=STRANGER),
        normal_history(),
    ),
    "many_cards": (
        event("card_added", None, card_fingerprint="card-z"),
        replace(
            normal_history(),
            cards=tuple(AddedCard(f"new-{i}", ago(hours=i + 1)) for i in range(3)),
        ),
    ),
    "just_under_limit": (
        event("transfer", 4_900_000, recipient_id=FRIEND),
        burst(2, 4_800_000, minutes_apart=120, to=FRIEND),
    ),
    "credential_change_new_device": (
        event("credential_change", None, new_device=True),
        normal_history(),
    ),
}


def test_every_rule_has_a_firing_case() -> None:
    assert set(FIRING) == set(RULES)


@pytest.mark.parametrize("name", sorted(FIRING))
def test_the_history_the_evaluator_loads_is_enough(name: str) -> None:
    """The evaluator loads only what history_needed names; each rule must still fire on it."""
    ev, history = FIRING[name]
    needs = history_needed(ev)
    trimmed = RiskHistory(
        outgoing=history.outgoing if needs.movements else (),
        usual_amounts=history.usual_amounts if needs.movements else {},
        known_recipients=history.known_recipients if needs.recipient else frozenset(),
        cards=history.cards if needs.cards else (),
    )
    assert decide(ev, trimmed, only(name)) == decide(ev, history, only(name))


@pytest.mark.parametrize("name", sorted(FIRING))
def test_rule_fires_on_its_pattern(name: str) -> None:
    ev, history = FIRING[name]
    action, hits = decide(ev, history, only(name))
    assert [hit.rule for hit in hits] == [name]
    assert action == SHIPPED.rules[name].action


# --- and stays quiet on an ordinary customer ----------------------------------------------------

ORDINARY = [
    event(amount=12_000),
    event(amount=28_000, new_device=False),
    event("transfer", 150_000, recipient_id=FRIEND),
    event("withdrawal", 100_000),
    event("topup", 200_000),
    event("login", None, failed_logins_before=1),
    event("login", None, new_device=True),
    event("card_added", None, card_fingerprint="card-c"),
    event("credential_change", None),
    event("exchange", 50_000),
]


@pytest.mark.parametrize("ev", ORDINARY, ids=lambda ev: ev.kind)
def test_an_ordinary_day_fires_nothing(ev: RiskEvent) -> None:
    assert decide(ev, normal_history(), SHIPPED) == ("allow", [])


def test_a_new_customer_with_no_history_is_not_flagged_for_small_amounts() -> None:
    assert decide(event(amount=50_000), RiskHistory(), SHIPPED) == ("allow", [])


def test_velocity_counts_only_the_window() -> None:
    spread_out = burst(5, 5_000, minutes_apart=30)
    assert "velocity_count" not in fired(event(amount=5_000), spread_out)


def test_velocity_amount_adds_up_only_the_events_currency() -> None:
    history = burst(3, 800_000, minutes_apart=10)
    in_usd = replace(history, outgoing=tuple(replace(m, currency="USD") for m in history.outgoing))
    assert "velocity_amount" in fired(event(amount=1_000_000), history, only("velocity_amount"))
    assert fired(event(amount=1_000_000), in_usd, only("velocity_amount")) == []


def test_usual_amount_needs_enough_history_and_a_meaningful_sum() -> None:
    few = RiskHistory.of(PastMovement(1_000, "CNY", ago(days=d)) for d in (1, 2, 3))
    assert fired(event(amount=400_000), few, only("amount_above_usual")) == []
    small = event(amount=150_000)  # 150x a 10 CNY habit, but below min_amount (2000 CNY)
    tiny = RiskHistory.of(PastMovement(1_000, "CNY", ago(days=d)) for d in range(10))
    assert fired(small, tiny, only("amount_above_usual")) == []


def test_a_large_transfer_to_someone_paid_before_is_not_a_new_recipient() -> None:
    ev = event("transfer", 1_500_000, recipient_id=FRIEND)
    assert fired(ev, normal_history(), only("new_recipient_large_amount")) == []


def test_a_login_needs_enough_failures() -> None:
    assert fired(event("login", None, failed_logins_before=4), RiskHistory()) == []


def test_an_old_password_reset_does_not_count() -> None:
    ev = event(amount=600_000, password_reset_at=ago(days=3))
    assert fired(ev, normal_history(), only("reset_then_large_payment")) == []


def test_re_adding_the_same_card_is_not_many_cards() -> None:
    history = replace(
        normal_history(), cards=tuple(AddedCard("same", ago(hours=h)) for h in range(1, 6))
    )
    ev = event("card_added", None, card_fingerprint="same")
    assert fired(ev, history, only("many_cards")) == []


def test_cards_outside_the_window_do_not_count() -> None:
    history = replace(
        normal_history(), cards=tuple(AddedCard(f"old-{d}", ago(days=d)) for d in range(2, 8))
    )
    assert fired(event("card_added", None, card_fingerprint="x"), history) == []


def test_amounts_over_the_limit_or_well_under_it_are_not_just_under() -> None:
    history = burst(2, 4_800_000, minutes_apart=120, to=FRIEND)
    over = event("transfer", LIMIT + 1, recipient_id=FRIEND)
    well_under = event("transfer", 3_000_000, recipient_id=FRIEND)
    for ev in (over, well_under):
        assert fired(ev, history, only("just_under_limit")) == []


def test_a_credential_change_from_a_known_device_is_fine() -> None:
    assert fired(event("credential_change", None), RiskHistory()) == []


# --- the decision -------------------------------------------------------------------------------


def test_the_strictest_action_wins_and_every_hit_is_kept() -> None:
    ev = event(
        "transfer",
        1_500_000,
        recipient_id=STRANGER,
        new_device=True,
        password_reset_at=ago(minutes=30),
    )
    action, hits = decide(ev, normal_history(), SHIPPED)
    assert action == "hold"  # reset_then_large_payment holds; the others only challenge
    assert {hit.rule for hit in hits} == {
        "new_device_large_amount",
        "new_recipient_large_amount",
        "reset_then_large_payment",
        "amount_above_usual",
    }


def test_actions_are_ordered() -> None:
    assert strictest([]) == "allow"
    assert strictest(["challenge", "lock", "hold"]) == "lock"
    assert strictest(["decline", "hold"]) == "decline"
    assert strictest(["allow", "challenge"]) == "challenge"


def test_a_rule_turned_off_never_fires() -> None:
    ev, history = FIRING["many_cards"]
    off = replace(
        SHIPPED,
        rules={**SHIPPED.rules, "many_cards": replace(SHIPPED.rules["many_cards"], enabled=False)},
    )
    assert decide(ev, history, off) == ("allow", [])


def test_thresholds_come_from_the_configuration() -> None:
    ev = event(amount=5_000)
    history = burst(5, 5_000)
    assert fired(ev, history, only("velocity_count", max_count=6)) == []
    assert fired(ev, history, only("velocity_count", max_count=5)) == ["velocity_count"]


def test_the_action_comes_from_the_configuration() -> None:
    ev, history = FIRING["failed_logins_then_success"]
    settings = replace(SHIPPED.rules["failed_logins_then_success"], action="lock")
    assert decide(ev, history, RiskConfig({"failed_logins_then_success": settings}))[0] == "lock"


def test_an_empty_rule_set_allows_everything() -> None:
    for ev, history in FIRING.values():
        assert decide(ev, history, RiskConfig({})) == ("allow", [])


# --- explanations -------------------------------------------------------------------------------


def test_explanations_state_the_facts_in_both_languages() -> None:
    hits = [RuleHit("many_cards", "lock", {"cards": 4, "window_minutes": 1440})]
    en, zh = explain("lock", hits, "en"), explain("lock", hits, "zh-CN")
    assert "locked your account" in en and "4 different cards" in en and "24 hours" in en
    assert "锁定" in zh and "4 张不同的银行卡" in zh and "24 小时" in zh


def test_explanations_show_amounts_as_money() -> None:
    hit = RuleHit("new_device_large_amount", "challenge", {"amount": 600_000, "currency": "CNY"})
    assert "6000.00 CNY" in explain("challenge", [hit], "en")
    assert "6000.00 CNY" in explain("challenge", [hit], "zh-CN")


def test_a_monitor_only_hit_is_noted_not_presented_as_a_block() -> None:
    hit = RuleHit("failed_logins_then_success", "allow", {"failures": 6})
    assert (
        explain("allow", [hit], "en")
        == "Allowed; noted: 6 wrong passwords were tried before this sign-in."
    )
    assert explain("allow", [], "zh-CN") == "未发现异常。"


# --- the configuration file ---------------------------------------------------------------------


def shipped_data() -> dict:
    path = Path(__file__).parents[2] / "src" / "walletdesk" / "risk" / "rules.yaml"
    return yaml.safe_load(path.read_text("utf-8"))


def test_the_shipped_file_turns_every_rule_on() -> None:
    assert set(SHIPPED.rules) == set(RULES)
    assert all(settings.enabled for settings in SHIPPED.rules.values())
    assert SHIPPED.rules["new_device_large_amount"].money("large_amount", "CNY") == 500_000


def _amounts(rules: dict, rule: str, param: str) -> dict:
    return rules[rule][param]


# What goes wrong -> (how to break the shipped rules, the rule the error must name).
BROKEN: dict[str, tuple[Callable[[dict], object], str]] = {
    "unknown rule": (lambda r: r.update(sixth_sense={"enabled": True}), "sixth_sense"),
    "missing rule": (lambda r: r.pop("many_cards"), "many_cards"),
    "bad action": (lambda r: r["many_cards"].update(action="shrug"), "many_cards"),
    "enabled not a bool": (lambda r: r["many_cards"].update(enabled="yes"), "many_cards"),
    "missing threshold": (lambda r: r["many_cards"].pop("max_cards"), "many_cards"),
    "unknown setting": (lambda r: r["many_cards"].update(max_crads=3), "many_cards"),
    "negative count": (lambda r: r["many_cards"].update(max_cards=-1), "many_cards"),
    "window longer than history": (
        lambda r: r["many_cards"].update(window_minutes=91 * 24 * 60),
        "many_cards",
    ),
    "float amount": (
        lambda r: _amounts(r, "velocity_amount", "max_amount").update(CNY=30000.5),
        "velocity_amount",
    ),
    "too many decimals": (
        lambda r: _amounts(r, "velocity_amount", "max_amount").update(JPY="10.5"),
        "velocity_amount",
    ),
    "unknown currency": (
        lambda r: _amounts(r, "velocity_amount", "max_amount").update(XYZ="10"),
        "velocity_amount",
    ),
    "percent out of range": (
        lambda r: r["just_under_limit"].update(near_percent=100),
        "just_under_limit",
    ),
    "ratio not a number": (
        lambda r: r["amount_above_usual"].update(multiplier="lots"),
        "amount_above_usual",
    ),
}


@pytest.mark.parametrize("change", sorted(BROKEN))
def test_a_broken_configuration_is_refused_naming_the_rule(change: str) -> None:
    breaks, rule = BROKEN[change]
    data = shipped_data()
    breaks(data["rules"])
    with pytest.raises(RiskConfigError) as refused:
        parse_config(data, source="ops.yaml")
    assert rule in str(refused.value)
    assert "ops.yaml" in str(refused.value)


def test_a_file_that_is_not_yaml_or_not_there_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules: [unclosed", "utf-8")
    with pytest.raises(RiskConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(RiskConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_an_operator_file_replaces_the_shipped_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    data = shipped_data()
    data["rules"]["many_cards"]["enabled"] = False
    path = tmp_path / "ops-rules.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    monkeypatch.setenv("WALLETDESK_RISK_RULES_PATH", str(path))
    get_settings.cache_clear()
    ev, history = FIRING["many_cards"]
    assert decide(ev, history, current_config()) == ("allow", [])
