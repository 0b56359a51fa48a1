"""Resupply rules: when a site's stock of one content needs a shipment, and how many kits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from app.domain.study import Schedule, Visit


@dataclass(frozen=True)
class Stock:
    """A site's stock of one content: dispensable kits on hand, kits on the way, kits its
    randomized subjects will need within the shipping lead time."""

    available: int
    in_transit: int
    predicted_need: int

    @property
    def effective(self) -> int:
        return self.available + self.in_transit - self.predicted_need


def resupply_quantity(stock: Stock, trigger: int, target: int) -> int:
    """Below the trigger, ship enough to bring the effective stock to the target; else none."""
    if stock.effective >= trigger:
        return 0
    return target - stock.effective


def next_visit(schedule: Schedule, day_one: date, last_index: int) -> tuple[Visit, date] | None:
    """The subject's next visit after the last dispensed one, with its due date."""
    for visit in schedule.visits():
        if visit.index > last_index:
            return visit, day_one + timedelta(days=visit.day_offset)
    return None


def predicted_need(due: Iterable[tuple[date, int]], today: date, lead_days: int) -> int:
    """Vials of visits due on or before today + lead time (overdue visits count too)."""
    horizon = today + timedelta(days=lead_days)
    return sum(vials for due_date, vials in due if due_date <= horizon)
