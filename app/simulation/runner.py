"""Many trials of one scenario, on every CPU, summed into the figures a supply manager and a
blinding reviewer read."""

from __future__ import annotations

import gc
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field

from app.domain.resupply import Levels
from app.domain.study import PHASE_IB, PHASE_II, StudyDefinition
from app.simulation.adversary import Accuracy, Observations, StageLeak, collect, stage_leak
from app.simulation.kept import Kept
from app.simulation.scenario import Scenario
from app.simulation.trial import Trial


def scenario_levels(study: StudyDefinition, scenario: Scenario) -> Levels:
    """The levels a scenario runs with: its own, else the study's (lead times are per site)."""
    chosen = scenario.levels
    if chosen is None:
        return Levels(
            study.supply.resupply_trigger,
            study.supply.resupply_target,
            0,
            study.supply.cover_weeks * 7,
        )
    return Levels(chosen.trigger, chosen.target, 0, chosen.cover_weeks * 7)


@dataclass
class TrialFigures:
    """One trial's figures, small enough to send between processes."""

    missed: int
    due: int
    refusals: int
    lost: int
    shipments: int
    shipped: Counter[str]
    dispensed: Counter[str]
    expired: Counter[str]
    left: Counter[str]


@dataclass
class Chunk:
    figures: list[TrialFigures] = field(default_factory=list)
    observations: dict[str, Observations] = field(default_factory=dict)
    stock: dict[tuple[int, int, str], int] = field(default_factory=dict)
    """(site, week, content) -> stock summed over the chunk's trials."""
    refusal_weeks: Counter[tuple[int, int]] = field(default_factory=Counter)
    """(site, week) -> trials with a refusal at the site that week."""


def run_chunk(
    study: StudyDefinition, *, scenario: Scenario, levels: Levels, seeds: list[int]
) -> Chunk:
    chunk = Chunk()
    active = study.active_arm.code
    kept = Kept(study, scenario, levels)
    collecting = gc.isenabled()
    gc.disable()  # a trial makes no reference cycles worth a collection pass: about 3 % faster
    try:
        for seed in seeds:
            _run_one(study, scenario, levels, seed, kept, active, chunk)
    finally:
        if collecting:
            gc.enable()
    return chunk


def _run_one(
    study: StudyDefinition,
    scenario: Scenario,
    levels: Levels,
    seed: int,
    kept: Kept,
    active: str,
    chunk: Chunk,
) -> None:
    """One trial, its figures added to the chunk."""
    record = Trial(study, scenario, levels, seed, kept).run()
    t = record.tally
    chunk.figures.append(
        TrialFigures(
            t.visits_missed,
            t.visits_due,
            t.randomization_refusals + t.visit_refusals,
            t.subjects_lost,
            t.shipments,
            t.shipped,
            t.dispensed,
            t.expired_at_sites,
            t.left_at_sites,
        )
    )
    collect(chunk.observations, subjects=record.subjects, trial=seed, active=active)
    for week, sites in enumerate(record.stock_by_week):
        for site, stock in enumerate(sites):
            for content, n in stock.items():
                key = (site, week, content)
                chunk.stock[key] = chunk.stock.get(key, 0) + n
    for site, weeks in enumerate(record.refusal_weeks):
        for week in weeks:
            chunk.refusal_weeks[(site, week)] += 1


@dataclass
class Summary:
    """The figures of a simulation: the JSON output and the page show these."""

    scenario: str
    policy: str
    trials: int
    seed: int
    levels: dict[str, int]
    seconds: float
    p_any_missed: float
    p_any_missed_interval: tuple[float, float]
    missed_per_1000_visits: float
    visits_due: int
    refusals_per_trial: float
    subjects_lost_per_trial: float
    shipments_per_trial: float
    per_content: dict[str, dict[str, float]]
    overage_percent: float
    leak: dict[str, StageLeak]
    sites: list[str]
    contents: tuple[str, ...]
    stock_by_week: dict[str, dict[str, list[float]]]
    """Site -> content -> mean stock at the start of each week."""
    stockout_risk_by_week: dict[str, list[float]]
    """Site -> share of trials with a refusal at the site in each week."""
    figures: list[TrialFigures] = field(repr=False, default_factory=list)


