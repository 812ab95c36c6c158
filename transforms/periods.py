"""Business days and accounting periods.

A hotel day does not end at midnight: the night audit closes it at a cut-off
hour (04:00 by default) in the tenant's time zone, so the bar tab at 01:30 and
the room charge the audit posts at 02:40 belong to the day before. The cut-off
is applied to *local wall-clock time*, so days around a DST change are 23 or 25
hours long and still end at 04:00 local; the repeated hour of an autumn night
belongs, both times, to the day before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl

PeriodKind = Literal["day", "week", "month"]
PERIOD_KINDS: tuple[str, ...] = ("day", "week", "month")
UTC = ZoneInfo("UTC")


def business_date_expr(instant: pl.Expr, timezone: str, cutoff: time) -> pl.Expr:
    """UTC instants -> business dates in ``timezone`` with a day starting at ``cutoff``."""
    local = instant.dt.convert_time_zone(timezone).dt.replace_time_zone(None)
    return (local - pl.duration(hours=cutoff.hour, minutes=cutoff.minute, seconds=cutoff.second)).dt.date()


def business_date_of(instant: datetime, timezone: str, cutoff: time) -> date:
    local = instant.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return (local - timedelta(hours=cutoff.hour, minutes=cutoff.minute, seconds=cutoff.second)).date()


def day_start(business_date: date, timezone: str, cutoff: time) -> datetime:
    """The UTC instant a business day opens (if the cut-off falls in a skipped hour, the first valid instant)."""
    zone = ZoneInfo(timezone)
    local = datetime.combine(business_date, cutoff, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # The cut-off falls in a spring-forward gap, so that wall time never happens: the day
    # opens at the transition itself. It lies between the two readings of the missing time;
    # find the first minute that already belongs to the day (at most a couple of hours).
    probe = datetime.combine(business_date, cutoff).replace(tzinfo=zone, fold=1).astimezone(UTC)
    probe = probe.replace(second=0, microsecond=0)
    while business_date_of(probe, timezone, cutoff) < business_date:
        probe += timedelta(minutes=1)
    return probe


def utc_window(start: date, end: date, timezone: str, cutoff: time) -> tuple[datetime, datetime]:
    """[opening of ``start``, opening of the day after ``end``) in UTC."""
    return day_start(start, timezone, cutoff), day_start(end + timedelta(days=1), timezone, cutoff)


@dataclass(frozen=True, order=True)
class Period:
    start: date
    end: date
    kind: PeriodKind

    @property
    def key(self) -> str:
        """``2026-03-14``, ``2026-W11`` or ``2026-03``, plus the span when a period is clipped."""
        if self.kind == "day":
            return self.start.isoformat()
        full = period_containing(self.start, self.kind)
        if self.kind == "week":
            year, week, _ = self.start.isocalendar()
            base = f"{year}-W{week:02d}"
        else:
            base = f"{self.start:%Y-%m}"
        if full == self:
            return base
        return f"{base}_{self.start:%d}-{self.end:%d}"

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"


def period_containing(day: date, kind: PeriodKind) -> Period:
    if kind == "day":
        return Period(day, day, "day")
    if kind == "week":
        start = day - timedelta(days=day.weekday())
        return Period(start, start + timedelta(days=6), "week")
    if kind == "month":
        start = day.replace(day=1)
        following = (start + timedelta(days=32)).replace(day=1)
        return Period(start, following - timedelta(days=1), "month")
    raise ValueError(f"period must be one of {', '.join(PERIOD_KINDS)}, not {kind!r}")


def periods_between(start: date, end: date, kind: PeriodKind) -> list[Period]:
    """The periods covering [start, end] in order; the first and last are clipped to the window."""
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    periods = []
    day = start
    while day <= end:
        full = period_containing(day, kind)
        periods.append(Period(max(full.start, start), min(full.end, end), kind))
        day = full.end + timedelta(days=1)
    return periods


def last_complete_period(kind: PeriodKind, today: date) -> Period:
    """The latest period of ``kind`` that ended before the business day ``today``."""
    yesterday = today - timedelta(days=1)
    period = period_containing(yesterday, kind)
    if period.end > yesterday:
        period = period_containing(period.start - timedelta(days=1), kind)
    return period
