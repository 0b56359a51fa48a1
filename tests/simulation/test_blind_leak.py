"""The bounds a simulation keeps in CI: no adversary beats the prior by more than a point (plus
the sampling error of a small run), and the demo's levels keep doses from being missed. The same
adversary, on the naive per-content policy, does find the arms: the measure can fail."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import app.simulation as simulation_package
from app.domain.study import load_study
from app.simulation.adversary import Accuracy, StageLeak
from app.simulation.runner import Summary, simulate
from app.simulation.scenario import SupplyLevels, load_scenario

STUDY = load_study()
SCENARIOS = Path(simulation_package.__file__).parent / "scenarios"
TRIALS = 40
LEAK_BOUND = 0.01
"""The accepted excess of the adversary's accuracy over the prior."""
MISSED_PER_1000_BOUND = 0.5
P_ANY_MISSED_BOUND = 0.05
"""Small-run bounds; the 1,000-trial figures (P(any missed dose) < 1 %) are in the benchmark."""

_runs: dict[tuple[str, str], Summary] = {}


def _run(name: str, policy: str, levels: SupplyLevels | None = None) -> Summary:
    if (name, policy) not in _runs:
        scenario = load_scenario(SCENARIOS / name, STUDY).model_copy(update={"policy": policy})
        if levels is not None:
            scenario = scenario.model_copy(update={"levels": levels})
        _runs[(name, policy)] = simulate(STUDY, scenario=scenario, trials=TRIALS, seed=1)
    return _runs[(name, policy)]


def _bound(leak: StageLeak, accuracy: Accuracy) -> float:
    """The prior plus a point, plus two standard errors of an accuracy over this many subjects."""
    sampling = 1.96 * math.sqrt(leak.prior * (1 - leak.prior) / max(accuracy.n, 1))
    return leak.prior + LEAK_BOUND + sampling


@pytest.mark.parametrize("name", ["imc002-demo.toml", "imc002-20-sites.toml"])
def test_no_adversary_beats_the_prior(name: str) -> None:
    summary = _run(name, "blind")
    assert set(summary.leak) == {"phase_ib", "phase_ii"}
    for stage, leak in summary.leak.items():
        assert leak.classifier.n == leak.subjects > 0
        assert leak.classifier.value <= _bound(leak, leak.classifier), (stage, leak.classifier)
        for strategy, accuracy in leak.strategies.items():
            assert accuracy.value <= _bound(leak, accuracy), (stage, strategy, accuracy)


@pytest.mark.parametrize("name", ["imc002-demo.toml", "imc002-20-sites.toml"])
def test_the_levels_keep_doses_from_being_missed(name: str) -> None:
    summary = _run(name, "blind")
    assert summary.visits_due > TRIALS * STUDY.total_cap * 5
    assert summary.missed_per_1000_visits <= MISSED_PER_1000_BOUND, summary.missed_per_1000_visits
    assert summary.p_any_missed <= P_ANY_MISSED_BOUND, summary.p_any_missed


def test_the_adversary_finds_the_arms_when_the_blind_leaks() -> None:
    """The control: the service's former policy (first expiry first per content, refusals per
    content, shipments of equal numbers, trigger 2 and target 6 with no cover beyond the lead
    time) leaks, and the same adversary, scored the same way, reads the arms above the bound."""
    former = SupplyLevels(trigger=2, target=6, cover_weeks=0)
    summary = _run("imc002-demo.toml", "per_content", former)
    for stage, leak in summary.leak.items():
        assert leak.best.value > _bound(leak, leak.best) + 0.02, (stage, leak.best)
