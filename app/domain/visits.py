"""The dosing schedule of one subject: target dates, windows, and where each visit stands.

Every target is counted from day 1 (the randomization visit), never from the visit before: a
visit dosed late, early or not at all does not move the ones after it. A visit after day 1 may
take place from `window_days_before` days before its target to `window_days_after` days after
(the study definition, app/studies/imc002.toml); the definition refuses windows that would
overlap, so a date belongs to at most one visit's window. Pure: the services feed it the
dispensed and missed visits and today's date.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from itertools import pairwise

from app.domain.date_display import format_date
from app.domain.errors import Conflict
from app.domain.study import Schedule, Visit


class VisitState(StrEnum):
    DISPENSED = "dispensed"
    MISSED = "missed"
    """Recorded as missed by site staff, with a reason."""
    UPCOMING = "upcoming"
    """Its window has not opened yet."""
    DUE = "due"
    """Its window is open today and nothing is recorded for it yet."""
    OVERDUE = "overdue"
    """Its window has closed, or a later visit was recorded, with nothing recorded for it:
    it can only be recorded as missed (or dosed with an investigator's override)."""


@dataclass(frozen=True)
class VisitWindow:
    visit: Visit
    target: date
    opens: date
    closes: date

    def contains(self, day: date) -> bool:
        return self.opens <= day <= self.closes

    def describe(self) -> str:
        """ "W8: 2026-03-01 to 2026-03-07 (target 2026-03-04)", for refusals and pages."""
        return (
            f"{self.visit.code}: {format_date(self.opens)} to {format_date(self.closes)} "
            f"(target {format_date(self.target)})"
        )


@dataclass(frozen=True)
class ScheduledVisit:
    window: VisitWindow
    state: VisitState


def windows(schedule: Schedule, day_one: date) -> tuple[VisitWindow, ...]:
    """Every visit's window; day 1's is the day itself (it is the randomization visit)."""
    result = []
    for visit in schedule.visits():
        target = day_one + timedelta(days=visit.day_offset)
        if visit.index == 0:
            result.append(VisitWindow(visit, target, target, target))
            continue
        opens = target - timedelta(days=schedule.window_days_before)
        closes = target + timedelta(days=schedule.window_days_after)
        result.append(VisitWindow(visit, target, opens, closes))
    return tuple(result)


def last_recorded_index(
    dispensed: Collection[str], missed: Collection[str], visits: Sequence[Visit]
) -> int:
    """Index of the latest visit dispensed or recorded missed (-1 when none): no visit at or
    before it may be dispensed any more."""
    recorded = set(dispensed) | set(missed)
    return max((v.index for v in visits if v.code in recorded), default=-1)


def schedule_states(
    schedule: Schedule,
    *,
    day_one: date,
    dispensed: Collection[str],
    missed: Collection[str],
    today: date,
) -> tuple[ScheduledVisit, ...]:
    """Each visit with its window and state on `today`."""
    all_windows = windows(schedule, day_one)
    last = last_recorded_index(dispensed, missed, [w.visit for w in all_windows])
    result = []
    for window in all_windows:
        code = window.visit.code
        if code in dispensed:
            state = VisitState.DISPENSED
        elif code in missed:
            state = VisitState.MISSED
        elif window.visit.index < last or today > window.closes:
            state = VisitState.OVERDUE
        elif today < window.opens:
            state = VisitState.UPCOMING
        else:
            state = VisitState.DUE
        result.append(ScheduledVisit(window, state))
    return tuple(result)


def next_due(states: Sequence[ScheduledVisit]) -> ScheduledVisit | None:
    """The visit to offer for dosing, among those after the last recorded (dispensed or missed)
    one: the one due today; else the one whose window closed, so that a late visit is dosed,
    with an investigator's override, or recorded as missed, under its own name and not under
    the next visit's; else the next to come. None when the schedule is done."""
    recorded = [i for i, item in enumerate(states) if item.state in _RECORDED]
    left = states[recorded[-1] + 1 if recorded else 0 :]
    for wanted in (VisitState.DUE, VisitState.OVERDUE, VisitState.UPCOMING):
        for item in left:
            if item.state is wanted:
                return item
    return None


_RECORDED = (VisitState.DISPENSED, VisitState.MISSED)


def shortest_gap_days(schedule: Schedule) -> int:
    """The fewest days allowed between two doses: the shortest scheduled interval less both
    windows, the gap two doses taken in their windows always keep. An investigator's override
    moves a visit out of its window, never closer than this to the dose before it."""
    visits = schedule.visits()
    intervals = [b.day_offset - a.day_offset for a, b in pairwise(visits)]
    if not intervals:
        return 1
    return max(1, min(intervals) - schedule.window_days_before - schedule.window_days_after)


class DoseTooSoon(Conflict):
    """A dose closer to the previous one than the schedule allows, override or not."""

    def __init__(self, *, previous: date, earliest: date, gap_days: int) -> None:
        super().__init__(
            "dose_too_soon",
            f"The last dose was on {format_date(previous)}; doses must be at least {gap_days} "
            f"days apart, so this visit can be dosed from {format_date(earliest)}. An override "
            "does not shorten this gap.",
            last_dose=previous.isoformat(),
            earliest_date=earliest.isoformat(),
        )
        self.previous, self.earliest = previous, earliest


def check_gap(*, previous: date | None, visit_date: date, gap_days: int) -> None:
    """DoseTooSoon when `visit_date` is fewer than `gap_days` after the previous dose."""
    if previous is not None and (visit_date - previous).days < gap_days:
        raise DoseTooSoon(
            previous=previous, earliest=previous + timedelta(days=gap_days), gap_days=gap_days
        )


def window_of(schedule: Schedule, *, day_one: date, code: str) -> VisitWindow:
    """The window of one visit (KeyError for a code the schedule does not have)."""
    for window in windows(schedule, day_one):
        if window.visit.code == code:
            return window
    raise KeyError(code)


class VisitOutOfWindow(Conflict):
    """A visit dated outside its window; an investigator may dose it with an override."""

    def __init__(self, window: VisitWindow, visit_date: date) -> None:
        super().__init__(
            "visit_out_of_window",
            f"Visit {window.visit.code} on {format_date(visit_date)} is outside its window, "
            f"{format_date(window.opens)} to {format_date(window.closes)} (target "
            f"{format_date(window.target)}); nothing was dispensed. Check the visit and its "
            "date; an investigator may dose it outside the window with a reason.",
            window_opens=window.opens.isoformat(),
            window_closes=window.closes.isoformat(),
            target_date=window.target.isoformat(),
        )


def needs_override(window: VisitWindow, visit_date: date) -> bool:
    """Whether dosing on `visit_date` needs an investigator's override."""
    return not window.contains(visit_date)
