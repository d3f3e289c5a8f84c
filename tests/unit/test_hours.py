"""Business hours: holidays, partial days, midnight, time zones, DST gaps and overlaps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from walletdesk.support.hours import (
    DateException,
    HoursError,
    Interval,
    OpenStatus,
    WeeklySchedule,
    action_status,
    days_ahead,
    every_day,
    parse_interval,
    parse_intervals,
    parse_week,
    status,
)

SHANGHAI = timezone(timedelta(hours=8))
NEW_YORK_EST, NEW_YORK_EDT = timezone(timedelta(hours=-5)), timezone(timedelta(hours=-4))


def beijing(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def hotline(*exceptions: DateException) -> WeeklySchedule:
    return WeeklySchedule("Asia/Shanghai", every_day("08:00-22:00"), exceptions=exceptions)


def test_open_in_the_day_with_the_closing_time() -> None:
    assert status(hotline(), beijing(2026, 1, 15, 10, 0)) == OpenStatus(
        True, None, utc(2026, 1, 15, 14, 0)
    )


def test_opening_minute_is_open_and_closing_minute_is_closed() -> None:
    assert status(hotline(), beijing(2026, 1, 15, 8, 0)).open
    closed = status(hotline(), beijing(2026, 1, 15, 22, 0))
    assert closed == OpenStatus(False, beijing(2026, 1, 16, 8, 0), None)


def test_after_hours_the_answer_is_tomorrow_morning() -> None:
    assert status(hotline(), beijing(2026, 1, 15, 23, 30)).opens_at == beijing(2026, 1, 16, 8)
    assert status(hotline(), beijing(2026, 1, 16, 0, 30)).opens_at == beijing(2026, 1, 16, 8)


def test_the_same_instant_in_any_zone_gets_the_same_answer() -> None:
    moment = beijing(2026, 1, 15, 21, 59)
    for seen_as in (UTC, NEW_YORK_EST, SHANGHAI):
        assert status(hotline(), moment.astimezone(seen_as)).closes_at == beijing(2026, 1, 15, 22)


def test_a_holiday_is_closed_all_day_and_the_next_opening_skips_it() -> None:
    festival = DateException(date(2026, 2, 17), note="Spring Festival")
    schedule = hotline(festival)
    assert not status(schedule, beijing(2026, 2, 17, 12, 0)).open
    assert status(schedule, beijing(2026, 2, 16, 22, 30)).opens_at == beijing(2026, 2, 18, 8)
    assert status(schedule, beijing(2026, 2, 16, 12, 0)).closes_at == beijing(2026, 2, 16, 22)


def test_a_run_of_holidays_is_skipped_as_a_whole() -> None:
    week_off = [DateException(date(2026, 10, day)) for day in range(1, 8)]
    answer = status(hotline(*week_off), beijing(2026, 9, 30, 23, 0))
    assert answer == OpenStatus(False, beijing(2026, 10, 8, 8, 0), None)


def test_a_partial_day_replaces_the_weekly_hours() -> None:
    eve = DateException(date(2026, 2, 16), parse_intervals(["09:00-12:00"]), note="New Year's Eve")
    schedule = hotline(eve)
    assert not status(schedule, beijing(2026, 2, 16, 8, 30)).open  # opens late
    assert status(schedule, beijing(2026, 2, 16, 8, 30)).opens_at == beijing(2026, 2, 16, 9)
    assert status(schedule, beijing(2026, 2, 16, 10, 0)).closes_at == beijing(2026, 2, 16, 12)
    assert status(schedule, beijing(2026, 2, 16, 12, 0)).opens_at == beijing(2026, 2, 17, 8)


def test_a_split_day_reopens_after_lunch() -> None:
    schedule = WeeklySchedule("Asia/Shanghai", every_day("09:00-12:00", "13:00-18:00"))
    assert status(schedule, beijing(2026, 1, 15, 12, 15)).opens_at == beijing(2026, 1, 15, 13)


def test_hours_across_midnight_are_one_stretch() -> None:
    week = parse_week({"mon": ["22:00-24:00"], "tue": ["00:00-06:00"]})
    schedule = WeeklySchedule("Asia/Shanghai", week)
    # 2026-01-12 is a Monday.
    assert status(schedule, beijing(2026, 1, 12, 23, 0)).closes_at == beijing(2026, 1, 13, 6)
    assert status(schedule, beijing(2026, 1, 13, 6, 0)).opens_at == beijing(2026, 1, 19, 22)


def test_overnight_hours_are_refused_and_must_be_split() -> None:
    with pytest.raises(HoursError, match="split at midnight"):
        parse_interval("22:00-06:00")
    with pytest.raises(HoursError):
        Interval(600, 600)


@pytest.mark.parametrize("text", ["8:00-22:00", "08:00-24:01", "24:00-24:00", "08:60-09:00", "x"])
def test_malformed_hours_are_refused(text: str) -> None:
    with pytest.raises(HoursError):
        parse_interval(text)


def test_overlapping_or_unordered_hours_are_refused() -> None:
    with pytest.raises(HoursError, match="overlap"):
        WeeklySchedule("UTC", every_day("08:00-12:00", "11:00-13:00"))
    with pytest.raises(HoursError, match="in order"):
        WeeklySchedule("UTC", every_day("13:00-14:00", "08:00-12:00"))


def test_bad_zones_days_and_duplicate_dates_are_refused() -> None:
    with pytest.raises(HoursError, match="time zone"):
        WeeklySchedule("Mars/Olympus", every_day("08:00-22:00"))
    with pytest.raises(HoursError, match="unknown day"):
        parse_week({"monday": ["08:00-22:00"]})
    with pytest.raises(HoursError, match="one exception per date"):
        hotline(DateException(date(2026, 2, 17)), DateException(date(2026, 2, 17)))


def test_a_naive_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(HoursError):
        status(hotline(), datetime(2026, 1, 15, 10, 0))


def test_shanghai_has_no_dst_so_opening_is_midnight_utc_all_year() -> None:
    # New York and Berlin move their clocks in March, October and November; Shanghai does not.
    for day in (date(2026, 3, 8), date(2026, 3, 29), date(2026, 10, 25), date(2026, 11, 1)):
        before = datetime.combine(day, datetime.min.time(), tzinfo=SHANGHAI)
        assert status(hotline(), before).opens_at == datetime.combine(
            day, datetime.min.time(), tzinfo=UTC
        )


NY = WeeklySchedule("America/New_York", every_day("09:00-17:00"))


def test_dst_zone_opens_at_local_nine_on_both_sides_of_spring_forward() -> None:
    # 2026-03-08 02:00 EST the clocks jump to 03:00 EDT: nine o'clock is 13:00 UTC, not 14:00.
    saturday_evening = datetime(2026, 3, 7, 18, 0, tzinfo=NEW_YORK_EST)
    assert status(NY, saturday_evening).opens_at == utc(2026, 3, 8, 13, 0)
    assert status(NY, utc(2026, 3, 6, 20, 0)).closes_at == utc(2026, 3, 6, 22, 0)  # EST
    assert status(NY, utc(2026, 3, 9, 20, 0)).closes_at == utc(2026, 3, 9, 21, 0)  # EDT


def test_dst_zone_opens_at_local_nine_after_fall_back() -> None:
    # 2026-11-01 02:00 EDT the clocks go back to 01:00 EST.
    assert status(NY, utc(2026, 10, 31, 22, 0)).opens_at == utc(2026, 11, 1, 14, 0)


def test_a_full_day_is_23_hours_on_spring_forward_and_25_on_fall_back() -> None:
    round_the_clock = parse_intervals(["00:00-24:00"])
    spring = DateException(date(2026, 3, 8), round_the_clock)
    autumn = DateException(date(2026, 11, 1), round_the_clock)
    schedule = WeeklySchedule("America/New_York", exceptions=(spring, autumn))
    opened = status(schedule, utc(2026, 3, 8, 5, 0))
    assert opened.closes_at - utc(2026, 3, 8, 5, 0) == timedelta(hours=23)
    opened = status(schedule, utc(2026, 11, 1, 4, 0))
    assert opened.closes_at - utc(2026, 11, 1, 4, 0) == timedelta(hours=25)


def test_an_opening_inside_the_spring_gap_uses_the_offset_before_the_jump() -> None:
    # 02:30 never happens on 2026-03-08 in New York; read as 02:30 EST, it is 03:30 EDT.
    gap = DateException(date(2026, 3, 8), parse_intervals(["02:30-05:00"]))
    schedule = WeeklySchedule("America/New_York", exceptions=(gap,))
    answer = status(schedule, utc(2026, 3, 8, 6, 0))
    assert answer == OpenStatus(False, datetime(2026, 3, 8, 3, 30, tzinfo=NEW_YORK_EDT), None)


def test_a_closing_in_the_repeated_autumn_hour_is_its_first_occurrence() -> None:
    early = DateException(date(2026, 11, 1), parse_intervals(["00:00-01:30"]))
    schedule = WeeklySchedule("America/New_York", exceptions=(early,))
    first_pass = datetime(2026, 11, 1, 1, 15, tzinfo=NEW_YORK_EDT)
    second_pass = datetime(2026, 11, 1, 1, 15, tzinfo=NEW_YORK_EST)
    assert status(schedule, first_pass).closes_at == datetime(
        2026, 11, 1, 1, 30, tzinfo=NEW_YORK_EDT
    )
    assert not status(schedule, second_pass).open


def test_always_open_never_closes() -> None:
    schedule = WeeklySchedule("Asia/Shanghai", always_open=True)
    assert status(schedule, beijing(2026, 2, 17, 3, 0)) == OpenStatus(True, None, None)


def test_round_the_clock_weekly_hours_have_no_closing_time() -> None:
    schedule = WeeklySchedule("Europe/Berlin", every_day("00:00-24:00"))
    assert status(schedule, utc(2026, 3, 29, 1, 0)) == OpenStatus(True, None, None)


def test_a_schedule_with_no_hours_never_opens() -> None:
    assert status(WeeklySchedule("UTC"), utc(2026, 1, 1)) == OpenStatus(False, None, None)


def test_emergency_actions_are_available_when_closed() -> None:
    night = beijing(2026, 2, 17, 3, 0)
    schedule = hotline(DateException(date(2026, 2, 17)))
    assert action_status(schedule, night, "freeze_account") == OpenStatus(True, None, None)
    assert not action_status(schedule, night, "dispute").open
    assert not action_status(schedule, night, None).open


def test_the_coming_week_shows_exceptions_in_local_dates() -> None:
    schedule = hotline(DateException(date(2026, 2, 17), note="Spring Festival"))
    # 2026-02-15 17:00 UTC is already the 16th in Beijing.
    days = days_ahead(schedule, utc(2026, 2, 15, 17, 0))
    assert [d.day.day for d in days] == [16, 17, 18, 19, 20, 21, 22]
    assert days[1].intervals == () and days[1].exception is not None
    assert [str(i) for i in days[0].intervals] == ["08:00-22:00"]
