"""Demand forecast per site and content: what the resupply, the live forecast page and the
simulator all count as need. One copy of the rules, fed by the database or by a simulated trial.

Need over a horizon comes from two sources:
- the randomized subjects still on treatment: every visit of theirs due by the horizon (overdue
  ones too), at the vials of their last dose (the dose changes only with a 10 % weight change);
- the subjects still to come at the site: its recruitment rate over the horizon, capped by the
  places left in the open stage, split by the stage's allocation ratio. A subject arriving during
  the horizon needs its day-1 vials and any later visit that still falls inside the horizon.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from app.domain.study import Visit


@dataclass(frozen=True)
class OnTreatment:
    """A randomized subject who will come back: content, day 1, next visit, vials per visit."""

    content: str
    day_one: date
    next_index: int
    vials: int


@dataclass(frozen=True)
class Enrolment:
    """Subjects still to come at one site: their rate while a stage is open, the places left in
    the open stage, the shares of the contents they will take, the vials of a typical visit."""

    subjects_per_week: float
    places_left: int
    ratio: Mapping[str, float]
    vials_per_subject: int


NO_ENROLMENT = Enrolment(0.0, 0, {}, 0)


def pending_visits(subject: OnTreatment, visits: Sequence[Visit]) -> Iterator[tuple[date, int]]:
    """Due date and vials of each visit the subject still has to come for."""
    for visit in visits[subject.next_index :]:
        yield subject.day_one + timedelta(days=visit.day_offset), subject.vials


class DueCalendar:
    """Vials of pending visits per content by due day; the need by a day is every pending visit
    due on or before it, overdue ones included. A Fenwick tree per content, so that the
    simulator, which keeps one calendar per site for a whole trial, asks in O(log days)."""

    def __init__(self, contents: Sequence[str], start: date, days: int) -> None:
        self._start = start
        self._size = max(days, 1) + 1
        self._trees = {c: [0] * (self._size + 1) for c in contents}
        self._totals = dict.fromkeys(contents, 0)

    def add(self, content: str, due: date, vials: int) -> None:
        """Add (or with negative vials, remove) a pending visit."""
        offset = (due - self._start).days
        size = self._size
        if offset >= size:
            return  # beyond the calendar: never inside a horizon it is asked about
        tree, i = self._trees[content], (offset if offset > 0 else 0) + 1
        self._totals[content] += vials
        while i <= size:
            tree[i] += vials
            i += i & -i

    def need(self, content: str, until: date) -> int:
        """Vials of the content's pending visits due on or before `until`."""
        offset = (until - self._start).days
        if offset < 0:
            return 0
        last = self._size - 1
        tree, i, total = self._trees[content], (offset if offset < last else last) + 1, 0
        while i:
            total += tree[i]
            i &= i - 1  # drops the lowest set bit: the next node to the left
        return total

    def needs(self, until: date) -> tuple[int, ...]:
        """`need` of every content, in the order the calendar was made with (one call where
        the simulator's resupply check asks for all of them)."""
        offset = (until - self._start).days
        if offset < 0:
            return tuple([0] * len(self._trees))
        last = self._size - 1
        start = (offset if offset < last else last) + 1
        out = []
        for tree in self._trees.values():
            i, total = start, 0
            while i:
                total += tree[i]
                i &= i - 1
            out.append(total)
        return tuple(out)

    def total(self, content: str) -> int:
        """Vials of every pending visit of the content: `need` at the calendar's last day, kept
        as visits are added (the simulator asks at every check whether a pool has any)."""
        return self._totals[content]

    def pending(self) -> bool:
        """Whether any pending visit is left, of any content (a pool with none needs nothing)."""
        return sum(self._totals.values()) > 0

    def next_due_after(self, content: str, day: date, beyond: int = 0) -> date | None:
        """The first day after `day` by which the content's need has grown by more than
        `beyond` vials (with 0: the next day a pending visit falls due), or None."""
        return self.first_over(content, self.need(content, day) + beyond)

    def first_over(self, content: str, vials: int) -> date | None:
        """The first day by which the content's need exceeds `vials`, or None: `next_due_after`
        for a caller that holds the need by its day already."""
        tree, size = self._trees[content], self._size
        # Fenwick descent: the largest index whose prefix sum is still `vials`
        index, remaining, step = 0, vials, 1 << (size.bit_length() - 1)
        while step:
            nxt = index + step
            if nxt <= size and tree[nxt] <= remaining:
                index, remaining = nxt, remaining - tree[nxt]
            step >>= 1
        if index >= size:
            return None
        return self._start + timedelta(days=index)


