"""The simulator retries a refused visit until the study definition's window closes: the window
comes from `[schedule]`, not from a number of the simulator's own (docs/visits.md)."""

from __future__ import annotations

import dataclasses

from app.domain.study import StudyDefinition, load_study
from app.simulation.runner import scenario_levels
from app.simulation.scenario import load_scenario
from app.simulation.trial import Trial
from tests.simulation.test_trial_invariants import bundled_scenario

STUDY = load_study()


def _with_window_after(days: int) -> StudyDefinition:
    schedule = STUDY.schedule.model_copy(update={"window_days_after": days})
    return STUDY.model_copy(update={"schedule": schedule})


def test_a_refused_visit_is_retried_until_its_window_closes() -> None:
    scenario = load_scenario(bundled_scenario("imc002-demo.toml"), STUDY)
    # starved sites (no safety stock, no cover): visits are refused often
    starved = dataclasses.replace(
        scenario_levels(STUDY, scenario), trigger=0, target=1, cover_days=0
    )
    closed = Trial(_with_window_after(0), scenario, starved, 1).run().tally
    assert closed.visit_refusals > 0
    assert closed.visits_missed == closed.visit_refusals  # no day to try again: each is missed
    open_ = Trial(_with_window_after(STUDY.schedule.window_days_after), scenario, starved, 1)
    tally = open_.run().tally
    assert tally.visits_missed < tally.visit_refusals  # retried on the next days of the window
