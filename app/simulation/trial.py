"""One simulated trial, day by day, through the rules the service runs.

Allocation comes from the study's own list generator, doses from its dose rule, dispensing from
the common-expiry rule within the subject's stage pool, the forecast and the resupply from the
same functions the service calls (app/domain/forecast.py, app/domain/resupply.py,
app/domain/common_expiry.py, app/domain/stage_pools.py). What the trial
adds is only what a database would hold: the stock, the subjects and the calendar.
"""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal

from app.domain.common_expiry import Tier, common_tiers
from app.domain.dosing import weight_for_dose
from app.domain.forecast import DueCalendar, OnTreatment
from app.domain.forecast import pending_visits as pending
from app.domain.resupply import Levels
from app.domain.stage_pools import ALL, stage_pools
from app.domain.study import ListScope, StudyDefinition
from app.simulation import draws
from app.simulation.checks import Resupply, spend
from app.simulation.doses import slots_by_stratum
from app.simulation.kept import START, Kept
from app.simulation.naive import naive_dates
from app.simulation.scenario import Scenario
from app.simulation.state import Shelf, Shipment, SiteState, Subject, Tally, TrialRecord


class Trial(Resupply):
    """One trial's run; `run()` returns its record. Trials of one scenario may share a `Kept`
    (`runner.run_chunk` does); without one, the trial keeps its own."""

    def __init__(
        self,
        study: StudyDefinition,
        scenario: Scenario,
        levels: Levels,
        seed: int,
        kept: Kept | None = None,
    ) -> None:
        self.study, self.scenario, self.levels = study, scenario, levels
        self.kept = kept = Kept(study, scenario, levels) if kept is None else kept
        self.rng = random.Random(seed)
        self.contents = study.contents
        self.visits = kept.visits
        self.blind = scenario.policy == "blind"
        self.dnd = study.supply.do_not_dispense_days
        self.window_after = study.schedule.window_days_after
        """A refused visit is tried again daily until its window closes (docs/visits.md)."""
        self.dns = study.supply.do_not_ship_days
        self.dates = kept.dates
        self.doses = kept.doses
        depots = {d.code: i for i, d in enumerate(scenario.depots)}
        self.depots = [Shelf.empty(self.contents) for _ in scenario.depots]
        self.pools = stage_pools(s.stage for s in kept.scopes) if self.blind else (ALL,)
        """Stage pools: each stage's subjects draw on kits shipped for it (one pool of every
        kit under the naive policy)."""
        self.sites = [
            SiteState(
                s.code,
                depots[s.depot],
                s.lead_days,
                s.subjects_per_week / 7,
                s.activation_day,
                {p: Shelf.empty(self.contents) for p in self.pools},
                {p: DueCalendar(self.contents, START, kept.horizon) for p in self.pools},
                {p: Counter() for p in self.pools},
            )
            for s in scenario.sites
        ]
        self.few_places = max(
            (s.rate_per_day * (s.lead_days + 1) + 1 for s in self.sites), default=0.0
        )
        """Places left in a stage below which some site's enrolment need is bound by them."""
        self.tally = Tally()
        self.subjects: list[Subject] = []
        self.due: dict[int, list[tuple[int, int]]] = {}
        """Day -> (subject, visit index) to try that day."""
        self.waiting: list[tuple[int, int, str]] = []
        """Eligible subjects waiting for kits: (site, last day to try, stratum)."""
        self.arrivals: dict[int, list[Shipment]] = {}
        """Day -> the shipments arriving that morning."""
        self.next_shipment = 1
        seed_text = f"sim-{seed}"
        self.scopes = kept.scopes
        self.lists = {s.code: slots_by_stratum(seed_text, s) for s in self.scopes}
        self.used: Counter[tuple[str, str]] = Counter()
        self.stage_index = 0
        self.stage_opens = 0
        self.in_scope = 0
        self.stock_by_week: list[list[dict[str, int]]] = []
        self.refusal_weeks: list[set[int]] = [set() for _ in self.sites]

    # --- stages and allocation -------------------------------------------------------------

    def pool(self, stage: str) -> str:
        return stage if self.blind else ALL

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
                self.tally.left_at_sites[content] += site.left(content) + sum(
                    moving[content] for moving in site.in_transit.values()
                )
        return TrialRecord(
            self.tally, self.subjects, self.stock_by_week, self.refusal_weeks, day + 1
        )

    def _start_of_day(self, day: int) -> None:
        for depot, expiry, kits in self.kept.releases.get(day, ()):
            for content in self.contents:
                self.depots[depot].add(content, (expiry, 0), kits)
        for shipment in self.arrivals.pop(day, ()):
            site = self.sites[shipment.site]
            for pool, rows in shipment.kits.items():
                shelf, moving = site.shelves[pool], site.in_transit[pool]
                for content, row in rows.items():
                    for expiry, n in row.items():
                        shelf.add(content, (expiry, shipment.id), n)
                        moving[content] -= n
            site.last_received = shipment.id
            site.dirty = site.stale = True
        cutoff = self.dates[day + self.dnd]
        for site in self.sites:
            if site.stale:
                site.earliest, site.stale = site.first_expiry(), False
            first = site.earliest
            if first is not None and first <= cutoff:
                for shelf in site.shelves.values():
                    for content, n in shelf.expire(cutoff).items():
                        self.tally.expired_at_sites[content] += n
                site.dirty = True
                site.earliest = site.first_expiry()
        if day % 7 == 0:
            self.stock_by_week.append([s.stock() for s in self.sites])

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
        if scope is None:
            return
        chance = self.rng.random
        for site_index, opens, none in self.kept.recruiting:
            if day < opens:
                continue
            first = chance()
            if first <= none:
                continue  # no arrival (the common case, drawn as `draws.arrivals` draws it)
            for _ in range(draws.arrivals(self.rng, none, first)):
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
        low, high = self.kept.weight_range
        weight = draws.weight(self.rng, shape=self.scenario.weight, low=low, high=high)
        vials = self.doses.vials(weight, level)
        arm = self.lists[scope.code][stratum][self.used[(scope.code, stratum)]]
        pool = self.pool(scope.stage)
        shelf = site.shelves[pool]
        if self.blind:
            must_hold = self.doses.floor(level)
            dates = common_tiers(shelf.counts, self.contents, max(vials, must_hold))
            dates = dates[:vials] if dates is not None else None
        else:
            dates = naive_dates(
                shelf, content=arm, vials=vials, today=self.dates[day], window_days=self.dnd
            )
        if dates is None:
            self.tally.randomization_refusals += 1
            site.refused_vials[pool] = max(site.refused_vials.get(pool, 0), vials)
            site.dirty = True
            self.refusal_weeks[site_index].add(day // 7)
            if day < last_try:
                self.waiting.append((site_index, last_try, stratum))
            else:
                self.tally.subjects_lost += 1
            return
        self.used[(scope.code, stratum)] += 1
        visits = self.visits
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
        calendar = site.calendars[pool]
        for due, n in pending(treated, visits):
            calendar.add(arm, due, n)
        if len(visits) > 1:
            self.due.setdefault(day + visits[1].day_offset, []).append((subject_id, 1))
        site.waiting_shipment.append(subject_id)
        self.in_scope += 1
        places = scope.cap - self.in_scope
        if places < self.few_places:
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
        pool = self.pool(subject.stage)
        calendar = site.calendars[pool]
        if index >= subject.stop_index:
            for when, n in pending(self._treated(subject, index), self.visits):
                calendar.add(subject.arm, when, -n)
            return
        if day == subject.day_one + visit.day_offset:
            self.tally.visits_due += 1
            self._reweigh(subject, site, index)
        if self.blind:
            dates = common_tiers(site.shelves[pool].counts, self.contents, subject.vials)
        else:
            dates = naive_dates(
                site.shelves[pool],
                content=subject.arm,
                vials=subject.vials,
                today=self.dates[day],
                window_days=self.dnd,
            )
        if dates is None:
            self.tally.visit_refusals += 1
            site.refused_vials[pool] = max(site.refused_vials.get(pool, 0), subject.vials)
            site.dirty = True
            self.refusal_weeks[subject.site].add(day // 7)
            shown = sum(site.left(c) for c in self.contents)
            if shown >= subject.vials:
                subject.seen.refused_shown += 1
            site.refused_today.append(subject_id)
            if day < subject.day_one + visit.day_offset + self.window_after:
                self.due.setdefault(day + 1, []).append((subject_id, index))
                return
            self.tally.visits_missed += 1
        else:
            self._hand_out(day, site, subject_id, subject.arm, dates)
        calendar.add(subject.arm, due, -subject.vials)
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
        low, high = self.kept.weight_range
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
            calendar = site.calendars[self.pool(subject.stage)]
            for when, n in before:
                calendar.add(subject.arm, when, vials - n)
            subject.vials = vials
            site.dirty = True

    def _hand_out(
        self, day: int, site: SiteState, subject_id: int, arm: str, tiers: list[Tier]
    ) -> None:
        seen = self.subjects[subject_id].seen
        earliest = site.earliest  # of the day's shelves: what the pharmacist saw that morning
        pool = self.pool(self.subjects[subject_id].stage)
        shelf, strand, newest = site.shelves[pool], self.blind, site.last_received
        touched = 0
        for tier in dict.fromkeys(tiers):  # the tiers come earliest first, each kit of one
            kits = tiers.count(tier)
            touched += 1
            if shelf.take(arm, tier, kits, strand=strand):
                seen.stranded_tiers += 1
            expiry = tier[0]
            if earliest is not None and expiry > earliest:
                seen.later_expiry += kits
                seen.expiry_gap_days += kits * (expiry - earliest).days
            if tier[1] == newest:
                seen.newest_shipment += kits
        seen.kits += len(tiers)
        self.tally.dispensed[arm] += len(tiers)
        site.served_today.append(subject_id)
        site.stale = True
        spend(site, pool, arm, len(tiers), touched)
