"""Bad scenarios are refused before any trial runs, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import app.simulation as simulation_package
from app.cli import app
from app.cli.simulation import trials_to_show
from app.domain.study import load_study
from app.simulation.scenario import ScenarioError, load_scenario

STUDY = load_study()
SCENARIOS = Path(simulation_package.__file__).parent / "scenarios"


def bundled_scenario(name: str) -> Path:
    return SCENARIOS / name


DEMO = bundled_scenario("imc002-demo.toml").read_text("utf-8")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("grace_days = 3", "grace_days = 3\nsurprise = 1"), "surprise"),
        (("screen_fail_rate = 0.25", "screen_fail_rate = -0.1"), "screen_fail_rate"),
        (("subjects_per_week = 1.0", "subjects_per_week = -2"), "subjects_per_week"),
        (("discontinuation_per_year = 0.15", "discontinuation_per_year = -1"), "discontinuation"),
        (("lead_days = 3", "lead_days = 90"), "lead_days"),
        (("kits_per_content = 500 }", "kits_per_content = 3 }"), "levels cannot be met"),
        (("expiry_day = 730,", "expiry_day = 50,"), "could ever be shipped"),
        (('depot = "DEPOT-EU"', 'depot = "NOWHERE"'), "unknown depot"),
        (("[weight]", "[weight]\nmedian_kg = 70"), "median_kg"),
        (('phase2_dose_mg_per_kg = "1.2"', 'phase2_dose_mg_per_kg = "9.9"'), "dose levels"),
    ],
)
def test_refused_naming_the_key(tmp_path: Path, change: tuple[str, str], named: str) -> None:
    old, new = change
    assert old in DEMO
    path = _write(tmp_path, DEMO.replace(old, new, 1))
    with pytest.raises(ScenarioError, match=named):
        load_scenario(path, STUDY)
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(path), "--trials", "1"])
    assert result.exit_code == 2
    assert named in result.output
    assert "Simulating" not in result.output


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(_write(tmp_path, "name = [unclosed"), STUDY)


def test_the_bundled_scenarios_load() -> None:
    for name in ("imc002-demo.toml", "imc002-20-sites.toml"):
        assert load_scenario(bundled_scenario(name), STUDY).sites


@pytest.mark.parametrize("option", ["--json", "--csv"])
def test_an_output_in_a_missing_folder_is_refused_before_any_trial(
    tmp_path: Path, option: str
) -> None:
    out = tmp_path / "no-such-folder" / "figures.out"
    result = CliRunner().invoke(app, ["simulate", "--trials", "1", option, str(out)])
    assert result.exit_code == 2
    assert "No such folder" in result.output
    assert "Simulating" not in result.output
    assert not out.parent.exists()


def test_trials_needed_to_show_a_risk_target_follow_the_rule_of_three() -> None:
    assert trials_to_show(0.01) == 300
    assert trials_to_show(0.05) == 60
