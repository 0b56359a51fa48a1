"""The reason rule (app/domain/reasons.py): at least 10 characters a reader can see, whatever
invisible characters surround or pad them; the cleaned reason keeps what was typed inside."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.errors import InvalidInput
from app.domain.reasons import (
    MIN_VISIBLE,
    TOO_SHORT,
    check_reason,
    clean_reason,
    is_invisible,
    visible_length,
)

INVISIBLE = (
    " \t\n\r\x0b\x0c\x85\xa0"  # spaces, controls, next line, no-break space
    "\u00ad"  # soft hyphen
    "\u200b\u200c\u200d\u2060\ufeff"  # zero-width space, non-joiner, joiner; word joiner; BOM
    "\u200e\u200f\u202e\u2066"  # direction marks and overrides
    "\u2028\u2029\u3000\u2003\u1680"  # line and paragraph separators, wide spaces
    "\u115f\u1160\u3164\uffa0\u2800"  # Hangul fillers, blank Braille pattern
    "\ue000\U000e0041"  # private use, a tag character
)
invisible = st.sampled_from(INVISIBLE)
padding = st.text(alphabet=invisible, max_size=12)
# printable letters, digits and punctuation: every one of them visible
shown = st.characters(
    categories=("L", "N", "P", "S"), exclude_characters="\u115f\u1160\u3164\uffa0\u2800"
)
visible_text = st.text(alphabet=shown, max_size=30)


def _interleave(visible: str, pads: list[str]) -> str:
    return "".join(p + c for p, c in zip(pads, visible, strict=False)) + "".join(
        pads[len(visible) :]
    )


@given(text=visible_text, pads=st.lists(padding, min_size=31, max_size=31))
def test_invisible_characters_never_count(text: str, pads: list[str]) -> None:
    assert visible_length(text) == len(text)
    assert visible_length(_interleave(text, pads)) == len(text)


@given(text=st.text(alphabet=invisible, max_size=200))
def test_a_reason_of_invisible_characters_only_is_refused(text: str) -> None:
    assert visible_length(text) == 0
    with pytest.raises(InvalidInput):
        check_reason(text)


@given(text=visible_text, pads=st.lists(padding, min_size=31, max_size=31))
def test_accepted_exactly_from_ten_visible_characters(text: str, pads: list[str]) -> None:
    padded = _interleave(text, pads)
    if len(text) >= MIN_VISIBLE:
        cleaned = check_reason(padded)
        assert visible_length(cleaned) == len(text)
    else:
        with pytest.raises(InvalidInput) as refused:
            check_reason(padded)
        error = refused.value
        assert error.code == "validation_error" and error.detail == TOO_SHORT
        assert error.extra["errors"] == [{"field": "reason", "message": TOO_SHORT}]


@given(text=st.text(max_size=60))
def test_cleaning_trims_only_the_ends_and_is_idempotent(text: str) -> None:
    cleaned = clean_reason(text)
    assert cleaned in text and visible_length(cleaned) == visible_length(text)
    assert clean_reason(cleaned) == cleaned
    if cleaned:
        assert not is_invisible(cleaned[0]) and not is_invisible(cleaned[-1])
    start = text.index(cleaned) if cleaned else len(text)
    assert all(is_invisible(c) for c in text[:start] + text[start + len(cleaned) :])
    if visible_length(text) >= MIN_VISIBLE:
        assert check_reason(text) == cleaned == check_reason(cleaned)


@given(text=st.text(max_size=60))
def test_check_reason_accepts_what_visible_length_counts(text: str) -> None:
    try:
        check_reason(text)
    except InvalidInput:
        assert visible_length(text) < MIN_VISIBLE
    else:
        assert visible_length(text) >= MIN_VISIBLE


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("DSMB review 1", 11),
        ("  vial dropped  ", 11),
        ("too short", 8),
        ("\u200b" * 40, 0),
        ("a\u200bb\u200cc\u200dd\u2060e\ufefff\u00adg", 7),
        ("e\u0301" * 9, 9),  # an accent typed as its own code point counts with its letter
        ("\u3164" * 12, 0),
        ("Überdosis, Station 3", 18),
        ("تزریق اشتباه\u200cدارو", 15),  # noqa: RUF001 (Persian: the non-joiner is not counted)
    ],
)
def test_examples(text: str, visible: int) -> None:
    assert visible_length(text) == visible


def test_inside_the_text_what_was_typed_stays() -> None:
    typed = "\u200b  Vial dropped\nduring preparation.\u00a0\ufeff "
    assert check_reason(typed) == "Vial dropped\nduring preparation."
    persian = "\u200cتزریق اشتباه\u200cدارو\u200c"  # noqa: RUF001
    assert check_reason(persian) == "تزریق اشتباه\u200cدارو"  # noqa: RUF001
