"""The simulation use cases (app/services/simulation.py), no database: bundled and uploaded
scenarios load and agree, every bad scenario or run is a 422 `validation_error` naming the field
and the bad key, and a run of a few trials gives a summary whose figures hang together (and the
same figures again from the same seed)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from app.domain.errors import DomainError, InvalidInput
from app.domain.study import load_study
from app.services import simulation

STUDY = load_study()
SCENARIOS = Path(simulation.__file__).parent.parent / "simulation" / "scenarios"
DEMO_TEXT = (SCENARIOS / "imc002-demo.toml").read_text("utf-8")
TRIALS = 3


def refusal(field: str, **kwargs: Any) -> str:
    """The message of the 422 refusal of `load(**kwargs)`, which must name `field`."""
    with pytest.raises(DomainError) as caught:
        simulation.load(study=STUDY, **kwargs)
    exc = caught.value
    assert (type(exc), exc.code) == (InvalidInput, "validation_error"), exc.detail
    assert exc.extra["errors"] == [{"field": field, "message": exc.detail}]
    return exc.detail


def changed(old: str, new: str) -> str:
    """The demo scenario with one line changed."""
    assert DEMO_TEXT.count(old) == 1, old
    return DEMO_TEXT.replace(old, new)


@pytest.fixture(scope="module")
def summary() -> simulation.Summary:
    scenario = simulation.load(study=STUDY, name=simulation.DEFAULT_SCENARIO)
    return simulation.run(study=STUDY, scenario=scenario, trials=TRIALS, seed=7)


def test_bundled_scenarios_are_listed_and_load() -> None:
    names = simulation.scenario_names()
    assert simulation.DEFAULT_SCENARIO in names and "imc002-20-sites" in names
    assert names == sorted(names)
    titles = {s.name: s.title for s in simulation.bundled_scenarios()}
    assert list(titles) == names
    for name in names:
        assert simulation.load(study=STUDY, name=name).name == titles[name]


def test_an_uploaded_scenario_is_the_bundled_one_read_from_its_text() -> None:
    uploaded = simulation.load(study=STUDY, text=DEMO_TEXT)
    assert uploaded == simulation.load(study=STUDY, name=simulation.DEFAULT_SCENARIO)
    assert [s.code for s in uploaded.sites] == ["DE01", "DE02", "US01"]
    path = simulation.load(study=STUDY, path=SCENARIOS / "imc002-demo.toml")
    assert path == uploaded


def test_bad_scenarios_are_refused_naming_the_key() -> None:
    unknown = refusal("scenario_toml", text=DEMO_TEXT + "\nrecruitment_boost = 2\n")
    assert "recruitment_boost: Extra inputs are not permitted" in unknown
    negative = refusal(
        "scenario_toml",
        text=changed(
            "subjects_per_week = 0.8\nlead_days = 7", "subjects_per_week = -0.8\nlead_days = 7"
        ),
    )
    assert "sites.2.subjects_per_week" in negative and "greater than or equal to 0" in negative
    rate = refusal(
        "scenario_toml", text=changed("screen_fail_rate = 0.25", "screen_fail_rate = -1")
    )
    assert "screen_fail_rate" in rate
    # within the model's 120 days, but longer than the forecast horizon (cover + 28 days)
    days = STUDY.supply.cover_weeks * 7 + 28 + 1
    assert days <= 120
    lead = refusal("scenario_toml", text=changed("lead_days = 7", f"lead_days = {days}"))
    assert f"sites.US01.lead_days: {days} days is longer than the forecast horizon" in lead
    assert "not valid TOML" in refusal("scenario_toml", text="days = [1,")
    assert "empty" in refusal("scenario_toml", text="  \n")
    too_long = "# padding\n" * (simulation.MAX_SCENARIO_CHARS // 10 + 1) + DEMO_TEXT
    assert "longer than" in refusal("scenario_toml", text=too_long)


def test_only_bundled_names_and_one_source_are_accepted() -> None:
    for name in ("nope", "../studies/imc002", "imc002-demo.toml", ""):
        assert "Unknown scenario" in refusal("scenario", name=name)
    assert "Choose one scenario" in refusal("scenario")
    assert "Choose one scenario" in refusal("scenario", name="imc002-demo", text=DEMO_TEXT)


@pytest.mark.parametrize(
    ("trials", "seed", "field"),
    [(0, 1, "trials"), (201, 1, "trials"), (-3, 1, "trials"), (4, -1, "seed")],
)
def test_runs_out_of_range_are_refused(trials: int, seed: int, field: str) -> None:
    scenario = simulation.load(study=STUDY, name=simulation.DEFAULT_SCENARIO)
    with pytest.raises(DomainError) as caught:
        simulation.run(study=STUDY, scenario=scenario, trials=trials, seed=seed, max_trials=200)
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.extra["errors"][0]["field"] == field


def test_a_run_hangs_together(summary: simulation.Summary) -> None:
    assert summary.trials == TRIALS and len(summary.figures) == TRIALS and summary.seed == 7
    assert summary.contents == STUDY.contents
    for content in summary.contents:
        kits = summary.per_content[content]
        assert 0 <= kits["dispensed"] <= kits["shipped"], content
        assert 0 <= kits["expired"] <= kits["wasted"], content
    assert 0 <= summary.p_any_missed <= 1
    low, high = summary.p_any_missed_interval
    assert 0 <= low <= summary.p_any_missed <= high <= 1
    assert summary.visits_due > 0 and summary.missed_per_1000_visits >= 0
    sites = ["DE01", "DE02", "US01"]
    assert summary.sites == sites
    assert list(summary.stock_by_week) == sites and list(summary.stockout_risk_by_week) == sites
    weeks = len(summary.stockout_risk_by_week["DE01"])
    assert weeks > 52  # the trial runs for years
    for site in sites:
        assert set(summary.stock_by_week[site]) == set(summary.contents)
        for stock in summary.stock_by_week[site].values():
            assert len(stock) == weeks and min(stock) >= 0 and max(stock) > 0
        risks = summary.stockout_risk_by_week[site]
        assert len(risks) == weeks and all(0 <= r <= 1 for r in risks)
    for stage, leak in summary.leak.items():
        assert 0.5 <= leak.prior <= 1 and leak.subjects > 0, stage
        assert 0 <= leak.classifier.value <= 1


def test_the_downloads_agree_and_the_seed_reproduces_the_run(
    summary: simulation.Summary,
) -> None:
    figures = simulation.as_json(summary)
    rows = list(csv.DictReader(io.StringIO(simulation.as_csv(summary))))
    assert figures["trials"] == TRIALS == len({r["trial"] for r in rows})
    assert len(rows) == TRIALS * len(summary.contents)
    assert {r["trial"] for r in rows} == {"7", "8", "9"}
    for content in summary.contents:
        shipped = sum(int(r["shipped"]) for r in rows if r["content"] == content)
        assert figures["kits_per_trial"][content]["shipped"] == round(shipped / TRIALS, 1)
    assert "P(any missed dose)" in simulation.as_text(summary)
    again = simulation.run(
        study=STUDY,
        scenario=simulation.load(study=STUDY, text=DEMO_TEXT),
        trials=TRIALS,
        seed=7,
    )
    assert simulation.as_csv(again) == simulation.as_csv(summary)
    figures.pop("seconds")
    assert {k: v for k, v in simulation.as_json(again).items() if k != "seconds"} == figures
