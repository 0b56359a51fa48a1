"""One simulated trial, day by day, through the rules the service runs.

Allocation comes from the study's own list generator, doses from its dose rule, dispensing from
the common-expiry rule, the forecast and the resupply from the same functions the service calls
(app/domain/forecast.py, app/domain/resupply.py, app/domain/common_expiry.py). What the trial
adds is only what a database would hold: the stock, the subjects and the calendar.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from app.domain.common_expiry import Tier, common_tiers, usable_stock
from app.domain.dosing import heaviest_visit_vials, weight_for_dose
from app.domain.forecast import (
    DueCalendar,
    Enrolment,
    OnTreatment,
    combine,
    enrolment_need,
)
from app.domain.forecast import pending_visits as pending
from app.domain.resupply import (
    Levels,
    Position,
    need_shares,
    pick_depot_dates,
    plan,
)
from app.domain.study import ListScope, StudyDefinition
from app.simulation import draws
from app.simulation.doses import Doses, slots_by_stratum
from app.simulation.naive import naive_dates, naive_quantities
from app.simulation.scenario import Scenario
from app.simulation.state import Shelf, Shipment, SiteState, Subject, Tally, TrialRecord

START = date(2030, 1, 7)
"""Day 0 of every simulated trial (a Monday); only differences of dates matter."""


class Trial:
    """One trial's run; `run()` returns its record."""

    def __init__(
        self, study: StudyDefinition, scenario: Scenario, levels: Levels, seed: int
    ) -> None:
        self.study, self.scenario, self.levels = study, scenario, levels
        self.rng = random.Random(seed)
        self.contents = study.contents
        self.visits = study.schedule.visits()
        self.blind = scenario.policy == "blind"
        self.dnd = study.supply.do_not_dispense_days
        self.dns = study.supply.do_not_ship_days
        horizon = scenario.days + self.visits[-1].day_offset + 60
        self.dates = [START + timedelta(days=d) for d in range(horizon + 400)]
        """Day number -> date, far enough past the last visit for every horizon asked."""
        depots = {d.code: i for i, d in enumerate(scenario.depots)}
        self.depots = [Shelf.empty(self.contents) for _ in scenario.depots]
        self.sites = [
            SiteState(
                s.code,
                depots[s.depot],
                s.lead_days,
                s.subjects_per_week / 7,
                s.activation_day,
                Shelf.empty(self.contents),
                DueCalendar(self.contents, START, horizon),
            )
            for s in scenario.sites
        ]
        self.tally = Tally()
        self.subjects: list[Subject] = []
        self.due: dict[int, list[tuple[int, int]]] = {}
        """Day -> (subject, visit index) to try that day."""
        self.waiting: list[tuple[int, int, str]] = []
        """Eligible subjects waiting for kits: (site, last day to try, stratum)."""
        self.shipments: list[Shipment] = []
        self.next_shipment = 1
        seed_text = f"sim-{seed}"
        self.scopes = self._scopes()
        self.lists = {s.code: slots_by_stratum(seed_text, s) for s in self.scopes}
        self.used: Counter[tuple[str, str]] = Counter()
        self.stage_index = 0
        self.stage_opens = 0
        self.in_scope = 0
        self.stock_by_week: list[list[dict[str, int]]] = []
        self.refusal_weeks: list[set[int]] = [set() for _ in self.sites]
        self.doses = Doses(study, scenario)
        self._enrolments: dict[tuple[str, int, int], tuple[Enrolment, int]] = {}
        self._coming_cache: dict[tuple[int, int], dict[str, float]] = {}
        self.site_levels = [
            Levels(levels.trigger, levels.target, s.lead_days, levels.cover_days)
            for s in self.sites
        ]

    # --- stages and allocation -------------------------------------------------------------

    def _scopes(self) -> list[ListScope]:
        return list(self.study.scopes())

    def _open_scope(self, day: int) -> ListScope | None:
        if self.stage_index >= len(self.scopes) or day < self.stage_opens:
            return None
        return self.scopes[self.stage_index]

    # --- the day's work ---------------------------------------------------------------------

    def run(self) -> TrialRecord:
        last_day = self.scenario.days
        day = 0
        while day <= last_day or self.due:
            self._start_of_day(day)
            if day <= last_day:
                self._recruit(day)
            for subject_id, index in self.due.pop(day, []):
                self._visit(day, subject_id, index)
            self._end_of_day(day)
            if day > last_day and not self.due:
                break
            day += 1
            if day >= len(self.dates) - 400:
                break
        for site in self.sites:  # on the shelf, or still on the way, when the trial ends
            for content in self.contents:
                self.tally.left_at_sites[content] += (
                    site.shelf.left(content) + site.in_transit[content]
                )
        return TrialRecord(
            self.tally, self.subjects, self.stock_by_week, self.refusal_weeks, day + 1
        )

    def _start_of_day(self, day: int) -> None:
        for depot, scenario in zip(self.depots, self.scenario.depots, strict=True):
            for lot in scenario.lots:
                if lot.release_day == day:
                    for content in self.contents:
                        expiry = START + timedelta(days=lot.expiry_day)
                        depot.add(content, (expiry, 0), lot.kits_per_content)
        arriving = [s for s in self.shipments if s.arrival_day == day]
        for shipment in arriving:
            site = self.sites[shipment.site]
            for content, row in shipment.kits.items():
                for expiry, n in row.items():
                    site.shelf.add(content, (expiry, shipment.id), n)
                    site.in_transit[content] -= n
            site.last_received = shipment.id
            site.dirty = True
        if arriving:
            self.shipments = [s for s in self.shipments if s.arrival_day != day]
        cutoff = self.dates[day + self.dnd]
        for site in self.sites:
            first = site.shelf.earliest()
            if first is not None and first <= cutoff:
                for content, n in site.shelf.expire(cutoff).items():
                    self.tally.expired_at_sites[content] += n
                site.dirty = True
                first = site.shelf.earliest()
            site.earliest = first
        if day % 7 == 0:
            self.stock_by_week.append(
                [{c: s.shelf.left(c) for c in self.contents} for s in self.sites]
            )

    def _recruit(self, day: int) -> None:
        scope = self._open_scope(day)
        waiting, self.waiting = self.waiting, []
        for site_index, last_try, stratum in waiting:
            scope = self._open_scope(day)
            if scope is not None:
                if stratum not in scope.strata:
                    stratum = self.rng.choice(scope.strata)
                self._randomize(day, site_index, scope, stratum, last_try)
        scope = self._open_scope(day)
        for site_index, site in enumerate(self.sites):
            if scope is None or day < site.activation_day or site.rate_per_day <= 0:
                continue
            for _ in range(draws.poisson(self.rng, site.rate_per_day)):
                if self.rng.random() < self.scenario.screen_fail_rate:
                    continue
                stratum = self.rng.choice(scope.strata)
                self._randomize(day, site_index, scope, stratum, day + self.scenario.grace_days)
                scope = self._open_scope(day)
                if scope is None:
                    return

    def _randomize(
        self, day: int, site_index: int, scope: ListScope, stratum: str, last_try: int
    ) -> None:
        site = self.sites[site_index]
        level = self.doses.level(scope)
        low, high = float(self.study.weight.min_kg), float(self.study.weight.max_kg)
        weight = draws.weight(self.rng, shape=self.scenario.weight, low=low, high=high)
        vials = self.doses.vials(weight, level)
        arm = self.lists[scope.code][stratum][self.used[(scope.code, stratum)]]
        if self.blind:
            must_hold = heaviest_visit_vials(level, self.study.drug, self.study.weight)
            dates = self._common(site, max(vials, must_hold))
            dates = dates[:vials] if dates is not None else None
        else:
            dates = naive_dates(
                site.shelf, content=arm, vials=vials, today=self.dates[day], window_days=self.dnd
            )
        if dates is None:
            self.tally.randomization_refusals += 1
            site.refused_vials = max(site.refused_vials, vials)
            site.dirty = True
            self.refusal_weeks[site_index].add(day // 7)
            if day < last_try:
                self.waiting.append((site_index, last_try, stratum))
            else:
                self.tally.subjects_lost += 1
            return
        self.used[(scope.code, stratum)] += 1
        visits = self.study.schedule.visits()
        interval = visits[1].day_offset if len(visits) > 1 else 28
        stop = draws.stop_index(
            self.rng,
            per_year=self.scenario.discontinuation_per_year,
            interval_days=interval,
            visits=len(visits),
        )
        subject = Subject(site_index, scope.stage, level, arm, day, vials, weight, weight, stop)
        self.subjects.append(subject)
        subject_id = len(self.subjects) - 1
        self._hand_out(day, site, subject_id, arm, dates)
        treated = OnTreatment(arm, self.dates[day], 1, vials)
        for due, n in pending(treated, visits):
            site.calendar.add(arm, due, n)
        if len(visits) > 1:
            self.due.setdefault(day + visits[1].day_offset, []).append((subject_id, 1))
        site.waiting_shipment.append(subject_id)
        self.in_scope += 1
        places = scope.cap - self.in_scope
        for other in self.sites:
            # the places left bound a site's enrolment need once they are few
            if places < other.rate_per_day * (other.lead_days + 1) + 1:
                other.dirty = True
        if self.in_scope >= scope.cap:
            self.stage_index += 1
            self.in_scope = 0
            self.stage_opens = day + self.scenario.cohort_review_days
            for other in self.sites:
                other.dirty = True

    def _visit(self, day: int, subject_id: int, index: int) -> None:
        subject = self.subjects[subject_id]
        site = self.sites[subject.site]
        visit = self.visits[index]
        due = self.dates[subject.day_one + visit.day_offset]
        if index >= subject.stop_index:
            for when, n in pending(self._treated(subject, index), self.visits):
                site.calendar.add(subject.arm, when, -n)
            return
        if day == subject.day_one + visit.day_offset:
            self.tally.visits_due += 1
            self._reweigh(subject, site, index)
        if self.blind:
            dates = self._common(site, subject.vials)
        else:
            dates = naive_dates(
                site.shelf,
                content=subject.arm,
                vials=subject.vials,
                today=self.dates[day],
                window_days=self.dnd,
            )
        if dates is None:
            self.tally.visit_refusals += 1
            site.refused_vials = max(site.refused_vials, subject.vials)
            site.dirty = True
            self.refusal_weeks[subject.site].add(day // 7)
            shown = sum(site.shelf.left(c) for c in self.contents)
            if shown >= subject.vials:
                subject.seen.refused_shown += 1
            site.refused_today.append(subject_id)
            if day < subject.day_one + visit.day_offset + self.scenario.grace_days:
                self.due.setdefault(day + 1, []).append((subject_id, index))
                return
            self.tally.visits_missed += 1
        else:
            self._hand_out(day, site, subject_id, subject.arm, dates)
        site.calendar.add(subject.arm, due, -subject.vials)
        subject.next_index = index + 1
        if index + 1 < len(self.visits):
            nxt = subject.day_one + self.visits[index + 1].day_offset
            self.due.setdefault(nxt, []).append((subject_id, index + 1))

    def _treated(self, subject: Subject, index: int) -> OnTreatment:
        return OnTreatment(subject.arm, self.dates[subject.day_one], index, subject.vials)

    def _reweigh(self, subject: Subject, site: SiteState, index: int) -> None:
        change = self.scenario.weight.change_sd
        if change <= 0:
            return
        subject.weight *= 1 + self.rng.gauss(0, change)
        low, high = float(self.study.weight.min_kg), float(self.study.weight.max_kg)
        subject.weight = min(max(subject.weight, low), high)
        if abs(subject.weight - subject.weight_used) < 0.09 * subject.weight_used:
            return  # well inside the 10 % rule: the dose keeps its weight (a shortcut only)
        used = weight_for_dose(
            Decimal(f"{subject.weight:.1f}"), Decimal(f"{subject.weight_used:.1f}")
        )
        subject.weight_used = float(used)
        vials = self.doses.vials(subject.weight_used, subject.level)
        if vials != subject.vials:
            before = pending(self._treated(subject, index), self.visits)
            for when, n in before:
                site.calendar.add(subject.arm, when, vials - n)
            subject.vials = vials
            site.dirty = True

    def _common(self, site: SiteState, vials: int) -> list[Tier] | None:
        return common_tiers(site.shelf.counts, self.contents, vials)

    def _hand_out(
        self, day: int, site: SiteState, subject_id: int, arm: str, tiers: list[Tier]
    ) -> None:
        seen = self.subjects[subject_id].seen
        earliest = site.earliest  # of the day's shelf: what the pharmacist saw that morning
        for expiry, shipment in tiers:
            site.shelf.take(arm, (expiry, shipment), strand=self.blind)
            seen.kits += 1
            if earliest is not None and expiry > earliest:
                seen.later_expiry += 1
                seen.expiry_gap_days += (expiry - earliest).days
            if shipment == site.last_received:
                seen.newest_shipment += 1
            self.tally.dispensed[arm] += 1
        site.served_today.append(subject_id)
        self._spend(site, arm, len(tiers), len(set(tiers)))

    def _spend(self, site: SiteState, content: str, kits: int, tiers: int) -> None:
        """A dispensing can lower a content's usable stock by at most its kits in the shares of
        the last check (a tier is used until its scarcest content runs out), plus one per tier
        touched: while that stays within the slack, the check's answer cannot change."""
        if not site.shares:
            site.dirty = True
            return
        own = max(site.shares.get(content, 0.0), 1e-9)
        for other, share in site.shares.items():
            site.spent[other] = site.spent.get(other, 0) + math.ceil(kits * share / own) + tiers

    # --- resupply ---------------------------------------------------------------------------

    def _end_of_day(self, day: int) -> None:
        scope = self._open_scope(day)
        opening = day == self.stage_opens
        for index, site in enumerate(self.sites):
            happened = site.dirty or opening or site.spent or site.served_today
            if not (happened or site.refused_today) and day < site.next_check:
                continue  # nothing happened here today, and time alone changes nothing yet
            if site.refused_today:
                for subject_id in site.served_today:
                    self.subjects[subject_id].seen.served_while_refused += 1
            due = site.dirty or opening or day >= site.next_check
            due = due or any(n > site.slack.get(c, -1) for c, n in site.spent.items())
            if day >= site.activation_day and due:
                site.slack = self._check(day, index, site, scope)
                site.spent = {}
                site.dirty = False
                site.next_check = self._next_check(day, site, site.slack)
            site.refused_today.clear()
            site.served_today.clear()
            site.refused_vials = 0

    def _next_check(self, day: int, site: SiteState, slack: dict[str, int]) -> int:
        """The first day on which time alone can change the decision: a content's need within
        the lead time outgrows its slack, or a kit ages past the arrival cutoff."""
        lead = site.lead_days
        days = [len(self.dates)]
        for content in self.contents:
            until = self.dates[day + lead]
            nxt = site.calendar.next_due_after(content, until, max(slack.get(content, 0), 0))
            if nxt is not None:
                days.append((nxt - START).days - lead)
        cutoff = self.dates[day + lead + self.dnd]
        later = [t[0] for row in site.shelf.counts.values() for t in row if t[0] > cutoff]
        if later:
            days.append((min(later) - START).days - lead - self.dnd)
        return max(min(days), day + 1)

    def _enrolment(self, site: SiteState, scope: ListScope | None) -> tuple[Enrolment, int]:
        key = (site.code, self.stage_index if scope else -1, self.in_scope if scope else 0)
        cached = self._enrolments.get(key)
        if cached is None:
            later = self.scopes[self.stage_index + 1 :]
            cached = self._enrolments[key] = self.doses.enrolment(
                site.rate_per_day * 7, scope=scope, in_scope=self.in_scope, later=later
            )
        return cached

    def _coming(self, enrolment: Enrolment, horizon: int) -> dict[str, float]:
        """`enrolment_need`, kept while the enrolment and horizon are the same (enrolments are
        kept in `_enrolments`, so an id stands for one)."""
        key = (id(enrolment), horizon)
        found = self._coming_cache.get(key)
        if found is None:
            found = self._coming_cache[key] = enrolment_need(enrolment, self.visits, horizon)
        return found

    def _check(
        self, day: int, index: int, site: SiteState, scope: ListScope | None
    ) -> dict[str, int]:
        """The resupply check; the slack per content left above the safety level."""
        today = self.dates[day]
        levels = self.site_levels[index]
        enrolment, floor = self._enrolment(site, scope)
        extra = site.refused_vials
        lead = levels.lead_days
        needs = []
        for horizon in (lead, lead + levels.cover_days):
            until = self.dates[day + horizon]
            own = {c: site.calendar.need(c, until) for c in self.contents}
            coming = self._coming(enrolment, horizon)
            needs.append({c: n + extra for c, n in combine(own, coming, self.contents).items()})
        need_lead, need_cover = needs
        if self.blind:
            arrival = self.dates[day + lead + self.dnd]
            shares = site.shares = need_shares(need_cover, floor)
            stock = usable_stock(
                site.shelf.counts, contents=self.contents, shares=shares, expiring_after=arrival
            )
        else:
            usable = site.shelf.by_date(today + timedelta(days=self.dnd))
            stock = {c: sum(usable[c].values()) for c in self.contents}
        positions = {
            c: Position(stock[c], site.in_transit[c], need_lead[c], need_cover[c])
            for c in self.contents
        }
        if self.blind:
            decided = plan(positions, levels, floor)
            quantities, slack = decided.quantities, decided.slack
        else:
            quantities, slack = naive_quantities(positions, levels), {}
        if quantities:
            self._ship(day, index, site, quantities)
            return {}
        return slack

    def _ship(self, day: int, index: int, site: SiteState, quantities: dict[str, int]) -> None:
        depot = self.depots[site.depot]
        shippable = depot.by_date(self.dates[day] + timedelta(days=self.dns))
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
        size = sum(sum(row.values()) for row in picked.values())
        if not size:
            return
        shipment = Shipment(self.next_shipment, index, day + site.lead_days, picked)
        self.next_shipment += 1
        for content, row in picked.items():
            for expiry, n in row.items():
                depot.take(content, (expiry, 0), n)
                site.in_transit[content] += n
                self.tally.shipped[content] += n
        self.tally.shipments += 1
        for subject_id in site.waiting_shipment:
            seen = self.subjects[subject_id].seen
            seen.shipment_after_days = min(day - self.subjects[subject_id].day_one, 60)
            seen.shipment_after_size = size
        site.waiting_shipment.clear()
        # checked at the end of the day: a lead time of 0 arrives the next morning
        shipment.arrival_day = day + max(site.lead_days, 1)
        self.shipments.append(shipment)
