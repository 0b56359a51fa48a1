"""The shipped IMC-002 definition matches its documented parameters; broken ones are refused."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from app.domain.study import (
    NO_STRATUM,
    PHASE_IB,
    PHASE_II,
    StudyDefinitionError,
    load_study,
    parse_study,
)

SHIPPED_TEXT = resources.files("app.studies").joinpath("imc002.toml").read_text("utf-8")


def shipped_data() -> dict[str, Any]:
    """A fresh, mutable copy of the shipped definition's parsed TOML."""
    return copy.deepcopy(tomllib.loads(SHIPPED_TEXT))


# --- the shipped definition --------------------------------------------------------------------


def test_shipped_definition_identity() -> None:
    study = load_study()
    assert study.code == "IMC-002"
    assert study.registry_id == "NCT06535412"
    assert [a.code for a in study.arms] == ["IMC002", "PLACEBO"]
    assert study.active_arm.code == "IMC002"
    assert study.arm("PLACEBO").active is False


def test_phase_ib_cohorts_match_design() -> None:
    phase_ib = load_study().phase_ib
    assert [(c.code, c.dose_mg_per_kg, c.cap) for c in phase_ib.cohorts] == [
        ("C1", Decimal("0.8"), 8),
        ("C2", Decimal("1.2"), 8),
        ("C3", Decimal("1.6"), 8),
    ]
    assert phase_ib.ratio == {"IMC002": 3, "PLACEBO": 1}
    assert set(phase_ib.block_sizes) == {4}


def test_phase_ii_matches_design() -> None:
    phase_ii = load_study().phase_ii
    assert phase_ii.cap == 194
    assert phase_ii.ratio == {"IMC002": 1, "PLACEBO": 1}
    assert set(phase_ii.block_sizes) == {4, 6}
    factors = {(f.field, f.cutoff) for f in phase_ii.strata_factors}
    assert factors == {
        ("sledai_2k_score", Decimal("10")),
        ("prednisone_equivalent_mg_per_day", Decimal("10")),
    }
    strata = phase_ii.strata()
    assert len(strata) == 4 == len(set(strata))
    assert strata == (
        "SLEDAI<10/PRED<10",
        "SLEDAI<10/PRED>=10",
        "SLEDAI>=10/PRED<10",
        "SLEDAI>=10/PRED>=10",
    )


def test_totals_weight_and_drug_match_design() -> None:
    study = load_study()
    assert study.total_cap == 218
    assert sum(c.cap for c in study.phase_ib.cohorts) + study.phase_ii.cap == 218
    assert (study.weight.min_kg, study.weight.max_kg) == (Decimal("30"), Decimal("200"))
    assert study.drug.vial_strength_mg == Decimal("100")
    assert study.drug.vial_volume_ml == Decimal("10")
    assert study.drug.concentration_mg_per_ml == Decimal("10")


def test_eligibility_rules_match_design() -> None:
    rules = load_study().eligibility
    assert rules.min_weeks_since_diagnosis == 12
    assert rules.min_sledai_2k == 6
    assert (rules.min_bilag_a, rules.min_bilag_b) == (1, 2)
    assert set(rules.exclusions) == {
        "active_or_unstable_neuropsychiatric_sle",
        "active_or_unstable_lupus_nephritis",
        "other_autoimmune_disease",
        "uncontrolled_medical_condition",
        "active_severe_infection",
        "malignancy_within_5_years",
    }


def test_scopes_one_list_per_cohort_and_one_for_phase_ii() -> None:
    study = load_study()
    scopes = study.scopes()
    assert [(s.code, s.stage, s.strata, s.cap) for s in scopes[:3]] == [
        ("C1", PHASE_IB, (NO_STRATUM,), 8),
        ("C2", PHASE_IB, (NO_STRATUM,), 8),
        ("C3", PHASE_IB, (NO_STRATUM,), 8),
    ]
    p2 = scopes[3]
    assert (p2.code, p2.stage, p2.cap) == ("P2", PHASE_II, 194)
    assert p2.strata == study.phase_ii.strata()
    assert study.scope("C2") == scopes[1]
    with pytest.raises(KeyError):
        study.scope("C4")


def test_parsing_the_toml_dict_equals_loading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(SHIPPED_TEXT, "utf-8")
    assert parse_study(shipped_data()) == load_study() == load_study(path)


def test_fingerprint_is_stable_and_sensitive() -> None:
    base = parse_study(shipped_data())
    assert base.fingerprint() == load_study().fingerprint()
    data = shipped_data()
    data["phase_ii"]["block_sizes"] = [6, 4]
    assert parse_study(data).fingerprint() != base.fingerprint()


