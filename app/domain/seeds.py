"""Randomization seeds: how strong a supplied seed must be, and the commitment kept instead of it.

The seed is the whole secret of a generated list: whoever knows it can regenerate every list,
including the phase II allocations still to come. The service therefore never stores it, only
its SHA-256, and accepts a seed a person supplies only if it can hold 128 bits: at least 32 hex
digits, each worth 4 bits when drawn at random. No program can measure the entropy of a given
text, so the rule checks the form and refuses the obviously non-random (too few different
digits, e.g. "000...0" or "deadbeef" repeated). See docs/randomization.md, "Seeds".
"""

from __future__ import annotations

import hashlib
import string

from app.domain.errors import InvalidInput

GENERATED_SEED_BYTES = 32
"""A generated seed: 32 random bytes, written as 64 hex digits (256 bits)."""
MIN_SUPPLIED_BITS = 128
BITS_PER_HEX_DIGIT = 4
MIN_HEX_DIGITS = MIN_SUPPLIED_BITS // BITS_PER_HEX_DIGIT
MIN_DISTINCT_DIGITS = 8
"""A random 32-digit seed has fewer than 8 different digits with a probability below 1e-7."""
MAX_SEED_CHARS = 1024
HEX_DIGITS = frozenset(string.hexdigits)


def read_seed(text: str) -> str:
    """The seed a file or stdin holds: its text without surrounding whitespace (a trailing line
    end is never part of the seed), used exactly as written from then on, letter case included.
    A refusal never quotes the text: it is a secret."""
    seed = text.strip()
    if not seed:
        raise InvalidInput("seed_missing", "The seed is empty: the file or stdin held no text.")
    if len(seed) > MAX_SEED_CHARS:
        raise InvalidInput("seed_too_long", f"The seed is longer than {MAX_SEED_CHARS} characters.")
    return seed


def check_strength(seed: str) -> None:
    """Refuse a supplied seed that cannot hold 128 bits (see the module's docstring)."""
    how = (
        f"A seed must be at least {MIN_HEX_DIGITS} hex digits (0-9, a-f) drawn at random, "
        f"{MIN_SUPPLIED_BITS} bits: make one with `openssl rand -hex 32`, or have one generated."
    )
    if not set(seed) <= HEX_DIGITS:
        raise InvalidInput("weak_seed", f"The seed holds characters other than hex digits. {how}")
    if len(seed) < MIN_HEX_DIGITS:
        raise InvalidInput(
            "weak_seed",
            f"The seed has {len(seed)} hex digits, {len(seed) * BITS_PER_HEX_DIGIT} bits at "
            f"most. {how}",
        )
    distinct = len(set(seed.lower()))
    if distinct < MIN_DISTINCT_DIGITS:
        raise InvalidInput(
            "weak_seed",
            f"The seed uses only {distinct} different hex digits (at least "
            f"{MIN_DISTINCT_DIGITS}); it was not drawn at random. {how}",
        )


def seed_commitment(seed: str) -> str:
    """SHA-256 (hex) of the seed's UTF-8 text: what the database keeps, so that a seed given
    again can be recognised; with 128 bits or more the seed cannot be found from it."""
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()
