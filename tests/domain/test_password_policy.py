"""The password policy: length, the common-password list (ignoring case), the user name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import InvalidInput
from app.domain.password_policy import (
    HAS_USERNAME,
    MIN_DISTINCT,
    MIN_LENGTH,
    TOO_COMMON,
    TOO_REPETITIVE,
    TOO_SHORT,
    check_password,
    common_passwords,
    problem,
)

COMMON = sorted(common_passwords())
LONG_COMMON = [p for p in COMMON if len(p) >= MIN_LENGTH]
names = st.text(st.characters(categories=["Ll", "Lu", "Nd"]), min_size=3, max_size=20)


def test_the_list_is_a_real_one() -> None:
    assert len(COMMON) > 19_000
    assert {"password", "123456", "qwerty", "password1234", "1qaz2wsx3edc"} <= set(COMMON)
    assert len(LONG_COMMON) > 100  # the entries the length rule alone would let through


@given(st.text(max_size=MIN_LENGTH - 1), names)
def test_short_passwords_are_refused(password: str, username: str) -> None:
    assert problem(password, username=username) == TOO_SHORT


@given(st.sampled_from(LONG_COMMON), st.data())
def test_common_passwords_are_refused_in_any_case(password: str, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.booleans(), min_size=len(password), max_size=len(password)))
    cased = "".join(c.upper() if flip else c for c, flip in zip(password, flips, strict=True))
    assert problem(cased, username="zz-no-such-user") == TOO_COMMON


@given(names, st.text(max_size=8), st.text(max_size=8), st.booleans())
def test_a_password_containing_the_user_name_is_refused(
    username: str, before: str, after: str, upper: bool
) -> None:
    password = before + (username.upper() if upper else username) + after + "#" * MIN_LENGTH
    assert problem(password, username=username) == HAS_USERNAME


@given(st.text(alphabet="abcdefghijkmnpqrstuvwxyz23456789-", min_size=MIN_LENGTH, max_size=40))
def test_long_uncommon_passwords_without_the_user_name_pass(password: str) -> None:
    username = "Ω-user"  # cannot occur in this alphabet
    expected = TOO_COMMON if password.casefold() in common_passwords() else None
    if expected is None and len(set(password)) < MIN_DISTINCT:
        expected = TOO_REPETITIVE
    assert problem(password, username=username) == expected
    if expected is None:
        assert check_password(password, username=username) == password


@given(st.lists(st.characters(codec="ascii"), min_size=1, max_size=MIN_DISTINCT - 1), st.data())
def test_too_few_different_characters_are_refused(chars: list[str], data: st.DataObject) -> None:
    password = "".join(data.draw(st.lists(st.sampled_from(chars), min_size=40, max_size=60)))
    expected = TOO_COMMON if password.casefold() in common_passwords() else TOO_REPETITIVE
    assert problem(password, username="zz-no-such-user") == expected
    assert problem("aaaaaaaaaaaa", username="x") == TOO_REPETITIVE
    assert problem("abababababab", username="x") == TOO_REPETITIVE


def test_the_refusal_is_a_field_error_a_user_understands() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_password("aaaaaaaaaa", username="coordinator")
    assert refused.value.code == "validation_error"
    assert refused.value.extra["errors"] == [{"field": "password", "message": TOO_SHORT}]
    for password in ("QWERTY123456", "Password1234", "coordinator-2026!"):
        with pytest.raises(InvalidInput):
            check_password(password, username="coordinator")
