"""SLA arithmetic: business time across nights, holidays, short days, time zones and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from walletdesk.support.hours import (
    DateException,
    WeeklySchedule,
    every_day,
    open_windows,
    parse_intervals,
    parse_week,
)
from walletdesk.support.sla import (
    AROUND_THE_CLOCK,
    Policy,
    PolicyError,
    add_business_time,
    business_time_between,
    deadlines,
    parse_duration,
    parse_policies,
    paused_so_far,
    policy_for,
    resumed_due,
    shipped_policies,
    target_state,
)

BEIJING = timezone(timedelta(hours=8))
EST, EDT = timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4))
HOUR = timedelta(hours=1)


def beijing(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def hotline(*exceptions: DateException) -> WeeklySchedule:
    """Open 08:00-22:00 every day in Shanghai, like the default phone hours."""
    return WeeklySchedule("Asia/Shanghai", every_day("08:00-22:00"), exceptions=exceptions)


def new_york_office() -> WeeklySchedule:
    weekdays = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
    return WeeklySchedule("America/New_York", parse_week(weekdays))


# --- business time in Asia/Shanghai ------------------------------------------------------------


def test_inside_hours_business_time_is_clock_time() -> None:
    assert add_business_time(hotline(), beijing(2026, 1, 15, 10), 4 * HOUR) == beijing(
        2026, 1, 15, 14
    )


def test_an_evening_case_runs_into_the_next_morning() -> None:
    # Opened at 20:00 with four hours to go: two tonight, two from eight tomorrow.
    assert add_business_time(hotline(), beijing(2026, 1, 15, 20), 4 * HOUR) == beijing(
        2026, 1, 16, 10
    )


def test_a_case_opened_at_night_starts_counting_at_opening() -> None:
    assert add_business_time(hotline(), beijing(2026, 1, 15, 23, 30), HOUR) == beijing(
        2026, 1, 16, 9
    )


def test_a_deadline_landing_on_closing_time_stays_there() -> None:
    assert add_business_time(hotline(), beijing(2026, 1, 15, 20), 2 * HOUR) == beijing(
        2026, 1, 15, 22
    )


def test_a_holiday_is_skipped() -> None:
    festival = DateException(date(2026, 2, 17), note="Spring Festival")
    due = add_business_time(hotline(festival), beijing(2026, 2, 16, 21), 2 * HOUR)
    assert due == beijing(2026, 2, 18, 9)
    assert business_time_between(hotline(festival), beijing(2026, 2, 16, 21), due) == 2 * HOUR


def test_a_partial_day_counts_only_its_short_hours() -> None:
    eve = DateException(date(2026, 2, 16), parse_intervals(["09:00-12:00"]), note="New Year's Eve")
    schedule = hotline(eve)
    assert add_business_time(schedule, beijing(2026, 2, 16, 7), 4 * HOUR) == beijing(2026, 2, 17, 9)
    whole_day = business_time_between(schedule, beijing(2026, 2, 16), beijing(2026, 2, 17))
    assert whole_day == 3 * HOUR


def test_business_time_between_counts_only_open_hours() -> None:
    between = business_time_between(hotline(), beijing(2026, 1, 15, 21), beijing(2026, 1, 16, 9))
    assert between == 2 * HOUR
    assert business_time_between(hotline(), beijing(2026, 1, 16), beijing(2026, 1, 15)) == (
        timedelta(0)
    )


def test_zero_time_is_now_and_a_schedule_that_never_opens_has_no_deadline() -> None:
    assert add_business_time(hotline(), beijing(2026, 1, 15, 23), timedelta(0)) == beijing(
        2026, 1, 15, 23
    )
    never = WeeklySchedule("Asia/Shanghai")
    assert add_business_time(never, beijing(2026, 1, 15), HOUR) is None


def test_the_same_deadline_whatever_zone_the_start_is_written_in() -> None:
    start = beijing(2026, 1, 15, 20)
    for seen_as in (UTC, EST, BEIJING):
        assert add_business_time(hotline(), start.astimezone(seen_as), 4 * HOUR) == beijing(
            2026, 1, 16, 10
        )


# --- America/New_York across DST ---------------------------------------------------------------


def test_office_hours_across_the_spring_forward_weekend() -> None:
    # Friday 16:00 EST plus two office hours: one on Friday, one on Monday, which is EDT.
    friday = datetime(2026, 3, 6, 16, tzinfo=EST)
    due = add_business_time(new_york_office(), friday, 2 * HOUR)
    assert due == datetime(2026, 3, 9, 10, tzinfo=EDT)
    assert business_time_between(new_york_office(), friday, due) == 2 * HOUR


def test_office_hours_are_eight_real_hours_on_the_fall_back_monday_too() -> None:
    monday = datetime(2026, 11, 2, 9, tzinfo=EST)
    assert add_business_time(new_york_office(), monday, 8 * HOUR) == datetime(
        2026, 11, 2, 17, tzinfo=EST
    )


def test_a_round_the_clock_local_day_lasts_23_and_25_hours_at_the_changes() -> None:
    all_day = WeeklySchedule("America/New_York", every_day("00:00-24:00"))
    spring = business_time_between(
        all_day, datetime(2026, 3, 8, tzinfo=EST), datetime(2026, 3, 9, tzinfo=EDT)
    )
    autumn = business_time_between(
        all_day, datetime(2026, 11, 1, tzinfo=EDT), datetime(2026, 11, 2, tzinfo=EST)
    )
    assert (spring, autumn) == (23 * HOUR, 25 * HOUR)


def test_24_7_counts_elapsed_time_not_wall_clock_time() -> None:
    saturday_noon = datetime(2026, 3, 7, 12, tzinfo=EST)
    due = add_business_time(AROUND_THE_CLOCK, saturday_noon, 24 * HOUR)
    assert due == datetime(2026, 3, 8, 13, tzinfo=EDT)  # the wall clock moved 25 hours


# --- open windows ------------------------------------------------------------------------------


def test_open_windows_are_clipped_to_the_asked_span_and_merged_over_midnight() -> None:
    late = WeeklySchedule(
        "Asia/Shanghai", parse_week({"mon": ["20:00-24:00"], "tue": ["00:00-02:00"]})
    )
    windows = list(open_windows(late, beijing(2026, 1, 19, 21), beijing(2026, 1, 20, 1)))
    assert windows == [
        (beijing(2026, 1, 19, 21).astimezone(UTC), beijing(2026, 1, 20, 1).astimezone(UTC))
    ]
    assert list(open_windows(late, beijing(2026, 1, 20, 3), beijing(2026, 1, 20, 5))) == []


# --- the pause while waiting on the customer ---------------------------------------------------


def test_a_pause_pushes_the_deadline_by_the_business_time_it_lasted() -> None:
    due = beijing(2026, 1, 16, 12)
    # Waiting from 21:00 to 09:00: two open hours passed (21-22, 08-09), so two more are owed.
    later = resumed_due(hotline(), due, beijing(2026, 1, 15, 21), beijing(2026, 1, 16, 9))
    assert later == beijing(2026, 1, 16, 14)


def test_a_pause_entirely_overnight_costs_nothing() -> None:
    due = beijing(2026, 1, 16, 12)
    assert resumed_due(hotline(), due, beijing(2026, 1, 15, 22), beijing(2026, 1, 16, 8)) == due


def test_a_pause_that_carries_the_deadline_past_closing_continues_next_morning() -> None:
    due = beijing(2026, 1, 15, 21)
    later = resumed_due(hotline(), due, beijing(2026, 1, 15, 10), beijing(2026, 1, 15, 13))
    assert later == beijing(2026, 1, 16, 10)


def test_pauses_already_added_can_be_recovered_from_the_deadline() -> None:
    opened = beijing(2026, 1, 15, 10)
    due = add_business_time(hotline(), opened, 14 * HOUR + 3 * HOUR)
    assert paused_so_far(hotline(), opened, due, 14 * HOUR) == 3 * HOUR
    assert paused_so_far(hotline(), opened, None, 14 * HOUR) == timedelta(0)


# --- how a target stands -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "breached", "now", "paused", "state"),
    [
        (None, None, 9, False, "running"),
        (None, None, 11, False, "breached"),
        (None, None, 11, True, "paused"),
        (8, None, 11, False, "met"),
        (11, None, 12, False, "missed"),
        (9, 9, 12, False, "missed"),
    ],
)
def test_target_state(
    done: int | None, breached: int | None, now: int, paused: bool, state: str
) -> None:
    def at(hour: int | None) -> datetime | None:
        return beijing(2026, 1, 15, hour) if hour is not None else None

    due = beijing(2026, 1, 15, 10)
    moment = beijing(2026, 1, 15, now)
    assert target_state(due, at(done), at(breached), moment, paused=paused) == state


# --- policies ----------------------------------------------------------------------------------


def test_the_shipped_policies_cover_every_case_and_complaints_have_their_own() -> None:
    policies = shipped_policies()
    complaint = policy_for(policies, case_type="refund", priority="low", is_complaint=True)
    assert (complaint.name, complaint.business_hours) == ("complaint", "phone")
    assert (complaint.first_response, complaint.resolution) == (4 * HOUR, 28 * HOUR)
    locked = policy_for(policies, case_type="account_locked", priority="high", is_complaint=False)
    assert locked.business_hours is None  # money at risk: counted around the clock
    normal = policy_for(policies, case_type="refund", priority="normal", is_complaint=False)
    assert normal.name == "normal"


def test_deadlines_follow_the_policy_and_the_schedule() -> None:
    policy = Policy("p", "phone", first_response=4 * HOUR, resolution=28 * HOUR)
    due = deadlines(hotline(), policy, beijing(2026, 1, 15, 20))
    assert due.first_response == beijing(2026, 1, 16, 10)
    assert due.resolution == beijing(2026, 1, 17, 20)  # two 14-hour days later


def test_a_policy_file_must_cover_every_case() -> None:
    with pytest.raises(PolicyError, match="no SLA policy"):
        parse_policies(
            [
                {
                    "name": "only-urgent",
                    "priorities": ["urgent"],
                    "first_response": "1h",
                    "resolution": "4h",
                }
            ]
        )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"first_response": "soon", "resolution": "1h"}, "not a duration"),
        ({"first_response": "1h", "resolution": "1h", "types": ["lottery"]}, "unknown CaseType"),
        ({"first_response": "1h", "resolution": "1h", "colour": "red"}, "unknown key"),
    ],
)
def test_a_broken_policy_is_refused_by_name(entry: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policies([{"name": "broken", **entry}])


def test_durations() -> None:
    assert parse_duration("30m") == timedelta(minutes=30)
    assert parse_duration("4h") == 4 * HOUR
    assert parse_duration("2d") == 48 * HOUR
