"""Stage routing, caps, and the rules for opening/closing cohorts and the phase II dose."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.stages import (
    CohortStatus,
    StageClosed,
    StageRuleError,
    Target,
    check_caps,
    check_close,
    check_open,
    check_phase2_dose,
    route,
)
from app.domain.study import PHASE_IB, PHASE_II, PHASE_II_SCOPE, load_study

STUDY = load_study()
PL, OP, CL = CohortStatus.PLANNED, CohortStatus.OPEN, CohortStatus.CLOSED
CODES = ("C1", "C2", "C3")


def statuses(c1: CohortStatus = PL, c2: CohortStatus = PL, c3: CohortStatus = PL) -> dict:
    return {"C1": c1, "C2": c2, "C3": c3}


def refused(code: str, call: Callable[[], object]) -> StageRuleError:
    with pytest.raises(StageRuleError) as info:
        call()
    assert info.value.code == code
    return info.value


# --- route -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "cohort", "level"),
    [
        (statuses(OP, PL, PL), "C1", "0.8"),
        (statuses(CL, OP, PL), "C2", "1.2"),
        (statuses(CL, CL, OP), "C3", "1.6"),
    ],
)
def test_route_to_the_open_cohort(state: dict, cohort: str, level: str) -> None:
    target = route(STUDY, state, None)
    assert target == Target(cohort, PHASE_IB, cohort, Decimal(level), 8)


def test_open_cohort_wins_over_phase_ii() -> None:
    target = route(STUDY, statuses(CL, OP, PL), Decimal("0.8"))
    assert (target.scope, target.stage) == ("C2", PHASE_IB)


def test_route_to_phase_ii_once_the_dose_is_set() -> None:
    target = route(STUDY, statuses(CL, CL, CL), Decimal("1.2"))
    assert target == Target(PHASE_II_SCOPE, PHASE_II, None, Decimal("1.2"), 194)


@pytest.mark.parametrize("state", [statuses(), statuses(CL, PL, PL), statuses(CL, CL, CL), {}])
def test_route_closed_without_open_cohort_or_dose(state: dict) -> None:
    with pytest.raises(StageClosed) as info:
        route(STUDY, state, None)
    assert info.value.code == "stage_closed"
    assert isinstance(info.value, StageRuleError)


# --- caps --------------------------------------------------------------------------------------

C1 = Target("C1", PHASE_IB, "C1", Decimal("0.8"), 8)
P2 = Target(PHASE_II_SCOPE, PHASE_II, None, Decimal("1.2"), 194)


@pytest.mark.parametrize(
    ("target", "in_scope", "in_stage", "in_total"),
    [(C1, 7, 23, 217), (C1, 0, 0, 0), (P2, 193, 193, 217), (P2, 0, 0, 24)],
)
def test_below_every_cap_accepted(target: Target, in_scope: int, in_stage: int, in_total: int):
    check_caps(STUDY, target=target, in_scope=in_scope, in_stage=in_stage, in_total=in_total)


@pytest.mark.parametrize(
    ("target", "in_scope", "in_stage", "in_total", "what"),
    [
        (C1, 8, 16, 16, "cohort C1: 8 of 8"),  # cohort cap
        (C1, 9, 16, 16, "cohort C1: 9 of 8"),  # past the cohort cap
        (C1, 0, 24, 24, "phase Ib: 24 of 24"),  # stage cap (sum of cohort caps)
        (C1, 0, 0, 218, "the study: 218 of 218"),  # total cap
        (P2, 194, 194, 218, "phase II: 194 of 194"),
        (P2, 100, 100, 218, "the study: 218 of 218"),
    ],
)
def test_at_a_cap_refused_stage_full(
    target: Target, in_scope: int, in_stage: int, in_total: int, what: str
) -> None:
    error = refused(
        "stage_full",
        lambda: check_caps(
            STUDY, target=target, in_scope=in_scope, in_stage=in_stage, in_total=in_total
        ),
    )
    assert what in str(error)


@settings(max_examples=100, deadline=None)
@given(
    target=st.sampled_from([C1, P2]),
    in_scope=st.integers(0, 250),
    in_stage=st.integers(0, 250),
    in_total=st.integers(0, 250),
)
def test_caps_refuse_exactly_when_some_count_reaches_its_cap(
    target: Target, in_scope: int, in_stage: int, in_total: int
) -> None:
    stage_cap = 24 if target.stage == PHASE_IB else 194
    full = in_scope >= target.cap or in_stage >= stage_cap or in_total >= 218
    if full:
        refused(
            "stage_full",
            lambda: check_caps(
                STUDY, target=target, in_scope=in_scope, in_stage=in_stage, in_total=in_total
            ),
        )
    else:
        check_caps(STUDY, target=target, in_scope=in_scope, in_stage=in_stage, in_total=in_total)


# --- opening and closing cohorts ---------------------------------------------------------------


def test_happy_path_through_all_stages() -> None:
    state = statuses()
    for code in CODES:
        check_open(STUDY, code=code, statuses=state, phase2_dose=None)
        state[code] = OP
        check_close(code, state)
        state[code] = CL
    check_phase2_dose(STUDY, dose=Decimal("1.2"), statuses=state, current=None)


def test_first_cohort_opens_first() -> None:
    check_open(STUDY, code="C1", statuses=statuses(), phase2_dose=None)
    refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C2", statuses=statuses(), phase2_dose=None),
    )
    refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C3", statuses=statuses(), phase2_dose=None),
    )


def test_c2_only_after_c1_closed() -> None:
    error = refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C2", statuses=statuses(OP, PL, PL), phase2_dose=None),
    )
    assert "after cohort C1 is closed" in str(error)
    check_open(STUDY, code="C2", statuses=statuses(CL, PL, PL), phase2_dose=None)


def test_c3_needs_c1_and_c2_closed() -> None:
    refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C3", statuses=statuses(CL, OP, PL), phase2_dose=None),
    )
    refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C3", statuses=statuses(CL, PL, PL), phase2_dose=None),
    )
    check_open(STUDY, code="C3", statuses=statuses(CL, CL, PL), phase2_dose=None)


@pytest.mark.parametrize(
    "state", [statuses(OP, PL, PL), statuses(CL, OP, PL), statuses(CL, CL, OP)]
)
def test_one_open_at_a_time(state: dict) -> None:
    for code in CODES:
        refused(
            "invalid_stage_change",
            lambda code=code, state=state: check_open(
                STUDY, code=code, statuses=state, phase2_dose=None
            ),
        )


def test_open_or_closed_cohort_does_not_reopen() -> None:
    refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C1", statuses=statuses(OP, PL, PL), phase2_dose=None),
    )
    refused(
        "invalid_stage_change",
        lambda: check_open(STUDY, code="C1", statuses=statuses(CL, PL, PL), phase2_dose=None),
    )


def test_no_cohort_opens_after_phase_ii_started() -> None:
    refused(
        "invalid_stage_change",
        lambda: check_open(
            STUDY, code="C3", statuses=statuses(CL, CL, PL), phase2_dose=Decimal("0.8")
        ),
    )


def test_unknown_cohort_not_found() -> None:
    refused(
        "not_found", lambda: check_open(STUDY, code="C4", statuses=statuses(), phase2_dose=None)
    )
    refused(
        "not_found",
        lambda: check_open(STUDY, code=PHASE_II_SCOPE, statuses=statuses(), phase2_dose=None),
    )
    refused("not_found", lambda: check_close("C4", statuses()))


@pytest.mark.parametrize("status", [PL, CL])
def test_close_only_an_open_cohort(status: CohortStatus) -> None:
    refused("invalid_stage_change", lambda: check_close("C1", statuses(status, PL, PL)))


def test_close_the_open_cohort() -> None:
    check_close("C2", statuses(CL, OP, PL))


# --- the phase II dose -------------------------------------------------------------------------


def test_phase2_dose_recorded_once() -> None:
    check_phase2_dose(STUDY, dose=Decimal("0.8"), statuses=statuses(CL, CL, CL), current=None)
    error = refused(
        "invalid_stage_change",
        lambda: check_phase2_dose(
            STUDY, dose=Decimal("0.8"), statuses=statuses(CL, CL, CL), current=Decimal("0.8")
        ),
    )
    assert "already recorded" in str(error)


def test_phase2_dose_only_a_closed_cohort_level() -> None:
    state = statuses(CL, CL, PL)
    check_phase2_dose(STUDY, dose=Decimal("1.2"), statuses=state, current=None)
    check_phase2_dose(
        STUDY, dose=Decimal("1.20"), statuses=state, current=None
    )  # same level, other spelling
    for level in ("1.6", "1.0", "2.0", "0"):
        refused(
            "invalid_stage_change",
            lambda level=level, state=state: check_phase2_dose(
                STUDY, dose=Decimal(level), statuses=state, current=None
            ),
        )


def test_phase2_dose_refused_before_any_cohort_closed() -> None:
    error = refused(
        "invalid_stage_change",
        lambda: check_phase2_dose(STUDY, dose=Decimal("0.8"), statuses=statuses(), current=None),
    )
    assert "none is closed yet" in str(error)


def test_phase2_dose_refused_while_a_cohort_is_open() -> None:
    error = refused(
        "invalid_stage_change",
        lambda: check_phase2_dose(
            STUDY, dose=Decimal("0.8"), statuses=statuses(CL, OP, PL), current=None
        ),
    )
    assert "Close the open phase Ib cohort first" in str(error)


# --- any sequence of allowed changes keeps the stage invariants --------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("open"), st.sampled_from(CODES)),
        st.tuples(st.just("close"), st.sampled_from(CODES)),
        st.tuples(st.just("dose"), st.sampled_from(["0.8", "1.2", "1.6", "2.4"])),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(ops=operations)
def test_allowed_changes_keep_invariants(ops: list[tuple[str, str]]) -> None:
    state, dose = statuses(), None
    for op, arg in ops:
        recorded = dose
        try:
            if op == "open":
                check_open(STUDY, code=arg, statuses=state, phase2_dose=dose)
                state[arg] = OP
            elif op == "close":
                check_close(arg, state)
                state[arg] = CL
            else:
                check_phase2_dose(STUDY, dose=Decimal(arg), statuses=state, current=dose)
                dose = Decimal(arg)
        except StageRuleError as error:
            assert error.code == "invalid_stage_change"
        pattern = "".join({PL: "p", OP: "o", CL: "c"}[state[c]] for c in CODES)
        # Cohorts run in order, one at a time: closed ones, at most one open, then planned.
        assert pattern in {"ppp", "opp", "cpp", "cop", "ccp", "cco", "ccc"}
        if recorded is not None:
            assert dose == recorded  # recorded once, never changed
        if dose is not None:
            assert "o" not in pattern
            assert dose in {STUDY.cohort(c).dose_mg_per_kg for c in CODES if state[c] == CL}
            assert route(STUDY, state, dose).stage == PHASE_II
        elif "o" in pattern:
            assert route(STUDY, state, dose).cohort == CODES[pattern.index("o")]
        else:
            with pytest.raises(StageClosed):
                route(STUDY, state, dose)
