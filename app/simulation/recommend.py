"""Recommended supply levels: the least overage that meets a risk target, found by simulation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.domain.resupply import Levels
from app.domain.study import StudyDefinition
from app.simulation.runner import Summary, simulate
from app.simulation.scenario import Scenario

COVER_WEEKS = (4, 6, 8, 12)
TRIGGERS = (2, 4)
TARGETS = (4, 6, 8, 12, 16, 24, 32)


@dataclass(frozen=True)
class Candidate:
    levels: Levels
    summary: Summary

    @property
    def p_any_missed(self) -> float:
        return self.summary.p_any_missed

    @property
    def overage_percent(self) -> float:
        return self.summary.overage_percent


@dataclass(frozen=True)
class Recommendation:
    target_p_any_missed: float
    best: Candidate | None
    tried: list[Candidate]


def recommend(
    study: StudyDefinition,
    *,
    scenario: Scenario,
    max_p_any_missed: float,
    trials: int,
    seed: int = 1,
    covers: Sequence[int] = COVER_WEEKS,
    triggers: Sequence[int] = TRIGGERS,
    targets: Sequence[int] = TARGETS,
    progress: Callable[[Levels, Summary], None] | None = None,
) -> Recommendation:
    """For every cover and trigger, raise the target until P(any missed dose) per trial falls
    below `max_p_any_missed`; of the levels that meet it, the one with the least overage. Every
    candidate runs the same seeds, so they differ by their levels only."""
    if not 0 < max_p_any_missed < 1:
        raise ValueError("the risk target must be a probability between 0 and 1")
    tried: list[Candidate] = []
    for cover in covers:
        for trigger in triggers:
            for target in (t for t in targets if t >= trigger):
                levels = Levels(trigger, target, 0, cover * 7)
                summary = simulate(
                    study, scenario=scenario, trials=trials, seed=seed, levels=levels
                )
                tried.append(Candidate(levels, summary))
                if progress:
                    progress(levels, summary)
                if summary.p_any_missed < max_p_any_missed:
                    break
    meeting = [c for c in tried if c.p_any_missed < max_p_any_missed]
    best = min(meeting, key=lambda c: (c.overage_percent, c.p_any_missed), default=None)
    return Recommendation(max_p_any_missed, best, tried)


def table(recommendation: Recommendation) -> str:
    """The trade-off, one line per levels tried."""
    lines = [
        "trigger target cover_weeks  P(any missed)  missed/1000  overage %  shipments",
    ]
    for c in recommendation.tried:
        mark = " <- recommended" if c is recommendation.best else ""
        lines.append(
            f"{c.levels.trigger:>7} {c.levels.target:>6} {c.levels.cover_days // 7:>11}  "
            f"{c.p_any_missed:>13.3f}  {c.summary.missed_per_1000_visits:>11.2f}  "
            f"{c.overage_percent:>9.1f}  {c.summary.shipments_per_trial:>9.1f}{mark}"
        )
    if recommendation.best is None:
        lines.append(
            f"No levels tried meet P(any missed dose) < {recommendation.target_p_any_missed}."
        )
    return "\n".join(lines)
