"""One simulated trial keeps the books: every kit shipped is dispensed, expired or left."""

from __future__ import annotations

from pathlib import Path

import pytest

import app.simulation as simulation_package
from app.domain.study import load_study
from app.simulation.runner import scenario_levels
from app.simulation.scenario import load_scenario
from app.simulation.trial import Trial

STUDY = load_study()
SCENARIOS = Path(simulation_package.__file__).parent / "scenarios"


def bundled_scenario(name: str) -> Path:
    return SCENARIOS / name


@pytest.mark.parametrize("name", ["imc002-demo.toml", "imc002-20-sites.toml"])
@pytest.mark.parametrize("policy", ["blind", "per_content"])
def test_every_kit_is_accounted_for(name: str, policy: str) -> None:
    scenario = load_scenario(bundled_scenario(name), STUDY).model_copy(update={"policy": policy})
    for seed in (1, 2):
        record = Trial(STUDY, scenario, scenario_levels(STUDY, scenario), seed).run()
        t = record.tally
        for content in STUDY.contents:
            assert t.shipped[content] == (
                t.dispensed[content] + t.expired_at_sites[content] + t.left_at_sites[content]
            )
        assert len(record.subjects) == STUDY.total_cap
        assert t.visits_missed <= t.visits_due
        stages = [s.stage for s in record.subjects]
        assert stages.count("phase_ib") == sum(c.cap for c in STUDY.phase_ib.cohorts)
        # the allocation follows the study's lists: 3:1 in each phase Ib cohort of 8
        ib_active = sum(
            1 for s in record.subjects if s.stage == "phase_ib" and s.arm == STUDY.active_arm.code
        )
        assert ib_active == 18


def test_the_same_seed_gives_the_same_trial() -> None:
    scenario = load_scenario(bundled_scenario("imc002-demo.toml"), STUDY)
    levels = scenario_levels(STUDY, scenario)
    first, again = (Trial(STUDY, scenario, levels, 7).run() for _ in range(2))
    assert first.tally == again.tally
    assert [s.arm for s in first.subjects] == [s.arm for s in again.subjects]
    other = Trial(STUDY, scenario, levels, 8).run()
    assert [s.arm for s in other.subjects] != [s.arm for s in first.subjects]


def test_scenarios_ship_with_the_package() -> None:
    for name in ("imc002-demo.toml", "imc002-20-sites.toml"):
        assert Path(bundled_scenario(name)).is_file()


def test_a_stranded_tier_is_seen_on_the_subject_who_emptied_it() -> None:
    """The adversary's stranded-tier feature is fed: under the blind policy some subjects take
    the last kits of a content in a tier (stranding the rest); the per-content policy, which
    strands nothing, never shows it."""
    scenario = load_scenario(bundled_scenario("imc002-20-sites.toml"), STUDY)
    trial = Trial(STUDY, scenario, scenario_levels(STUDY, scenario), 3)
    record = trial.run()
    seen = sum(s.seen.stranded_tiers for s in record.subjects)
    assert seen > 0
    naive = scenario.model_copy(update={"policy": "per_content"})
    record = Trial(STUDY, naive, scenario_levels(STUDY, naive), 3).run()
    assert sum(s.seen.stranded_tiers for s in record.subjects) == 0  # nothing strands there
