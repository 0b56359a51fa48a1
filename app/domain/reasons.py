"""The rule for every free-text reason a user gives (unblinding, cohorts, the phase II dose,
shipments, kit status changes and replacements, site activation, accounts): at least
`MIN_VISIBLE` characters a reader can see.

The reason is what an auditor reads in the trail to learn why a change was made, so "x", a run
of spaces or of zero-width characters must not pass for one. Pure code: the service layer calls
`check_reason` in every use case that takes a reason (so the API, the pages and the CLI all get
it) and the API's request models call it too (so the error sits on the `reason` field).
"""

from __future__ import annotations

import unicodedata

from app.domain.errors import InvalidInput, validation_error

MIN_VISIBLE = 10
TOO_SHORT = f"The reason must have at least {MIN_VISIBLE} visible characters."

INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
"""Controls, format characters (zero-width space, joiner and non-joiner, word joiner, byte
order mark, soft hyphen, direction marks), surrogates, private-use and unassigned code points,
and every kind of space or line separator."""

BLANK_LETTERS = frozenset({"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"})
"""Characters that are letters or symbols to Unicode but print as blank space (the Hangul
fillers and the blank Braille pattern), a well-known way to fake a non-empty text."""

MARK_CATEGORIES = frozenset({"Mn", "Me"})
"""Combining marks draw on the character before them: an accent typed as a separate code
point (e + U+0301) or a variation selector adds no character of its own."""


def is_invisible(char: str) -> bool:
    """A character that shows nothing by itself: a space, a control or format character, a
    blank letter (see `BLANK_LETTERS`)."""
    return char in BLANK_LETTERS or unicodedata.category(char) in INVISIBLE_CATEGORIES


def visible_length(text: str) -> int:
    """The number of characters a reader sees: neither invisible nor a combining mark."""
    return sum(
        1
        for char in text
        if not is_invisible(char) and unicodedata.category(char) not in MARK_CATEGORIES
    )


def clean_reason(text: str) -> str:
    """The reason without the invisible characters at its ends. Inside the text they stay as
    typed: a line break or a space separates words, and a zero-width joiner or non-joiner is
    part of the spelling in some scripts (Persian, Hindi) and in emoji sequences."""
    start, end = 0, len(text)
    while start < end and is_invisible(text[start]):
        start += 1
    while end > start and is_invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def check_reason(text: str) -> str:
    """The cleaned reason (`clean_reason`), or an `InvalidInput` refusal on the field `reason`
    when it has fewer than `MIN_VISIBLE` visible characters."""
    cleaned = clean_reason(text)
    if visible_length(cleaned) < MIN_VISIBLE:
        raise reason_too_short()
    return cleaned


def reason_too_short() -> InvalidInput:
    return validation_error("reason", TOO_SHORT)
