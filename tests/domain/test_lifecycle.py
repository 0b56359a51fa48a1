"""The subject lifecycle's rules (app/domain/lifecycle.py): only the allowed moves happen, only
a randomized subject is on treatment, effective dates are bounded, and corrections undo the
acts newest first, bringing back exactly the state before each."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import lifecycle
from app.domain.errors import Conflict, InvalidInput
from app.domain.lifecycle import Act, Change, Facts, SubjectStatus

STATUSES = st.sampled_from(list(SubjectStatus))
ACTS = st.sampled_from(list(Act))
EXPECTED = {
    (SubjectStatus.REGISTERED, Act.SCREEN_FAIL): SubjectStatus.SCREEN_FAILED,
    (SubjectStatus.REGISTERED, Act.WITHDRAW): SubjectStatus.WITHDRAWN,
    (SubjectStatus.RANDOMIZED, Act.DISCONTINUE): SubjectStatus.DISCONTINUED,
    (SubjectStatus.RANDOMIZED, Act.WITHDRAW): SubjectStatus.WITHDRAWN,
    (SubjectStatus.RANDOMIZED, Act.COMPLETE): SubjectStatus.COMPLETED,
    (SubjectStatus.DISCONTINUED, Act.WITHDRAW): SubjectStatus.WITHDRAWN,
}
"""The whole table of allowed moves, written out independently of the module's own."""


@given(STATUSES, ACTS)
def test_only_the_allowed_moves_happen(status: SubjectStatus, act: Act) -> None:
    expected = EXPECTED.get((status, act))
    if expected is None:
        with pytest.raises(Conflict) as refused:
            lifecycle.check_move(status, act)
        assert refused.value.code == "status_change_not_allowed"
        assert lifecycle.label(status).lower() in refused.value.detail
        assert act not in lifecycle.allowed_acts(status)
    else:
        assert lifecycle.check_move(status, act) is expected
        assert act in lifecycle.allowed_acts(status)


@given(STATUSES)
def test_only_a_randomized_subject_is_on_treatment_and_end_states_are_final(
    status: SubjectStatus,
) -> None:
    assert lifecycle.on_treatment(status) is (status is SubjectStatus.RANDOMIZED)
    final = {SubjectStatus.SCREEN_FAILED, SubjectStatus.WITHDRAWN, SubjectStatus.COMPLETED}
    assert (lifecycle.allowed_acts(status) == []) is (status in final)


REGISTERED_AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


@given(
    act=ACTS,
    days=st.integers(min_value=-40, max_value=40),
    last_dose=st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
    done=st.booleans(),
)
def test_effective_date_bounds(act: Act, days: int, last_dose: int | None, done: bool) -> None:
    """Never later than today anywhere, never before registration nor the last dose; completion
    only after the schedule's last dosing visit."""
    now = REGISTERED_AT + timedelta(days=31)
    last_dose_on = None if last_dose is None else REGISTERED_AT.date() + timedelta(last_dose)
    facts = Facts(
        registered_at=REGISTERED_AT, last_dose_on=last_dose_on, last_dosing_visit_done=done
    )
    effective = now.date() + timedelta(days=days)
    earliest = max(REGISTERED_AT.date() - timedelta(days=1), last_dose_on or date.min)
    date_ok = earliest <= effective <= (now + timedelta(hours=14)).date()
    try:
        assert lifecycle.check_effective_date(act, effective, facts=facts, now=now) == effective
    except InvalidInput as exc:
        assert not date_ok and exc.extra["errors"][0]["field"] == "effective_date"
    except Conflict as exc:
        assert exc.code == "treatment_not_finished" and act is Act.COMPLETE and not done
    else:
        assert date_ok and (act is not Act.COMPLETE or done)


@given(st.lists(st.one_of(ACTS, st.just(None)), max_size=12), st.booleans())
def test_corrections_undo_newest_first_and_restore_the_state_before(
    steps: list[Act | None], randomize_first: bool
) -> None:
    """A random run of acts (None: undo the latest standing act, if any) replayed as a history:
    the status always follows the history, each undo brings back the state before its act, and
    `undoable` names the latest act still standing."""
    status = SubjectStatus.RANDOMIZED if randomize_first else SubjectStatus.REGISTERED
    history: list[Change] = []
    standing: list[tuple[int, SubjectStatus]] = []  # (change id, state before)
    for step in steps:
        if step is None:
            latest = lifecycle.undoable(history)
            if latest is None:
                assert not standing
                with pytest.raises(Conflict):
                    lifecycle.correction_of(history, status=status, change_id=1)
                continue
            change_id, before = standing.pop()
            assert latest.change_id == change_id
            correction = lifecycle.correction_of(history, status=status, change_id=change_id)
            assert correction.to_status == before and correction.corrects == change_id
            history.append(Change(len(history) + 1, status, before, corrects=change_id))
            status = before
            continue
        if step not in lifecycle.allowed_acts(status):
            continue
        target = lifecycle.check_move(status, step)
        history.append(Change(len(history) + 1, status, target))
        standing.append((len(history), status))
        status = target
    latest = lifecycle.undoable(history)
    assert (latest.change_id if latest else None) == (standing[-1][0] if standing else None)
    if latest is not None:
        assert latest.to_status == status


def test_only_the_latest_standing_act_can_be_undone() -> None:
    history = [
        Change(1, SubjectStatus.RANDOMIZED, SubjectStatus.DISCONTINUED),
        Change(2, SubjectStatus.DISCONTINUED, SubjectStatus.WITHDRAWN),
    ]
    with pytest.raises(Conflict) as refused:
        lifecycle.correction_of(history, status=SubjectStatus.WITHDRAWN, change_id=1)
    assert refused.value.code == "not_latest_change"
    undo = lifecycle.correction_of(history, status=SubjectStatus.WITHDRAWN, change_id=2)
    assert (undo.from_status, undo.to_status) == (
        SubjectStatus.WITHDRAWN,
        SubjectStatus.DISCONTINUED,
    )


@given(ACTS, st.text(max_size=20))
def test_reason_categories_are_those_of_the_act(act: Act, category: str) -> None:
    if category in lifecycle.REASON_CATEGORIES[act]:
        assert lifecycle.check_reason_category(act, category) == category
    else:
        with pytest.raises(InvalidInput):
            lifecycle.check_reason_category(act, category)
