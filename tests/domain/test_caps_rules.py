"""Properties of the cap rules, study versions and file modes (pure, hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import caps, study_versions
from app.domain.environment import Mode, WrongEnvironment, accept_file, file_mode, mark_file
from app.domain.study import load_study

STATUSES = ("planned", "open", "closed")


@st.composite
def scopes(draw: st.DrawFn) -> list[caps.ScopeCap]:
    states = []
    for code in ("C1", "C2", "C3", "P2"):
        cap = draw(st.integers(0, 200))
        randomized = draw(st.integers(0, cap))
        states.append(caps.ScopeCap(code, code, cap, randomized, draw(st.sampled_from(STATUSES))))
    return states


@given(scopes(), st.dictionaries(st.sampled_from(("C1", "C2", "C3", "P2")), st.integers(-5, 300)))
def test_planned_caps_never_fall_below_randomized_nor_pass_the_target(
    current: list[caps.ScopeCap], asked: dict[str, int]
) -> None:
    target = 218
    try:
        planned = caps.plan_caps(current, asked, target=target)
    except caps.CapRuleError as exc:
        assert exc.code in {
            "invalid_cap",
            "cap_below_randomized",
            "cohort_closed",
            "over_target",
        } | {"no_change"}
        return
    assert sum(planned.values()) <= target
    for state in current:
        assert planned[state.scope] >= state.randomized
        if state.status == "closed":
            assert planned[state.scope] <= state.cap
    assert planned != {s.scope: s.cap for s in current}


@given(scopes(), st.integers(1, 50))
def test_a_move_keeps_the_total_and_takes_only_unused_places_of_a_closed_cohort(
    current: list[caps.ScopeCap], places: int
) -> None:
    source = current[2]
    try:
        moved = caps.move_unused(current, source="C3", to="P2", places=places)
    except caps.CapRuleError as exc:
        assert source.status != "closed" or places > source.unused
        assert exc.code in ("cohort_not_closed", "not_enough_unused")
        return
    assert source.status == "closed" and places <= source.unused
    assert moved["C3"] + moved["P2"] == source.cap + current[3].cap
    assert moved["C3"] >= source.randomized


@given(
    st.dictionaries(st.sampled_from(("C1", "P2")), st.integers(0, 300), min_size=2),
    st.integers(-20, 20),
)
def test_a_new_version_changes_the_caps_in_force_by_exactly_its_own_change(
    effective: dict[str, int], delta: int
) -> None:
    old = {"C1": 8, "P2": 194}
    new = {"C1": 8, "P2": 194 + delta}
    carried = caps.carry_caps(effective, old=old, new=new)
    assert carried["C1"] == effective["C1"]
    assert carried["P2"] - effective["P2"] == delta


@given(
    st.lists(st.integers(0, 1000), min_size=1, max_size=6, unique=True),
    st.integers(-10, 1100),
)
def test_the_version_in_effect_is_the_newest_in_effect_by_then(
    offsets: list[int], day: int
) -> None:
    start = date(2026, 1, 1)
    offsets = sorted(offsets)
    versions = [(n, start + timedelta(days=o)) for n, o in enumerate(offsets, start=1)]
    chosen = study_versions.version_on(versions, start + timedelta(days=day))
    in_effect = [n for n, d in versions if d <= start + timedelta(days=day)]
    assert chosen == (max(in_effect) if in_effect else 1)


@given(st.integers(-30, 30))
def test_a_version_never_takes_effect_before_the_latest_act(days: int) -> None:
    act = date(2026, 6, 1)
    effective = act + timedelta(days=days)
    try:
        study_versions.check_effective_date(
            effective, latest_act=act, previous_effective=date(2026, 1, 1)
        )
    except study_versions.VersionRuleError as exc:
        assert exc.code == "changes_the_past" and effective < act
    else:
        assert effective >= act


def test_an_amendment_may_change_caps_but_not_what_the_lists_depend_on() -> None:
    study = load_study()
    raised = study.model_copy(
        update={"total_cap": 230, "phase_ii": study.phase_ii.model_copy(update={"cap": 206})}
    )
    assert study_versions.check_amendment(study, raised) == ["total_cap", "phase_ii"]
    reblocked = study.model_copy(
        update={"phase_ii": study.phase_ii.model_copy(update={"block_sizes": (4,)})}
    )
    with pytest.raises(study_versions.VersionRuleError, match="phase_ii"):
        study_versions.check_amendment(study, reblocked)


@given(st.text(max_size=200), st.sampled_from(list(Mode)))
def test_a_file_is_accepted_by_the_database_of_its_own_mode_only(text: str, mode: Mode) -> None:
    marked = mark_file(mode, text)
    if mode == Mode.PRODUCTION and file_mode(text)[0] == Mode.TRAINING:
        return  # a text that happens to start with the marker line is a training file
    assert accept_file(mode, marked, what="kit list") == text
    other = Mode.PRODUCTION if mode == Mode.TRAINING else Mode.TRAINING
    with pytest.raises(WrongEnvironment):
        accept_file(other, marked, what="kit list")
