"""Resupply rules: when a site needs a shipment, how many kits of each content, and which depot
kits go into it. Pure: the service and the simulator call these same functions.

The policy is an order-up-to rule on a forecast (see app/domain/forecast.py), per content:
- *position* = matched stock still dispensable when a shipment ordered today would arrive
  + kits already on their way;
- a shipment is due when, for any content, position - need within the lead time falls below
  the safety level (the trigger, and never less than one heaviest-subject visit, which a site
  must hold of every content to randomize);
- it then brings the site's total up to need within lead time + cover + target per content,
  split in the shares of those targets.

Blinding: the total of a shipment is n x target + total need - total position, and the total
need is the same whichever arms the site's subjects are on (a visit needs the same vials on
either arm), so a shipment's size does not follow the arms (except when one content must be
topped up past its share to clear its safety level, which the simulator measures). Every
shipment carries every content, at expiry dates the depot holds for every content, so no
shipment is of one content only and kits of both contents reach the site with the same dates.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple


@dataclass(frozen=True)
class Levels:
    """A site's supply levels, the same for every content (so they reveal nothing)."""

    trigger: int
    """Safety kits per content: the position minus the need within the lead time stays above."""
    target: int
    """Kits per content above the cover need that a shipment brings the position up to."""
    lead_days: int
    """Depot-to-site lead time."""
    cover_days: int
    """How many days of forecast need beyond the lead time a shipment covers."""

    def __post_init__(self) -> None:
        if self.trigger < 0 or self.lead_days < 0 or self.cover_days < 0:
            raise ValueError("trigger, lead time and cover must not be negative")
        if self.target < self.trigger:
            raise ValueError("the target must not be below the trigger")


class Position(NamedTuple):
    """One content at one site, as the resupply sees it (a named tuple: the simulator makes
    some 100,000 a trial, and a tuple is made several times faster than a frozen dataclass)."""

    stock: int
    """Matched kits still dispensable when a shipment ordered today arrives."""
    in_transit: int
    need_lead: int
    """Vials needed by the time a shipment ordered today arrives."""
    need_cover: int
    """Vials needed within the lead time plus the cover."""


def need_shares(need: Mapping[str, int], floor: int) -> dict[str, float]:
    """The shares in which a site will use the contents: each content's need over the cover,
    plus one heaviest visit (`floor`, at least one vial) that the site must hold of every
    content whatever its subjects need, so that no content's share is ever zero."""
    padded = {c: n + max(floor, 1) for c, n in need.items()}
    total = sum(padded.values())
    return {c: n / total for c, n in padded.items()}


def _shares(positions: Mapping[str, Position], floor: int) -> dict[str, float]:
    return need_shares({c: p.need_cover for c, p in positions.items()}, floor)


