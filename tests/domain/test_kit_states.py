"""The kit status state machine: who may make which move, and a kit is dispensed at most once."""

from __future__ import annotations

import itertools
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.kits import (
    SYSTEM,
    TRANSITIONS,
    KitStatus,
    KitTransitionError,
    check_transition,
)
from app.domain.roles import Role

S = KitStatus
ACTORS: tuple[str, ...] = (SYSTEM, *(r.value for r in Role))
ALLOWED = sorted(TRANSITIONS, key=lambda pair: (pair[0].value, pair[1].value))
NOT_ALLOWED = [pair for pair in itertools.product(KitStatus, KitStatus) if pair not in TRANSITIONS]


def assert_refused(current: KitStatus, target: KitStatus, by: str) -> None:
    with pytest.raises(KitTransitionError) as info:
        check_transition("KITX", current=current, target=target, by=by)
    error = info.value
    assert error.current == current
    assert error.target == target
    message = str(error)
    assert "KITX" in message
    assert f"from {current.value} to {target.value}" in message


def test_table_mentions_only_known_actors() -> None:
    for pair, who in TRANSITIONS.items():
        assert who, pair
        assert who <= set(ACTORS), pair


@pytest.mark.parametrize(("current", "target"), ALLOWED, ids=lambda s: s.value)
def test_allowed_move_passes_for_listed_actors_only(current: KitStatus, target: KitStatus) -> None:
    allowed = TRANSITIONS[(current, target)]
    for by in ACTORS:
        if by in allowed:
            check_transition("KITX", current=current, target=target, by=by)
        else:
            assert_refused(current, target, by)


@pytest.mark.parametrize(("current", "target"), NOT_ALLOWED, ids=lambda s: s.value)
def test_move_not_in_table_fails_for_everybody(current: KitStatus, target: KitStatus) -> None:
    for by in (*ACTORS, "nobody"):
        assert_refused(current, target, by)
    with pytest.raises(KitTransitionError, match="not allowed"):
        check_transition("KITX", current=current, target=target, by=SYSTEM)


def test_staying_in_the_same_status_is_not_a_move() -> None:
    for status in KitStatus:
        assert (status, status) not in TRANSITIONS


def test_system_only_moves_say_so() -> None:
    with pytest.raises(KitTransitionError, match="only the service itself"):
        check_transition("KITX", current=S.AVAILABLE, target=S.DISPENSED, by=Role.PHARMACIST.value)
    with pytest.raises(KitTransitionError, match="the pharmacist role may not"):
        check_transition("KITX", current=S.AT_DEPOT, target=S.QUARANTINED, by=Role.PHARMACIST.value)


def test_dispensed_is_reached_only_by_the_system() -> None:
    into_dispensed = [pair for pair in TRANSITIONS if pair[1] is S.DISPENSED]
    assert into_dispensed == [(S.AVAILABLE, S.DISPENSED)]
    for pair in into_dispensed:
        assert TRANSITIONS[pair] == frozenset({SYSTEM})
    for role in Role:
        assert_refused(S.AVAILABLE, S.DISPENSED, role.value)


def test_nothing_leaves_destroyed() -> None:
    assert not [pair for pair in TRANSITIONS if pair[0] is S.DESTROYED]
    for target, by in itertools.product(KitStatus, ACTORS):
        assert_refused(S.DESTROYED, target, by)


def reachable(start: KitStatus) -> set[KitStatus]:
    seen: set[KitStatus] = set()
    todo = deque([start])
    while todo:
        here = todo.popleft()
        for current, target in TRANSITIONS:
            if current is here and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_way_back_to_available_or_dispensed_after_dispensing() -> None:
    after = reachable(S.DISPENSED)
    assert S.AVAILABLE not in after
    assert S.DISPENSED not in after
    assert S.AT_DEPOT not in after and S.IN_TRANSIT not in after


def test_every_status_is_reachable_from_at_depot() -> None:
    assert reachable(S.AT_DEPOT) | {S.AT_DEPOT} == set(KitStatus)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_walk_never_dispenses_twice(data: st.DataObject) -> None:
    status = data.draw(st.sampled_from([S.AT_DEPOT, S.IN_TRANSIT, S.AVAILABLE, S.QUARANTINED]))
    dispensed = 0
    for _ in range(data.draw(st.integers(0, 40))):
        moves = [pair for pair in ALLOWED if pair[0] is status]
        if not moves:
            break
        current, target = data.draw(st.sampled_from(moves))
        by = data.draw(st.sampled_from(sorted(TRANSITIONS[(current, target)])))
        check_transition("WALK", current=current, target=target, by=by)
        status = target
        dispensed += status is S.DISPENSED
        assert dispensed <= 1
    assert dispensed <= 1


@pytest.mark.parametrize(
    ("target", "at_site"), [(KitStatus.AVAILABLE, False), (KitStatus.AT_DEPOT, True)]
)
def test_a_release_goes_back_to_where_the_kit_is(target: KitStatus, at_site: bool) -> None:
    with pytest.raises(KitTransitionError, match="goes back to"):
        check_transition(
            "K1", current=KitStatus.QUARANTINED, target=target, by="supply_manager", at_site=at_site
        )
    home = KitStatus.AT_DEPOT if target is KitStatus.AVAILABLE else KitStatus.AVAILABLE
    check_transition(
        "K1", current=KitStatus.QUARANTINED, target=home, by="supply_manager", at_site=at_site
    )
