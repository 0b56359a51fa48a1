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


@dataclass(frozen=True)
class Position:
    """One content at one site, as the resupply sees it."""

    stock: int
    """Matched kits still dispensable when a shipment ordered today arrives."""
    in_transit: int
    need_lead: int
    """Vials needed by the time a shipment ordered today arrives."""
    need_cover: int
    """Vials needed within the lead time plus the cover."""


def need_shares(need: Mapping[str, int]) -> dict[str, float]:
    """Each content's share of a need (equal shares when nothing is needed)."""
    total = sum(need.values())
    if total <= 0:
        return {c: 1 / len(need) for c in need}
    return {c: n / total for c, n in need.items()}


def _shares(positions: Mapping[str, Position]) -> dict[str, float]:
    return need_shares({c: p.need_cover for c, p in positions.items()})


def split(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """`total` kits split in the given shares, rounded so that they add up to `total` exactly
    (largest remainder; ties in content order): a total that does not follow the arms stays so."""
    exact = {c: total * share for c, share in shares.items()}
    whole = {c: math.floor(x) for c, x in exact.items()}
    left = total - sum(whole.values())
    for content in sorted(exact, key=lambda c: (whole[c] - exact[c], c))[:left]:
        whole[content] += 1
    return whole


def safety_levels(positions: Mapping[str, Position], levels: Levels, floor: int) -> dict[str, int]:
    """Safety kits per content: the site's trigger kits in all, split in the shares of need,
    and never less than one heaviest-weight visit (`floor`) of each content."""
    parts = split(levels.trigger * len(positions), _shares(positions))
    return {c: max(floor, parts[c]) for c in positions}


def shipment_due(positions: Mapping[str, Position], levels: Levels, floor: int) -> bool:
    """Any content whose position minus its lead-time need falls below its safety level."""
    safety = safety_levels(positions, levels, floor)
    return any(p.stock + p.in_transit - p.need_lead < safety[c] for c, p in positions.items())


def order_quantities(
    positions: Mapping[str, Position], levels: Levels, floor: int
) -> dict[str, int]:
    """Kits per content for a shipment requested now, or {} when none is due.

    Every content comes up to its need over the cover plus its share of the site's buffer
    (target kits per content, times the contents, split in the shares of need): stock and
    shipments then hold the contents in the shares the site uses them, so the share of its kits
    a subject of either arm draws from the newest shipment (kits are drawn at random within a
    date) does not depend on the arm. Every content gets at least one kit (never a one-content
    shipment). `floor` is the vials of one heaviest-weight visit, the least a site must hold of
    each content."""
    if not shipment_due(positions, levels, floor):
        return {}
    safety = safety_levels(positions, levels, floor)
    buffers = split(levels.target * len(positions), _shares(positions))
    return {
        content: max(
            1, p.need_cover + max(buffers[content], safety[content]) - p.stock - p.in_transit
        )
        for content, p in positions.items()
    }


DepotShelf = Mapping[str, Mapping[date, int]]
"""Shippable kits at a depot per content and expiry date."""


def pick_depot_dates(
    depot: DepotShelf, quantities: Mapping[str, int], contents: Sequence[str]
) -> tuple[dict[str, Counter[date]], dict[str, int]]:
    """Kits per content and expiry date for a shipment, and the shortfall per content.

    `depot` holds only kits shippable today. Dates are taken earliest first, and only dates at
    which the depot still holds every content: kits of both contents then reach the site with the
    same expiry dates, which the common-expiry dispensing rule needs to hand them out."""
    remaining = {c: quantities.get(c, 0) for c in contents}
    picked: dict[str, Counter[date]] = {c: Counter() for c in contents}
    for day in sorted({d for c in contents for d in depot.get(c, {})}):
        if not any(remaining.values()):
            break
        held = {c: depot.get(c, {}).get(day, 0) for c in contents}
        if min(held.values()) <= 0:
            continue
        for content in contents:
            take = min(remaining[content], held[content])
            if take:
                picked[content][day] += take
                remaining[content] -= take
    return picked, {c: n for c, n in remaining.items() if n}


def depot_shippable(depot: DepotShelf, contents: Sequence[str]) -> dict[str, int]:
    """Per content, the kits `pick_depot_dates` can draw on: those at dates the depot holds
    every content."""
    dates = {d for c in contents for d in depot.get(c, {})}
    matched = [d for d in dates if all(depot.get(c, {}).get(d, 0) > 0 for c in contents)]
    return {c: sum(depot.get(c, {}).get(d, 0) for d in matched) for c in contents}
