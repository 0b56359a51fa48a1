"""Simulation use cases: the bundled scenarios, a scenario loaded (bundled, uploaded or from a
file) and checked against the study, a run of many simulated trials, and its figures as JSON,
CSV and text. The CLI (`irt simulate`) and the page (/supply/simulation) call these.

Pure: no database, nothing of the real trial is read or changed. A simulated trial draws its own
subjects and allocations, so its figures (also per kit content) reveal nothing about the real
trial's arms. A refused input raises `validation_error` naming the field (`scenario`,
`scenario_toml`, `trials`, `seed`) with the scenario checker's message, which names every bad
key of the scenario.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from app.domain.errors import validation_error
from app.domain.resupply import Levels
from app.domain.study import StudyDefinition
from app.simulation import recommend as _recommend
from app.simulation import report
from app.simulation.recommend import Recommendation
from app.simulation.runner import Summary, simulate
from app.simulation.scenario import (
    Scenario,
    ScenarioError,
    load_scenario,
    scenario_from_text,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "MAX_SCENARIO_CHARS",
    "MAX_TRIALS",
    "MIN_TRIALS",
    "BundledScenario",
    "Recommendation",
    "Scenario",
    "Summary",
    "as_csv",
    "as_json",
    "as_text",
    "bundled_scenarios",
    "check_run",
    "load",
    "recommend_levels",
    "recommendation_table",
    "run",
    "scenario_names",
]

SCENARIO_PACKAGE = "app.simulation.scenarios"
DEFAULT_SCENARIO = "imc002-demo"
"""The demo's three sites supplied from one depot."""
MIN_TRIALS = 1
MAX_TRIALS = 100_000
MAX_SCENARIO_CHARS = 64 * 1024
"""An uploaded scenario is a few kilobytes; this bounds what the TOML parser is given."""


@dataclass(frozen=True)
class BundledScenario:
    name: str
    """The file's name without `.toml`: what `load(name=...)` takes."""
    title: str
    """The scenario's own `name`."""


def _bundled_files() -> dict[str, Path]:
    folder = resources.files(SCENARIO_PACKAGE)
    return {
        entry.name.removesuffix(".toml"): Path(str(entry))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    }


def scenario_names() -> list[str]:
    """The scenarios shipped with the package (app/simulation/scenarios), sorted."""
    return sorted(_bundled_files())


def bundled_scenarios() -> list[BundledScenario]:
    """Each bundled scenario with its title (read, not yet checked against the study)."""
    found = []
    for name, path in sorted(_bundled_files().items()):
        title = tomllib.loads(path.read_text("utf-8")).get("name")
        found.append(BundledScenario(name, title if isinstance(title, str) else name))
    return found


def load(
    *,
    study: StudyDefinition,
    name: str | None = None,
    text: str | None = None,
    path: Path | None = None,
) -> Scenario:
    """Exactly one of: a bundled scenario by `name` (field `scenario`), an uploaded TOML `text`
    (field `scenario_toml`) or a file at `path` (field `scenario`). Every problem (an unknown
    name or key, a negative rate, a lead time longer than the forecast horizon, levels the
    depots cannot meet) is a 422 `validation_error` with the checker's message."""
    given = [x for x in (name, text, path) if x is not None]
    if len(given) != 1:
        raise validation_error("scenario", "Choose one scenario: a bundled one or a file.")
    if text is not None:
        if not text.strip():
            raise validation_error("scenario_toml", "The scenario file is empty.")
        if len(text) > MAX_SCENARIO_CHARS:
            raise validation_error(
                "scenario_toml",
                f"The scenario file is longer than {MAX_SCENARIO_CHARS // 1024} KiB.",
            )
        try:
            return scenario_from_text(text, study)
        except ScenarioError as exc:
            raise validation_error("scenario_toml", str(exc)) from None
    if name is not None:
        files = _bundled_files()
        if name not in files:
            raise validation_error(
                "scenario",
                f"Unknown scenario {name!r}: choose one of {', '.join(sorted(files))}.",
            )
        path = files[name]
    assert path is not None
    try:
        return load_scenario(path, study)
    except ScenarioError as exc:
        raise validation_error("scenario", str(exc)) from None


def check_run(*, trials: int, seed: int, max_trials: int = MAX_TRIALS) -> None:
    """Refuse a number of trials outside 1 .. `max_trials` or a negative seed (422)."""
    if not MIN_TRIALS <= trials <= max_trials:
        raise validation_error(
            "trials", f"Enter a whole number of trials from {MIN_TRIALS} to {max_trials}."
        )
    if seed < 0:
        raise validation_error("seed", "Enter a whole number from 0 for the seed.")


def run(
    *,
    study: StudyDefinition,
    scenario: Scenario,
    trials: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    max_trials: int = MAX_TRIALS,
    workers: int | None = None,
) -> Summary:
    """Simulate `trials` trials (seeds `seed` .. `seed + trials - 1`, on every CPU unless
    `workers` says otherwise) and sum them up; the same seed gives the same figures.
    `progress` is called with the number of trials done since its last call."""
    check_run(trials=trials, seed=seed, max_trials=max_trials)
    return simulate(
        study, scenario=scenario, trials=trials, seed=seed, workers=workers, progress=progress
    )


def recommend_levels(
    *,
    study: StudyDefinition,
    scenario: Scenario,
    max_p_missed: float,
    trials: int,
    seed: int,
    progress: Callable[[Levels, Summary], None] | None = None,
) -> Recommendation:
    """The supply levels with the least overage whose P(any missed dose) per trial is below
    `max_p_missed`, searched by simulation (`best` is None when no levels tried meet it)."""
    check_run(trials=trials, seed=seed)
    if not 0 < max_p_missed < 1:
        raise validation_error("max_p_missed", "The risk target must be between 0 and 1.")
    return _recommend.recommend(
        study,
        scenario=scenario,
        max_p_any_missed=max_p_missed,
        trials=trials,
        seed=seed,
        progress=progress,
    )


def as_json(summary: Summary) -> dict[str, Any]:
    """The figures (all but the per-trial rows), as `irt simulate --json` writes them."""
    return report.summary_dict(summary)


def as_csv(summary: Summary) -> str:
    """One row per trial and kit content."""
    return report.trials_csv(summary)


def as_text(summary: Summary) -> str:
    """The figures a supply manager and a blinding reviewer read first."""
    return report.text(summary)


def recommendation_table(recommendation: Recommendation) -> str:
    """The levels tried, one line each, the recommended one marked."""
    return _recommend.table(recommendation)
