"""`irt simulate`: Monte Carlo simulation of whole trials, and recommended supply levels."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from app.domain.errors import DomainError
from app.domain.resupply import Levels
from app.domain.study import StudyDefinition, load_study
from app.services import simulation
from app.services.simulation import Scenario, Summary

T = TypeVar("T")


def _refused(work: Callable[[], T]) -> T:
    """The use case's answer; a refusal is printed (the message names the bad key) -> exit 2."""
    try:
        return work()
    except DomainError as exc:
        typer.secho(exc.detail, fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


def _load(scenario: Path | None, study_file: Path | None) -> tuple[StudyDefinition, Scenario]:
    """The study and the scenario to run; without --scenario, the demo's own."""
    study = load_study(study_file)
    if scenario is None:
        return study, _refused(
            lambda: simulation.load(study=study, name=simulation.DEFAULT_SCENARIO)
        )
    return study, _refused(lambda: simulation.load(study=study, path=scenario))


def simulate_command(
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario TOML; default: the demo's three sites."),
    ] = None,
    trials: Annotated[int, typer.Option(min=1, max=100_000, help="Trials to simulate.")] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="First trial's seed.")] = 1,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON here.")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write one row per trial and content here.")
    ] = None,
    recommend_levels: Annotated[
        bool,
        typer.Option(
            "--recommend", help="Search the levels that meet --max-p-missed at least overage."
        ),
    ] = False,
    max_p_missed: Annotated[
        float,
        typer.Option(min=0.0001, max=0.5, help="Risk target: P(any missed dose) per trial."),
    ] = 0.01,
    study_file: Annotated[
        Path | None, typer.Option("--study", help="Study definition TOML; default IMC-002.")
    ] = None,
) -> None:
    """Simulate whole trials through the service's own allocation, dosing, dispensing and
    resupply rules: missed doses, kits shipped, wasted and the overage, and the blind-leak
    figure (how well an adversary who sees what blinded roles see guesses each arm)."""
    for out in (json_out, csv_out):
        if out is not None and not out.parent.is_dir():
            typer.secho(f"No such folder for {out}: nothing was simulated.", fg="red", err=True)
            raise typer.Exit(2)
    study, chosen = _load(scenario, study_file)
    if recommend_levels:
        _recommend(study, scenario=chosen, trials=trials, seed=seed, max_p=max_p_missed)
        return
    with typer.progressbar(length=trials, label=f"Simulating {trials} trials") as bar:
        summary = _refused(
            lambda: simulation.run(
                study=study, scenario=chosen, trials=trials, seed=seed, progress=bar.update
            )
        )
    _write(summary, json_out, csv_out)
    typer.echo(simulation.as_text(summary))


def _write(summary: Summary, json_out: Path | None, csv_out: Path | None) -> None:
    """The figures as files for further analysis; the text summary always goes to stdout."""
    if json_out is not None:
        json_out.write_text(json.dumps(simulation.as_json(summary), indent=1), "utf-8")
    if csv_out is not None:
        csv_out.write_text(simulation.as_csv(summary), "utf-8")


def trials_to_show(max_p: float) -> int:
    """Trials without a miss whose 95 % upper bound on P(any missed dose) is below max_p
    (the rule of three: 3 / n)."""
    return math.ceil(3 / max_p)


def _recommend(
    study: StudyDefinition, *, scenario: Scenario, trials: int, seed: int, max_p: float
) -> None:
    """Search levels, showing each tried one on stderr; exit 1 when none meets the target."""

    def shown(levels: Levels, summary: Summary) -> None:
        typer.echo(
            f"  trigger {levels.trigger}, target {levels.target}, cover "
            f"{levels.cover_days // 7} weeks: P(any missed) {summary.p_any_missed:.3f}, "
            f"overage {summary.overage_percent:.1f} %",
            err=True,
        )

    typer.echo(f"Searching levels for P(any missed dose) < {max_p}, {trials} trials each", err=True)
    found = _refused(
        lambda: simulation.recommend_levels(
            study=study,
            scenario=scenario,
            max_p_missed=max_p,
            trials=trials,
            seed=seed,
            progress=shown,
        )
    )
    typer.echo(simulation.recommendation_table(found))
    if trials < trials_to_show(max_p):
        typer.secho(
            f"{trials} trials rank the levels but cannot show P(any missed dose) < {max_p} with "
            f"95 % confidence (that takes {trials_to_show(max_p)} trials without a miss): run "
            "the chosen levels again with more trials.",
            fg=typer.colors.YELLOW,
            err=True,
        )
    if found.best is None:
        typer.secho(
            "No levels in the search meet the risk target: raise the target, shorten lead "
            "times or add stock to the depots.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    best = found.best.levels
    typer.echo(
        f"\nRecommended: resupply_trigger = {best.trigger}, resupply_target = {best.target}, "
        f"cover_weeks = {best.cover_days // 7}"
    )
