"""What every trial of one scenario derives alike, kept across the trials of a run's batch.

The dates, the sites' levels and lots, and the enrolment forecast: the domain's answers
(`Doses.enrolment`, `enrolment_need`) for a site with so many places left in the open stage,
which recur from check to check and from trial to trial. Each answer is the domain function's
own, kept under all of its inputs; no rule is copied here.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from app.domain.forecast import Enrolment, enrolment_need
from app.domain.resupply import Levels
from app.domain.study import ListScope, StudyDefinition
from app.simulation.doses import Doses
from app.simulation.scenario import Scenario

START = date(2030, 1, 7)
"""Day 0 of every simulated trial (a Monday); only differences of dates matter."""

Forecast = tuple[int, dict[str, float], dict[str, float]]
"""The randomization floor, and the need of the subjects to come within the lead time and
within the lead time and cover."""


class Kept:
    """One scenario's constants and kept answers; `runner.run_chunk` shares one among its
    trials (all of one scenario and levels)."""

    def __init__(self, study: StudyDefinition, scenario: Scenario, levels: Levels) -> None:
        self.contents = study.contents
        self.visits = study.schedule.visits()
        self.scopes = list(study.scopes())
        self.doses = Doses(study, scenario)
        self.horizon = scenario.days + self.visits[-1].day_offset + 60
        self.dates = [START + timedelta(days=d) for d in range(self.horizon + 400)]
        """Day number -> date, far enough past the last visit for every horizon asked."""
        self.releases: dict[int, list[tuple[int, date, int]]] = {}
        """Day -> (depot, expiry, kits per content) of the lots released that morning."""
        for index, depot in enumerate(scenario.depots):
            for lot in depot.lots:
                expiry = START + timedelta(days=lot.expiry_day)
                self.releases.setdefault(lot.release_day, []).append(
                    (index, expiry, lot.kits_per_content)
                )
        self.site_levels = [
            Levels(levels.trigger, levels.target, s.lead_days, levels.cover_days)
            for s in scenario.sites
        ]
        self._rates = [s.subjects_per_week / 7 for s in scenario.sites]
        self.recruiting = [
            (i, s.activation_day, math.exp(-rate))
            for i, (s, rate) in enumerate(zip(scenario.sites, self._rates, strict=True))
            if rate > 0
        ]
        """Sites that recruit: index, opening day, chance of no arrival in a day."""
        self.weight_range = (float(study.weight.min_kg), float(study.weight.max_kg))
        self.pool_floors: dict[str, int] = {}
        """Per stage pool, one heaviest visit at the stage's highest dose level: what a pool
        holds of every content while its subjects are on treatment."""
        for scope in self.scopes:
            floor = self.doses.floor(self.doses.level(scope))
            self.pool_floors[scope.stage] = max(self.pool_floors.get(scope.stage, 0), floor)
        self._forecasts: dict[tuple[int, int, int], Forecast] = {}
        self._enrolments: dict[tuple[float, int, int], tuple[Enrolment, int]] = {}
        self._needs: dict[tuple[int, int], dict[str, float]] = {}

    def forecast(self, site: int, scope: ListScope | None, stage: int, in_scope: int) -> Forecast:
        """`Doses.enrolment` and `enrolment_need` at the site's two horizons, kept per site, open
        stage and places left. The enrolment is kept per rate, open stage and places left (its
        only inputs, so an id stands for one), its need per horizon."""
        key = (site, stage, in_scope) if scope else (site, -1, 0)
        found = self._forecasts.get(key)
        if found is None:
            rate = self._rates[site]
            at_rate = (rate, *key[1:])
            made = self._enrolments.get(at_rate)
            if made is None:
                made = self._enrolments[at_rate] = self.doses.enrolment(
                    rate * 7, scope=scope, in_scope=in_scope, later=self.scopes[stage + 1 :]
                )
            enrolment, floor = made
            levels = self.site_levels[site]
            lead = levels.lead_days
            found = self._forecasts[key] = (
                floor,
                self._coming(enrolment, lead),
                self._coming(enrolment, lead + levels.cover_days),
            )
        return found

    def _coming(self, enrolment: Enrolment, horizon: int) -> dict[str, float]:
        key = (id(enrolment), horizon)
        found = self._needs.get(key)
        if found is None:
            found = self._needs[key] = enrolment_need(enrolment, self.visits, horizon)
        return found
