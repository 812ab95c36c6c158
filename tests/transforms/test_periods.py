from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.periods import (
    Period,
    business_date_expr,
    business_date_of,
    day_start,
    last_complete_period,
    periods_between,
    utc_window,
)

PARIS = "Europe/Paris"
FOUR = time(4)


def local(day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(PARIS)).replace(fold=fold).astimezone(UTC)


def test_the_bar_tab_after_midnight_belongs_to_the_evening_before():
    assert business_date_of(local(date(2026, 3, 14), 1, 30), PARIS, FOUR) == date(2026, 3, 13)
    assert business_date_of(local(date(2026, 3, 14), 3, 59), PARIS, FOUR) == date(2026, 3, 13)
    assert business_date_of(local(date(2026, 3, 14), 4, 0), PARIS, FOUR) == date(2026, 3, 14)


def test_spring_forward_day_is_23_hours_and_still_ends_at_four():
    start, end = utc_window(date(2026, 3, 28), date(2026, 3, 28), PARIS, FOUR)
    assert end - start == timedelta(hours=23)
    assert business_date_of(local(date(2026, 3, 29), 3, 59), PARIS, FOUR) == date(2026, 3, 28)
    assert business_date_of(local(date(2026, 3, 29), 4, 0), PARIS, FOUR) == date(2026, 3, 29)


def test_fall_back_day_is_25_hours_and_the_repeated_hour_belongs_to_the_day_before():
    start, end = utc_window(date(2026, 10, 24), date(2026, 10, 24), PARIS, FOUR)
    assert end - start == timedelta(hours=25)
    first = local(date(2026, 10, 25), 2, 30, fold=0)
    second = local(date(2026, 10, 25), 2, 30, fold=1)
    assert second - first == timedelta(hours=1)
    assert {business_date_of(first, PARIS, FOUR), business_date_of(second, PARIS, FOUR)} == {date(2026, 10, 24)}


def test_a_cut_off_inside_the_spring_gap_opens_the_day_at_the_transition():
    assert day_start(date(2026, 3, 29), PARIS, time(2, 30)) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_polars_and_python_agree_on_business_dates():
    instants = [local(date(2026, 3, 29), 1, 59), local(date(2026, 3, 29), 3, 0), local(date(2026, 10, 25), 2, 30, 1)]
    frame = pl.DataFrame({"t": instants}, schema={"t": pl.Datetime("us", "UTC")})
    days = frame.select(business_date_expr(pl.col("t"), PARIS, FOUR)).to_series().to_list()
    assert days == [business_date_of(t, PARIS, FOUR) for t in instants]


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
       st.sampled_from(["Europe/Paris", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]),
       st.sampled_from([time(0), time(3), time(4), time(5, 30)]))
def test_every_instant_lies_in_the_window_of_its_business_day(naive, zone, cutoff):
    instant = naive.replace(tzinfo=UTC)
    day = business_date_of(instant, zone, cutoff)
    start, end = utc_window(day, day, zone, cutoff)
    assert start <= instant < end


def test_periods_cover_a_window_in_order_and_clip_its_ends():
    months = periods_between(date(2026, 1, 10), date(2026, 3, 5), "month")
    assert [p.key for p in months] == ["2026-01_10-31", "2026-02", "2026-03_01-05"]
    weeks = periods_between(date(2026, 3, 2), date(2026, 3, 15), "week")
    assert [p.key for p in weeks] == ["2026-W10", "2026-W11"]
    assert Period(date(2026, 3, 14), date(2026, 3, 14), "day").key == "2026-03-14"


def test_the_last_complete_period_ends_before_today():
    assert last_complete_period("day", date(2026, 12, 1)) == Period(date(2026, 11, 30), date(2026, 11, 30), "day")
    assert last_complete_period("week", date(2026, 11, 25)).key == "2026-W47"
    assert last_complete_period("week", date(2026, 11, 23)).key == "2026-W47"
    assert last_complete_period("month", date(2026, 12, 1)).key == "2026-11"
    assert last_complete_period("month", date(2026, 12, 15)).key == "2026-11"


def test_a_reversed_window_is_refused():
    with pytest.raises(ValueError, match="ends"):
        periods_between(date(2026, 3, 5), date(2026, 3, 1), "day")