def split(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """`total` kits split in the given shares, each part rounded half up on its own: swapping
    two contents' shares swaps their parts, so a split never favours a content by its name (the
    parts may add up to one more or less than `total`)."""
    return {c: math.floor(total * share + 0.5) for c, share in shares.items()}


def safety_levels(positions: Mapping[str, Position], levels: Levels, floor: int) -> dict[str, int]:
    """Safety kits per content: the site's trigger kits in all, split in the shares of need,
    and never less than one heaviest-weight visit (`floor`) of each content."""
    return _safety(positions, levels, floor, _shares(positions, floor))


def _safety(
    positions: Mapping[str, Position], levels: Levels, floor: int, shares: Mapping[str, float]
) -> dict[str, int]:
    parts = split(levels.trigger * len(positions), shares)
    return {c: max(floor, parts[c]) for c in positions}


class Plan(NamedTuple):
    """What the resupply decides for a site now."""

    quantities: dict[str, int]
    """Kits per content to ship now; empty when no shipment is due."""
    slack: dict[str, int]
    """Per content, how far the position minus the lead-time need stays above safety."""


def plan(positions: Mapping[str, Position], levels: Levels, floor: int) -> Plan:
    """Whether a shipment is due (any content whose position minus its lead-time need falls
    below its safety level) and, if so, the kits per content.

    Every content comes up to its need over the cover plus its share of the site's buffer
    (target kits per content, times the contents, split in the shares of need): stock and
    shipments hold the contents in the shares the site uses them, so that a tier's contents run
    out at about the same time and few kits are stranded. Every content gets at least one kit
    (never a one-content shipment). `floor` is the vials of one heaviest-weight visit, the least
    a site must hold of each content."""
    return plan_in_shares(positions, levels, floor, _shares(positions, floor))


def plan_in_shares(
    positions: Mapping[str, Position], levels: Levels, floor: int, shares: Mapping[str, float]
) -> Plan:
    """`plan`, given the shares it splits in: `need_shares` of the positions' cover need and the
    floor (for a caller that holds them already, as the simulator does)."""
    safety = _safety(positions, levels, floor, shares)
    slack = {c: p.stock + p.in_transit - p.need_lead - safety[c] for c, p in positions.items()}
    if min(slack.values(), default=0) >= 0:
        return Plan({}, slack)
    buffers = split(levels.target * len(positions), shares)
    quantities = {
        c: max(
            1, max(p.need_cover, p.need_lead) + max(buffers[c], safety[c]) - p.stock - p.in_transit
        )
        for c, p in positions.items()
    }
    return Plan(quantities, slack)


def shipment_due(positions: Mapping[str, Position], levels: Levels, floor: int) -> bool:
    """Any content whose position minus its lead-time need falls below its safety level."""
    return bool(plan(positions, levels, floor).quantities)


def order_quantities(
    positions: Mapping[str, Position], levels: Levels, floor: int
) -> dict[str, int]:
    """Kits per content for a shipment requested now, or {} when none is due (see `plan`)."""
    return plan(positions, levels, floor).quantities


DepotShelf = Mapping[str, Mapping[date, int]]
"""Shippable kits at a depot per content and expiry date."""


def pick_depot_dates(
    depot: DepotShelf, quantities: Mapping[str, int], contents: Sequence[str]
) -> tuple[dict[str, Counter[date]], dict[str, int]]:
    """Kits per content and expiry date for a shipment, and the shortfall per content.

    `depot` holds only kits shippable today. Dates are taken earliest first, only dates at which
    the depot holds every content, and each date gives every content the same fraction
    of its quantity (to within one kit): a date one content is short of gives the others no more
    than their share. A date's kits of the contents then reach the site in the shares the site
    uses them, as the common-expiry dispensing rule needs; taking each content's earliest kits on
    its own would send, say, 27 IMC-002 and 79 placebo kits of one date and 66 and 1 of the
    next, and strand most of them."""
    wanted = {c: quantities.get(c, 0) for c in contents if quantities.get(c, 0) > 0}
    picked: dict[str, Counter[date]] = {c: Counter() for c in contents}
    # exact fractions in integers: `done` is the fraction of every quantity picked so far, in
    # units of 1/whole (each step is a date's kits over a quantity, so a multiple of 1/whole)
    whole = math.lcm(*wanted.values())
    done = 0
    for day in sorted({d for c in contents for d in depot.get(c, {})}):
        if done == whole or not wanted:
            break
        held = {c: depot.get(c, {}).get(day, 0) for c in contents}
        if min(held.values()) <= 0:
            continue
        step = min([whole - done, *(held[c] * whole // q for c, q in wanted.items())])
        for content, q in wanted.items():
            take = _half_up(done + step, q, whole) - _half_up(done, q, whole)
            if take:
                picked[content][day] += take
        done += step
    short = {c: q - _half_up(done, q, whole) for c, q in wanted.items()}
    return picked, {c: n for c, n in short.items() if n}


def _half_up(done: int, quantity: int, whole: int) -> int:
    """done / whole x quantity, rounded half up (exactly)."""
    return (2 * done * quantity + whole) // (2 * whole)


def depot_shippable(depot: DepotShelf, contents: Sequence[str]) -> dict[str, int]:
    """Per content, the kits `pick_depot_dates` can draw on: those at dates the depot holds
    every content."""
    dates = {d for c in contents for d in depot.get(c, {})}
    matched = [d for d in dates if all(depot.get(c, {}).get(d, 0) > 0 for c in contents)]
    return {c: sum(depot.get(c, {}).get(d, 0) for d in matched) for c in contents}