# --- broken definitions ------------------------------------------------------------------------


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation that sets data[a][b][...] = value for path "a.b..." (ints index lists)."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _append_exclusion(data: dict[str, Any]) -> None:
    data["eligibility"]["exclusions"].append("pregnancy")


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    # (id, mutation, fragments the error message must contain)
    (
        "phase_ib ratio does not divide a block size",
        _set("phase_ib.block_sizes", [6]),
        ["phase_ib", "block_sizes", "6 is not a positive multiple of the ratio total 4"],
    ),
    (
        "phase_ii ratio does not divide a block size",
        _set("phase_ii.block_sizes", [4, 5]),
        ["phase_ii", "block_sizes", "5"],
    ),
    (
        "unknown stratification factor field",
        _set("phase_ii.strata_factors.1.field", "steroid_dose"),
        ["phase_ii.strata_factors.1.field", "unknown stratification factor 'steroid_dose'"],
    ),
    (
        "two cohorts on the same dose level",
        _set("phase_ib.cohorts.1.dose_mg_per_kg", "0.8"),
        ["phase_ib", "cohorts", "overlap"],
    ),
    (
        "two cohorts on the same dose level written differently",
        _set("phase_ib.cohorts.1.dose_mg_per_kg", "0.80"),
        ["phase_ib", "cohorts", "overlap"],
    ),
    (
        "duplicate cohort codes",
        _set("phase_ib.cohorts.2.code", "C1"),
        ["phase_ib", "cohorts", "duplicate cohort code"],
    ),
    (
        "negative cohort cap",
        _set("phase_ib.cohorts.0.cap", -1),
        ["phase_ib.cohorts.0.cap"],
    ),
    (
        "negative phase II cap",
        _set("phase_ii.cap", -2),
        ["phase_ii.cap"],
    ),
    (
        "total_cap above the sum of caps",
        _set("total_cap", 219),
        ["total_cap", "219", "218"],
    ),
    (
        "total_cap below the sum of caps",
        _set("phase_ii.cap", 190),
        ["total_cap", "218", "214"],
    ),
    (
        "ratio naming an unknown arm",
        _set("phase_ii.ratio", {"IMC002": 1, "IMC003": 1}),
        ["phase_ii.ratio", "IMC003"],
    ),
    (
        "ratio missing a study arm",
        _set("phase_ib.ratio", {"IMC002": 4}),
        ["phase_ib.ratio", "PLACEBO"],
    ),
    (
        "unknown exclusion",
        _append_exclusion,
        ["eligibility.exclusions", "pregnancy"],
    ),
    (
        "cohort dose levels falling",
        _set("phase_ib.cohorts.2.dose_mg_per_kg", "1.0"),
        ["phase_ib", "cohorts", "rise"],
    ),
    (
        "zero in a ratio",
        _set("phase_ii.ratio", {"IMC002": 2, "PLACEBO": 0}),
        ["phase_ii", "ratio"],
    ),
]


@pytest.mark.parametrize(
    ("mutate", "fragments"), [(m, f) for _, m, f in BROKEN], ids=[i for i, _, _ in BROKEN]
)
def test_broken_definition_refused_naming_the_field(
    mutate: Callable[[dict[str, Any]], None], fragments: list[str]
) -> None:
    data = shipped_data()
    mutate(data)
    with pytest.raises(StudyDefinitionError) as info:
        parse_study(data)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message


def test_every_bad_field_is_named() -> None:
    data = shipped_data()
    data["phase_ib"]["cohorts"][0]["cap"] = -1
    data["eligibility"]["exclusions"].append("pregnancy")
    data["weight"]["min_kg"] = "heavy"
    with pytest.raises(StudyDefinitionError) as info:
        parse_study(data)
    message = str(info.value)
    for field in ("phase_ib.cohorts.0.cap", "eligibility.exclusions", "weight.min_kg"):
        assert field in message, message


def test_unknown_key_refused() -> None:
    data = shipped_data()
    data["phase_ii"]["blocksizes"] = [4]
    with pytest.raises(StudyDefinitionError, match=r"phase_ii\.blocksizes"):
        parse_study(data)


def test_invalid_toml_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(SHIPPED_TEXT.replace('code = "C2"', 'code = "C2'), "utf-8")
    with pytest.raises(StudyDefinitionError, match="not valid TOML"):
        load_study(path)


def test_valid_toml_with_a_broken_definition_refused(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(SHIPPED_TEXT.replace("total_cap = 218", "total_cap = 200"), "utf-8")
    with pytest.raises(StudyDefinitionError, match="total_cap"):
        load_study(path)


def test_the_treatment_label_names_the_dose_of_the_active_arm_only() -> None:
    study = load_study()
    active = next(a for a in study.arms if a.active)
    placebo = next(a for a in study.arms if not a.active)
    assert study.treatment_label(active.code, Decimal("1.2")) == f"{active.name} 1.2 mg/kg"
    assert study.treatment_label(placebo.code, Decimal("1.2")) == placebo.name
