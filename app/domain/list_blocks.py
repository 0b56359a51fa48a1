"""Blocks read back from a stratum's arms, and randomization numbers that say nothing of blocks.

REDCap's allocation table holds the arms of each stratum in order and nothing else: its
`redcap_randomization_number` is empty, or a code another tool chose. `rebuild_blocks` reads the
blocks back: the arms split into consecutive blocks of configured sizes, each balanced to the
ratio, the smallest block first where the arms allow more than one reading. The arms, which are
all that allocation uses, come back exactly; the block boundaries are the IRT's reading and can
differ from the generator's (a run that is a block of 4 then one of 6 may also be 6 then 4).

`opaque_numbers` numbers a list for a tool that shows the number to the people who randomize: a
permutation of 1..n keyed by the list's commitment, so that a number depends only on which slot
it is (scope, stratum, sequence) through a keyed hash, never on the block, its size or the arm.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable, Sequence

from app.domain import randomization_list as rl
from app.domain.study import ListScope

MIN_NUMBER_DIGITS = 4


class NoBlocks(ValueError):
    """The arms cannot be split into balanced blocks; `position` is the first slot (0-based)
    that no reading reaches past."""

    def __init__(self, position: int) -> None:
        super().__init__(f"no balanced block fits from slot {position + 1}")
        self.position = position


def rebuild_blocks(arms: Sequence[str], scope: ListScope) -> list[tuple[int, int]]:
    """(block number, block size) per slot; raise `NoBlocks` if no reading covers every slot."""
    sizes = sorted(scope.allocation.block_sizes)
    wanted = {size: Counter(rl.block_arms(scope.allocation.ratio, size)) for size in sizes}
    n = len(arms)

    def fits(start: int, size: int) -> bool:
        return start + size <= n and Counter(arms[start : start + size]) == wanted[size]

    # done[i]: arms[i:] splits into whole blocks (computed from the end).
    done = [False] * (n + 1)
    done[n] = True
    for start in range(n - 1, -1, -1):
        done[start] = any(fits(start, size) and done[start + size] for size in sizes)
    if not done[0]:
        raise NoBlocks(_furthest(fits, sizes))
    out: list[tuple[int, int]] = []
    start, block = 0, 0
    while start < n:
        size = next(s for s in sizes if fits(start, s) and done[start + s])
        block += 1
        out += [(block, size)] * size
        start += size
    return out


def _furthest(fits: Callable[[int, int], bool], sizes: list[int]) -> int:
    """The furthest slot that balanced blocks reach from the start: where the reading breaks."""
    reached = {0}
    frontier = [0]
    while frontier:
        start = frontier.pop()
        for size in sizes:
            if fits(start, size) and start + size not in reached:
                reached.add(start + size)
                frontier.append(start + size)
    return max(reached)


def opaque_numbers(slots: Sequence[rl.Slot]) -> dict[tuple[str, int], str]:
    """(stratum, sequence) -> `{scope}-{n}`, n a permutation of 1..len(slots) keyed by the
    slots' commitment (so the same list always gets the same numbers)."""
    if not slots:
        return {}
    key = bytes.fromhex(rl.commitment(slots))
    scope = slots[0].scope

    def tag(slot: rl.Slot) -> bytes:
        message = f"{slot.scope}|{slot.stratum}|{slot.sequence}".encode()
        return hmac.new(key, message, hashlib.sha256).digest()

    digits = max(MIN_NUMBER_DIGITS, len(str(len(slots))))
    ordered = sorted(slots, key=tag)
    return {(s.stratum, s.sequence): f"{scope}-{i:0{digits}d}" for i, s in enumerate(ordered, 1)}
