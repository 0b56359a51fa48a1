"""The end of a simulated day: each site's resupply check, per stage pool, through the rules the
service runs (app/domain/forecast.py, app/domain/resupply.py, app/domain/common_expiry.py,
app/domain/stage_pools.py), and the shipments it sends.

A site is checked only when something it decides on may have changed: an event (a refusal, an
arrival, a dose change, a stage opening), dispensings that may have used up its slack, or the day
on which time alone can change the answer (`_next_check`). Checking only then keeps the answer
of a daily check while the shares of need stay as they were (docs/supply.md).
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, timedelta

from app.domain.common_expiry import usable_stock
from app.domain.forecast import combine
from app.domain.resupply import Position, need_shares, pick_depot_dates, plan_in_shares
from app.domain.stage_pools import live_pools, shipment_by_pool
from app.domain.study import ListScope
from app.simulation.kept import START, Kept
from app.simulation.naive import naive_quantities
from app.simulation.state import Shelf, Shipment, SiteState, Subject, Tally


class Resupply:
    """The resupply half of a `Trial` (which sets these attributes)."""

    kept: Kept
    contents: tuple[str, ...]
    blind: bool
    dnd: int
    """Do-not-dispense days."""
    dns: int
    """Do-not-ship days."""
    sites: list[SiteState]
    depots: list[Shelf]
    subjects: list[Subject]
    tally: Tally
    arrivals: dict[int, list[Shipment]]
    next_shipment: int
    stage_index: int
    stage_opens: int
    in_scope: int
    pools: tuple[str, ...]

    def _open_scope(self, day: int) -> ListScope | None:
        raise NotImplementedError

    def _forecast_scope(self, day: int) -> ListScope | None:
        """The stage the forecast counts subjects to come for: the open one, else (with stage
        pools, during a safety review) the next to open, so that its pool is stocked by then."""
        scope = self._open_scope(day)
        scopes = self.kept.scopes
        if scope is None and self.blind and self.stage_index < len(scopes):
            return scopes[self.stage_index]
        return scope

    def pool(self, stage: str) -> str:
        raise NotImplementedError

    def _end_of_day(self, day: int) -> None:
        scope = self._forecast_scope(day)
        opening = day == self.stage_opens
        for index, site in enumerate(self.sites):
            if day < site.activation_day:
                continue  # nothing reaches a site before it opens, and it is checked then
            if site.refused_today:
                for subject_id in site.served_today:
                    self.subjects[subject_id].seen.served_while_refused += 1
            elif not (site.dirty or opening or site.served_today) and day < site.next_check:
                # nothing happened here today (what was spent before stays within the slack,
                # or the site would have been checked then), and time alone changes nothing yet
                continue
            if site.dirty or opening or day >= site.next_check:  # `spend` marks an overspent site
                self._check(day, index, site, scope)
                site.spent = {}
                site.dirty = False
            site.refused_today.clear()
            site.served_today.clear()
            site.refused_vials.clear()

    def _next_check(
        self,
        day: int,
        site: SiteState,
        slack: dict[str, dict[str, int]],
        own_lead: dict[str, tuple[int, ...]],
    ) -> int:
        """The first day on which time alone can change the decision: a pool's need of a
        content within the lead time (`own_lead` of the subjects on treatment now) outgrows its
        slack, or a kit ages past the arrival cutoff."""
        dates, lead = self.kept.dates, site.lead_days
        first = len(dates)
        contents = self.contents
        for pool, owns in own_lead.items():
            over, room = site.calendars[pool].first_over, slack.get(pool, {})
            for content, own in zip(contents, owns, strict=True):
                extra = room.get(content, 0)
                nxt = over(content, own + extra if extra > 0 else own)
                if nxt is not None:
                    days = (nxt - START).days - lead
                    if days < first:
                        first = days
        cutoff = dates[day + lead + self.dnd]
        later = min(
            [
                t[0]
                for shelf in site.shelves.values()
                for row in shelf.counts.values()
                for t in row
                if t[0] > cutoff
            ],
            default=None,
        )
        if later is not None:
            first = min(first, (later - START).days - lead - self.dnd)
        return max(first, day + 1)

    def _check(self, day: int, index: int, site: SiteState, scope: ListScope | None) -> None:
        """The resupply check, per stage pool: a shipment if any pool is due; the slack per pool
        and content left above the safety level (none after a shipment) and the next day to
        check, kept on the site."""
        kept, contents = self.kept, self.contents
        levels = kept.site_levels[index]
        floor, coming_lead, coming_cover = kept.forecast(
            index, scope, self.stage_index, self.in_scope
        )
        recruiting = None if scope is None else self.pool(scope.stage)
        lead = levels.lead_days
        until_lead = kept.dates[day + lead]
        until_cover = kept.dates[day + lead + levels.cover_days]
        treated = {p: 1 if site.calendars[p].pending() else 0 for p in self.pools}
        orders: dict[str, dict[str, int]] = {}
        slacks: dict[str, dict[str, int]] = {}
        own_leads: dict[str, tuple[int, ...]] = {}
        site.shares = {}
        pools = live_pools(self.pools, recruiting=recruiting, on_treatment=treated)
        pools += [p for p in site.refused_vials if p not in pools]
        expiring_after = kept.dates[day + lead + self.dnd]
        for pool in pools:
            calendar, transit = site.calendars[pool], site.in_transit[pool]
            own_lead = own_leads[pool] = calendar.needs(until_lead)
            own_cover = calendar.needs(until_cover)
            if pool == recruiting:
                need_lead = combine(
                    dict(zip(contents, own_lead, strict=True)), coming_lead, contents
                )
                need_cover = combine(
                    dict(zip(contents, own_cover, strict=True)), coming_cover, contents
                )
                pool_floor = floor
            else:  # no subjects to come: `combine` with nothing to add
                need_lead = dict(zip(contents, own_lead, strict=True))
                need_cover = dict(zip(contents, own_cover, strict=True))
                pool_floor = kept.pool_floors.get(pool, floor)
            extra = site.refused_vials.get(pool, 0)
            if extra:
                need_lead = {c: n + extra for c, n in need_lead.items()}
                need_cover = {c: n + extra for c, n in need_cover.items()}
            shelf = site.shelves[pool]
            if self.blind:
                shares = site.shares[pool] = need_shares(need_cover, pool_floor)
                stock = usable_stock(
                    shelf.counts, contents=contents, shares=shares, expiring_after=expiring_after
                )
                positions = {
                    c: Position(stock[c], transit[c], need_lead[c], need_cover[c]) for c in contents
                }
                decided = plan_in_shares(positions, levels, pool_floor, shares)
                orders[pool], slacks[pool] = decided.quantities, decided.slack
            else:
                usable = shelf.by_date(kept.dates[day + self.dnd])
                positions = {
                    c: Position(sum(usable[c].values()), transit[c], need_lead[c], need_cover[c])
                    for c in contents
                }
                orders[pool], slacks[pool] = naive_quantities(positions, levels), {}
        shipment = shipment_by_pool(orders)
        if shipment:
            self._ship(day, index, site, shipment)
            slacks = {}
        site.slack = slacks
        site.next_check = self._next_check(day, site, slacks, own_leads)

    def _ship(
        self, day: int, index: int, site: SiteState, orders: dict[str, dict[str, int]]
    ) -> None:
        depot = self.depots[site.depot]
        shippable = depot.by_date(self.kept.dates[day] + timedelta(days=self.dns))
        kits: dict[str, dict[str, Counter[date]]] = {}
        for pool, quantities in orders.items():  # pools in the order the stages open
            if self.blind:
                picked, short = pick_depot_dates(shippable, quantities, self.contents)
                site.dirty = site.dirty or bool(short)
            else:
                picked = {c: Counter() for c in self.contents}
                for content, quantity in quantities.items():
                    left = quantity
                    for expiry in sorted(shippable[content]):
                        take = min(left, shippable[content][expiry])
                        if take:
                            picked[content][expiry] += take
                            left -= take
            for content, row in picked.items():
                for expiry, n in row.items():
                    shippable[content][expiry] -= n
            kits[pool] = picked
        shipment = Shipment(self.next_shipment, index, day + site.lead_days, kits)
        size = shipment.size
        if not size:
            return
        self.next_shipment += 1
        for pool, picked in kits.items():
            moving = site.in_transit[pool]
            for content, row in picked.items():
                for expiry, n in row.items():
                    depot.take(content, (expiry, 0), n)
                    moving[content] += n
                    self.tally.shipped[content] += n
        self.tally.shipments += 1
        for subject_id in site.waiting_shipment:
            seen = self.subjects[subject_id].seen
            seen.shipment_after_days = min(day - self.subjects[subject_id].day_one, 60)
            seen.shipment_after_size = size
        site.waiting_shipment.clear()
        # checked at the end of the day: a lead time of 0 arrives the next morning
        shipment.arrival_day = day + max(site.lead_days, 1)
        self.arrivals.setdefault(shipment.arrival_day, []).append(shipment)


def spend(site: SiteState, pool: str, content: str, kits: int, tiers: int) -> None:
    """A dispensing can lower a content's usable stock in its pool by at most its kits in the
    shares of the last check (a tier is used until its scarcest content runs out), plus one per
    tier touched: while that stays within the slack, the check's answer cannot change."""
    shares = site.shares.get(pool)
    if not shares:
        site.dirty = True
        return
    spent = site.spent.setdefault(pool, {})
    slack = site.slack.get(pool, {})
    own = max(shares.get(content, 0.0), 1e-9)
    for other, share in shares.items():
        n = spent[other] = spent.get(other, 0) + math.ceil(kits * share / own) + tiers
        if n > slack.get(other, -1):
            site.dirty = True  # the slack may be used up: check the site tonight
