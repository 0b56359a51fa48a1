"""How predictable the next allocation is to someone who sees the randomization numbers.

The measure behind the concealment claim of the REDCap export (docs/randomization.md): the share
of slots whose arm is certain to an observer who knows every earlier arm of the stratum (the
worst case for a permuted-block design: a site that has learned them, by unblinding or side
effects) plus whatever the numbers reveal of the blocks. Numbers that carry the block and its
size (the former `P2-3-0012-B3-6`) make the end of every block certain; numbers that reveal
nothing leave only what the arms themselves force. Pure code; exact, no sampling.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from app.domain import randomization_list as rl
from app.domain.study import ListScope

BlockView = tuple[int, int] | None
"""(block, block size) as read from a number, or None when the number does not tell."""

_BOUNDARY = (0, ())


@dataclass(frozen=True)
class Predictability:
    certain: int
    slots: int

    @property
    def share(self) -> float:
        return self.certain / self.slots if self.slots else 0.0


def certain_guesses(
    slots: Sequence[rl.Slot],
    scope: ListScope,
    *,
    numbers: Mapping[tuple[str, int], str],
    read: Callable[[str], BlockView],
) -> Predictability:
    """Count the slots whose arm is certain given the earlier arms of the stratum and `read`
    applied to each number up to this one (`numbers`: (stratum, sequence) -> number)."""
    by_stratum: dict[str, list[rl.Slot]] = defaultdict(list)
    for slot in sorted(slots):
        by_stratum[slot.stratum].append(slot)
    certain = 0
    for members in by_stratum.values():
        views = [read(numbers[(s.stratum, s.sequence)]) for s in members]
        certain += _certain_in_stratum([s.arm for s in members], views, scope)
    return Predictability(certain, len(slots))


def _certain_in_stratum(arms: list[str], views: list[BlockView], scope: ListScope) -> int:
    order = sorted(scope.allocation.ratio)
    total = sum(scope.allocation.ratio.values())

    def quota(size: int, arm: str) -> int:
        return scope.allocation.ratio[arm] * size // total

    states: set[tuple[int, tuple[int, ...]]] = {_BOUNDARY}
    certain = 0
    for i, arm in enumerate(arms):
        view = views[i]
        if view is not None:
            start = i
            while start > 0 and views[start - 1] == view:
                start -= 1
            states = {(view[1], tuple(arms[start:i].count(a) for a in order))}
        zeros = tuple(0 for _ in order)
        open_states: set[tuple[int, tuple[int, ...]]] = set()
        for size, counts in states:
            if size:
                open_states.add((size, counts))
            else:
                open_states.update((s, zeros) for s in scope.allocation.block_sizes)
        allowed = {
            a
            for size, counts in open_states
            for j, a in enumerate(order)
            if counts[j] < quota(size, a)
        }
        certain += len(allowed) == 1
        states = set()
        for size, counts in open_states:
            j = order.index(arm)
            if counts[j] >= quota(size, arm):
                continue
            grown = (*counts[:j], counts[j] + 1, *counts[j + 1 :])
            states.add(_BOUNDARY if sum(grown) == size else (size, grown))
    return certain