def simulate(
    study: StudyDefinition,
    *,
    scenario: Scenario,
    trials: int,
    seed: int = 1,
    levels: Levels | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Run `trials` trials (seeds seed .. seed + trials - 1) and sum them up."""
    if trials < 1:
        raise ValueError("trials must be at least 1")
    chosen = levels or scenario_levels(study, scenario)
    started = time.perf_counter()
    seeds = list(range(seed, seed + trials))
    workers = min(workers or os.cpu_count() or 1, max(1, trials // 10))
    size = max(1, min(25, math.ceil(trials / (workers * 4))))
    batches = [seeds[i : i + size] for i in range(0, trials, size)]
    chunks: list[Chunk] = []
    if workers <= 1:
        for batch in batches:
            chunks.append(run_chunk(study, scenario=scenario, levels=chosen, seeds=batch))
            if progress:
                progress(len(batch))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(run_chunk, study, scenario=scenario, levels=chosen, seeds=batch): len(
                    batch
                )
                for batch in batches
            }
            for future in as_completed(futures):
                chunks.append(future.result())
                if progress:
                    progress(futures[future])
    return summarize(
        study,
        scenario=scenario,
        levels=chosen,
        seed=seed,
        chunks=chunks,
        seconds=time.perf_counter() - started,
    )


def summarize(
    study: StudyDefinition,
    *,
    scenario: Scenario,
    levels: Levels,
    seed: int,
    chunks: list[Chunk],
    seconds: float,
) -> Summary:
    figures = [f for c in chunks for f in c.figures]
    n = len(figures)
    contents = study.contents
    any_missed = sum(1 for f in figures if f.missed)
    due = sum(f.due for f in figures)
    per_content: dict[str, dict[str, float]] = {}
    for content in contents:
        shipped = sum(f.shipped[content] for f in figures)
        dispensed = sum(f.dispensed[content] for f in figures)
        expired = sum(f.expired[content] for f in figures)
        left = sum(f.left[content] for f in figures)
        per_content[content] = {
            "shipped": shipped / n,
            "dispensed": dispensed / n,
            "expired": expired / n,
            "wasted": (expired + left) / n,
        }
    shipped_all = sum(v["shipped"] for v in per_content.values())
    dispensed_all = sum(v["dispensed"] for v in per_content.values())
    observations: dict[str, Observations] = {}
    for chunk in chunks:
        for stage, seen in chunk.observations.items():
            mine = observations.setdefault(stage, Observations([], [], []))
            mine.x += seen.x
            mine.y += seen.y
            mine.trial += seen.trial
    active = study.active_arm.code
    shares = {
        PHASE_IB: study.phase_ib.ratio[active] / sum(study.phase_ib.ratio.values()),
        PHASE_II: study.phase_ii.ratio[active] / sum(study.phase_ii.ratio.values()),
    }
    leak: dict[str, StageLeak] = {
        stage: stage_leak(stage, observations[stage], shares[stage])
        for stage in (PHASE_IB, PHASE_II)
        if stage in observations
    }
    sites = [s.code for s in scenario.sites]
    weeks = 1 + max((w for c in chunks for (_, w, _) in c.stock), default=0)
    stock = {
        code: {
            content: [
                sum(c.stock.get((i, w, content), 0) for c in chunks) / n for w in range(weeks)
            ]
            for content in contents
        }
        for i, code in enumerate(sites)
    }
    risk = {
        code: [sum(c.refusal_weeks[(i, w)] for c in chunks) / n for w in range(weeks)]
        for i, code in enumerate(sites)
    }
    return Summary(
        scenario=scenario.name,
        policy=scenario.policy,
        trials=n,
        seed=seed,
        levels={
            "trigger": levels.trigger,
            "target": levels.target,
            "cover_weeks": levels.cover_days // 7,
        },
        seconds=seconds,
        p_any_missed=any_missed / n,
        p_any_missed_interval=Accuracy(any_missed, n).interval(),
        missed_per_1000_visits=1000 * sum(f.missed for f in figures) / max(due, 1),
        visits_due=due,
        refusals_per_trial=sum(f.refusals for f in figures) / n,
        subjects_lost_per_trial=sum(f.lost for f in figures) / n,
        shipments_per_trial=sum(f.shipments for f in figures) / n,
        per_content=per_content,
        overage_percent=100 * (shipped_all - dispensed_all) / max(dispensed_all, 1),
        leak=leak,
        sites=sites,
        contents=contents,
        stock_by_week=stock,
        stockout_risk_by_week=risk,
        figures=figures,
    )
