"""A counter-mode SHA-256 random stream: simple enough for a statistician to re-implement.

Draw number i (0, 1, 2, ...) of stream `label` under `seed` is the first 8 bytes, read as an
unsigned big-endian integer, of SHA-256 over the UTF-8 text ``f"{seed}|{label}|{i}"``.
`below(n)` rejects draws >= 2**64 - (2**64 mod n) and returns the next accepted draw mod n,
so every value 0..n-1 is exactly equally likely. See docs/randomization.md.
"""

from __future__ import annotations

import hashlib

_SPAN = 2**64


class SeededStream:
    """Deterministic integers from (seed, label)."""

    def __init__(self, seed: str, label: str) -> None:
        if not seed:
            raise ValueError("seed must not be empty")
        self._prefix = f"{seed}|{label}|"
        self._counter = 0

    def draw(self) -> int:
        digest = hashlib.sha256(f"{self._prefix}{self._counter}".encode()).digest()
        self._counter += 1
        return int.from_bytes(digest[:8], "big")

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if not 1 <= n <= _SPAN:
            raise ValueError("n must be between 1 and 2**64")
        limit = _SPAN - (_SPAN % n)
        while True:
            value = self.draw()
            if value < limit:
                return value % n

    def shuffle(self, items: list[str]) -> None:
        """Fisher-Yates in place: for i from len-1 down to 1, swap items[i], items[below(i+1)]."""
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]
