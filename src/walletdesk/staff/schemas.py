"""What the staff API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from walletdesk.kit import clock
from walletdesk.kit.clock import as_utc
from walletdesk.kit.money import format_minor
from walletdesk.staff.models import StaffRole, StaffUser
from walletdesk.staff.service import is_locked

Skill = Annotated[str, Field(min_length=1, max_length=32, examples=["zh-CN", "payments"])]
Amount = Annotated[str, Field(max_length=24, examples=["50.00"])]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(In):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024, repr=False)
    totp: str = Field(
        min_length=1, max_length=12, repr=False, description="The authenticator app's code"
    )


class CreateStaffIn(In):
    username: str = Field(min_length=2, max_length=64, examples=["agent.li"])
    display_name: str = Field(min_length=1, max_length=100)
    role: StaffRole
    password: str = Field(max_length=1024, repr=False)
    skills: list[Skill] = Field(default_factory=list, max_length=20)
    goodwill_per_action: Amount = Field(
        default="0", description="Most an agent may credit in one goodwill action unapproved"
    )
    goodwill_per_day: Amount = Field(default="0", description="Most per day, all actions together")
    limits_currency: str = Field(default="CNY", max_length=8)


def _iso(moment: datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def staff_summary(staff: StaffUser) -> dict[str, Any]:
    """Who is signed in, as a console shows them."""
    return {
        "id": staff.id,
        "username": staff.username,
        "display_name": staff.display_name,
        "role": staff.role,
        "skills": list(staff.skills),
    }


def staff_out(staff: StaffUser) -> dict[str, Any]:
    currency = staff.limits_currency
    return {
        **staff_summary(staff),
        "goodwill_per_action": format_minor(staff.goodwill_per_action, currency),
        "goodwill_per_day": format_minor(staff.goodwill_per_day, currency),
        "limits_currency": currency,
        "failed_logins": staff.failed_logins,
        "locked": is_locked(staff, clock.now()),
        "locked_until": _iso(staff.locked_until),
        "disabled_at": _iso(staff.disabled_at),
        "created_at": _iso(staff.created_at),
    }
