"""The seed rules of docs/randomization.md, "Seeds": how a supplied seed is read, when it is strong
enough (at least 32 hex digits, at least 8 different ones), and its commitment."""

from __future__ import annotations

import hashlib
import secrets
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import InvalidInput
from app.domain.seeds import (
    MIN_HEX_DIGITS,
    check_strength,
    read_seed,
    seed_commitment,
)

HEX = "0123456789abcdefABCDEF"
random_hex = st.tuples(
    st.permutations("0123456789abcdef"), st.text(alphabet=HEX, min_size=16, max_size=200)
).map(lambda parts: "".join(parts[0]) + parts[1])
"""At least 32 hex digits, all 16 different ones among them, any case."""


@given(
    seed=random_hex,
    before=st.sampled_from(["", " ", "\n"]),
    after=st.sampled_from(["", "\n", "\r\n", "  \n"]),
)
def test_a_hex_seed_of_32_digits_or_more_is_accepted_as_written(
    seed: str, before: str, after: str
) -> None:
    assert read_seed(before + seed + after) == seed  # case kept: it is part of the seed
    check_strength(seed)


@given(seed=st.text(alphabet=HEX, min_size=1, max_size=MIN_HEX_DIGITS - 1))
def test_fewer_than_32_hex_digits_are_refused(seed: str) -> None:
    with pytest.raises(InvalidInput, match=f"{len(seed)} hex digits") as refused:
        check_strength(seed)
    assert refused.value.code == "weak_seed"


@given(
    seed=st.text(min_size=MIN_HEX_DIGITS, max_size=100).filter(
        lambda s: s.strip() == s and not set(s) <= set(HEX)
    )
)
def test_a_seed_with_other_characters_is_refused_without_quoting_it(seed: str) -> None:
    with pytest.raises(InvalidInput, match="other than hex digits") as refused:
        check_strength(seed)
    assert seed not in refused.value.detail


@pytest.mark.parametrize("seed", ["0" * 64, "deadbeef" * 4, "0123456" * 10, "DEADbeef" * 8])
def test_too_few_different_digits_are_refused(seed: str) -> None:
    with pytest.raises(InvalidInput, match="different hex digits"):
        check_strength(seed)


def test_the_distinct_digit_rule_almost_never_refuses_a_random_seed() -> None:
    # union bound: some 7 digits hold all 32 random digits
    assert comb(16, 7) * (7 / 16) ** 32 < 1e-7
    for _ in range(1000):
        check_strength(secrets.token_hex(16))


@pytest.mark.parametrize("text", ["", "  \n", "\n\n"])
def test_an_empty_seed_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        read_seed(text)


def test_an_overlong_seed_is_refused() -> None:
    with pytest.raises(InvalidInput, match="longer than"):
        read_seed("a" * 1025)


@given(seed=st.text(min_size=1))
def test_the_commitment_is_the_sha256_of_the_utf8_text(seed: str) -> None:
    assert seed_commitment(seed) == hashlib.sha256(seed.encode("utf-8")).hexdigest()