def places_shares(stages: Iterable[tuple[int, Mapping[str, int]]]) -> dict[str, float]:
    """The shares of the contents over every place still open in the study: each stage's places
    split by its own ratio (`stages` holds each stage's places left and ratio).

    Subjects still to come are forecast in these shares rather than in the open stage's alone:
    stock laid in during the 3:1 phase Ib at a site would otherwise still be heavy in IMC-002
    when the 1:1 phase II starts there, the placebo kits of its tiers would run out first, and
    what happens next at the site (a shipment, a refusal) would follow the arm of the subject who
    took the last one."""
    shares: dict[str, float] = {}
    for places, ratio in stages:
        total = sum(ratio.values())
        for content, part in ratio.items():
            shares[content] = shares.get(content, 0.0) + max(places, 0) * part / total
    whole = sum(shares.values())
    return {c: n / whole for c, n in shares.items()} if whole > 0 else shares


def subject_need(
    subjects: Iterable[OnTreatment], *, visits: Sequence[Visit], today: date, horizon_days: int
) -> dict[str, int]:
    """Vials per content of visits due on or before today + horizon (overdue visits count).

    Runs after every randomization and dosing visit over every subject on treatment at the
    site: with the visits in day order (as schedules are) a subject's count of due visits is
    one bisection of the day offsets, not a walk over its pending visits."""
    offsets = [visit.day_offset for visit in visits]
    if any(a > b for a, b in itertools.pairwise(offsets)):
        return _walked_need(subjects, visits=visits, today=today, horizon_days=horizon_days)
    last_day = today + timedelta(days=horizon_days)
    need: dict[str, int] = {}
    for subject in subjects:
        start = subject.next_index
        due = bisect.bisect_right(offsets, (last_day - subject.day_one).days, lo=start) - start
        if due > 0:
            need[subject.content] = need.get(subject.content, 0) + due * subject.vials
    return need


def _walked_need(
    subjects: Iterable[OnTreatment], *, visits: Sequence[Visit], today: date, horizon_days: int
) -> dict[str, int]:
    """`subject_need` visit by visit, each subject's pending visits in schedule order up to the
    first one beyond the horizon (what the bisection computes for a schedule in day order)."""
    last_day = today + timedelta(days=horizon_days)
    need: dict[str, int] = {}
    for subject in subjects:
        for due, vials in pending_visits(subject, visits):
            if due > last_day:
                break
            need[subject.content] = need.get(subject.content, 0) + vials
    return need


def enrolment_need(
    enrolment: Enrolment, visits: Sequence[Visit], horizon_days: int
) -> dict[str, float]:
    """Expected vials per content for subjects arriving evenly over the horizon."""
    if horizon_days <= 0 or enrolment.places_left <= 0 or enrolment.subjects_per_week <= 0:
        return {}
    arriving = min(enrolment.subjects_per_week * horizon_days / 7, float(enrolment.places_left))
    visits_each = _visits_inside(tuple(v.day_offset for v in visits), horizon_days)
    total = sum(enrolment.ratio.values())
    return {
        content: arriving * share / total * visits_each * enrolment.vials_per_subject
        for content, share in enrolment.ratio.items()
    }


@functools.cache
def _visits_inside(offsets: tuple[int, ...], horizon_days: int) -> float:
    """Expected visits inside the horizon of a subject arriving at a uniform time in it: visit v
    falls inside with probability 1 - offset_v / horizon."""
    return sum(max(0.0, 1 - offset / horizon_days) for offset in offsets)


def site_need(
    subjects: Sequence[OnTreatment],
    *,
    enrolment: Enrolment,
    visits: Sequence[Visit],
    contents: Sequence[str],
    today: date,
    horizon_days: int,
) -> dict[str, int]:
    """Whole vials per content needed by the site within the horizon (expected need rounded up)."""
    own = subject_need(subjects, visits=visits, today=today, horizon_days=horizon_days)
    return combine(own, enrolment_need(enrolment, visits, horizon_days), contents)


def combine(
    own: Mapping[str, int], coming: Mapping[str, float], contents: Sequence[str]
) -> dict[str, int]:
    """Need of the subjects on treatment plus the expected need of those to come, rounded up."""
    return {c: own.get(c, 0) + math.ceil(coming.get(c, 0.0) - 1e-9) for c in contents}
