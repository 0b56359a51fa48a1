"""Kit choice that cannot separate arms: every content is served from the same tiers.

A blinded pharmacist can tell kits apart by two things: the expiry date on the label, and the
shipment that brought each kit (the receipt lists kit numbers). Call that pair a kit's *tier*.
If each content were handed out first-expiry-first on its own, the content used faster (IMC-002
at 3:1) would reach newer lots and newer shipments first, and a subject given a late kit while
early kits wait on the shelf would be known to be on it. So the tiers a visit gets are chosen
from the stock of *every* content at once: walking the tiers from the earliest expiry (and,
within a date, the oldest shipment), a tier offers as many kits as the content with the fewest
kits there holds. Whatever the subject's arm, the same tiers come out, and the visit is refused,
or served, on the same stock for both arms.

The price: when one content runs out in a tier, the other content's kits of that tier can no
longer be handed out without telling the arms apart. They stay on the shelf until they expire
(stranded kits: the simulator counts them as waste). Shipments hold the contents in the shares
the site uses them, so that a tier's contents run out at about the same time, and the resupply
counts a tier's kits only as far as the tier can be used (`usable_stock`).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from app.domain.kits import KitCandidate, expires_after_window, usable_on

Tier = tuple[date, int]
"""(expiry date, shipment that brought the kit): what a blinded user tells kits apart by."""

Shelf = Mapping[str, Mapping[Tier, int]]
"""Dispensable kits per content and tier."""


T = TypeVar("T")


@dataclass(frozen=True)
class KitGroup:
    """Kits of one content, expiry date, shipment and stage pool at a site, counted: what the
    rule needs of the stock, read without every kit's number."""

    content: str
    expiry_date: date
    shipment: int
    pool: str | None
    count: int


def tier_of(kit: KitCandidate) -> Tier:
    return (kit.expiry_date, kit.shipment)


def tally(kits: Iterable[KitCandidate], day: date, window_days: int) -> dict[str, Counter[Tier]]:
    """The shelf of kits usable on `day` (expiring later than day + window), by content."""
    shelf: dict[str, Counter[Tier]] = defaultdict(Counter)
    for kit in kits:
        if usable_on(kit, day, window_days):
            shelf[kit.content][tier_of(kit)] += 1
    return shelf


def tally_groups(
    groups: Iterable[KitGroup], day: date, window_days: int, *, pool: str | None = None
) -> dict[str, Counter[Tier]]:
    """`tally` from counted kits, of one stage pool if given."""
    shelf: dict[str, Counter[Tier]] = defaultdict(Counter)
    for group in groups:
        usable = expires_after_window(group.expiry_date, day, window_days)
        if usable and (pool is None or group.pool == pool):
            shelf[group.content][(group.expiry_date, group.shipment)] += group.count
    return shelf


def common_tiers(shelf: Shelf, contents: Sequence[str], vials: int) -> list[Tier] | None:
    """The tiers of `vials` kits that every content can supply, earliest first (a tier repeats
    when it gives more than one kit); None when some content cannot supply them."""
    if vials < 0:
        raise ValueError("vials must not be negative")
    rows: list[Mapping[Tier, int]] = [shelf.get(c, {}) for c in contents]
    chosen: list[Tier] = []
    # a tier every content holds is among the tiers of the content with the fewest
    fewest: Mapping[Tier, int] = min(rows, key=len) if rows else {}
    for tier in sorted(fewest):
        if len(chosen) == vials:
            break
        offered = min([row.get(tier, 0) for row in rows])
        if offered > 0:
            chosen.extend([tier] * min(offered, vials - len(chosen)))
    return chosen if len(chosen) == vials else None


def usable_stock(
    shelf: Shelf,
    *,
    contents: Sequence[str],
    shares: Mapping[str, float],
    expiring_after: date | None = None,
) -> dict[str, int]:
    """Per content, the kits the site can expect to hand out (and, if given, expiring after
    `expiring_after`): what the resupply counts as stock. A tier is used until its scarcest
    content, measured against the shares in which the site uses the contents, runs out; beyond
    that, its kits are stranded. A tier another content lacks counts for nothing."""
    rows = [shelf.get(c, {}) for c in contents]
    parts = [shares.get(c, 0.0) for c in contents]
    divisors = [max(part, 1e-9) for part in parts]
    totals = [0] * len(rows)
    for tier in rows[0] if rows else ():
        if expiring_after is not None and tier[0] <= expiring_after:
            continue
        held = [row.get(tier, 0) for row in rows]
        if min(held) <= 0:
            continue
        rounds = min([n / d for n, d in zip(held, divisors, strict=True)])
        for i, n in enumerate(held):
            totals[i] += min(n, int(rounds * parts[i] + 1e-9))
    return dict(zip(contents, totals, strict=True))


def visit_tiers(
    shelf: Shelf, *, contents: Sequence[str], vials: int, must_hold: int = 0
) -> list[Tier] | None:
    """The tiers of a visit's `vials` kits; None, for either arm alike, when the common tiers do
    not suffice or do not hold `must_hold` vials of every content (`choose_kits`)."""
    if common_tiers(shelf, contents, max(vials, must_hold)) is None:
        return None
    tiers = common_tiers(shelf, contents, vials)
    assert tiers is not None  # fewer vials than a list that exists
    return tiers


def draw(tiers: Sequence[Tier], kits: Mapping[Tier, Sequence[T]], rng: random.Random) -> list[T]:
    """The kits of `tiers`, at random among each tier's `kits` (given in kit number order, so
    that a seeded rng draws the same kits)."""
    chosen: list[T] = []
    for tier, count in sorted(Counter(tiers).items()):
        chosen.extend(rng.sample(kits[tier], count))
    return chosen


def choose_kits(
    kits: Iterable[KitCandidate],
    *,
    contents: Sequence[str],
    content: str,
    vials: int,
    day: date,
    window_days: int,
    rng: random.Random,
    must_hold: int = 0,
    pool: str | None = None,
) -> list[KitCandidate] | None:
    """`vials` kits of `content` from the common tiers, at random among the kits of each tier
    (kit numbers carry nothing); None, for either arm alike, when the common tiers do not
    suffice, or do not hold `must_hold` vials of every content (a randomization asks for one
    visit at the heaviest weight, so that whether it is refused depends on neither the arm of
    the next slot nor the subject's weight). With `pool`, only the kits of that stage pool
    count (app/domain/stage_pools.py): the subject's stage, which is not blinded."""
    usable = [
        k for k in kits if usable_on(k, day, window_days) and (pool is None or k.pool == pool)
    ]
    shelf: dict[str, Counter[Tier]] = defaultdict(Counter)
    for kit in usable:
        shelf[kit.content][tier_of(kit)] += 1
    tiers = visit_tiers(shelf, contents=contents, vials=vials, must_hold=must_hold)
    if tiers is None:
        return None
    pools: dict[Tier, list[KitCandidate]] = defaultdict(list)
    for kit in sorted(usable, key=lambda k: k.kit_number):
        if kit.content == content:
            pools[tier_of(kit)].append(kit)
    return draw(tiers, pools, rng)
