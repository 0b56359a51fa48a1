"""The rule for every password a person sets (account creation, reset, the demo's users): at
least `MIN_LENGTH` characters of at least `MIN_DISTINCT` different ones, not one of the
commonly used passwords, and not containing the user name. Length alone let `aaaaaaaaaa` and
`password1234` through; guessing starts with repeats, the common list and the user name.

Pure code; the list is a package data file (data/common-passwords.txt, 19,640 passwords from
Django, BSD licence: data/common-passwords.LICENSE), read once. Both comparisons ignore case.
The services call `check_password` wherever a password is set, so the CLI and any later page or
route get the same rule; the CLI calls it before it touches the database.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from app.domain.errors import validation_error

MIN_LENGTH = 12
TOO_SHORT = f"The password must have at least {MIN_LENGTH} characters."
TOO_COMMON = "This password is one of the most commonly used ones; choose another."
HAS_USERNAME = "The password must not contain the user name."
MIN_DISTINCT = 5
TOO_REPETITIVE = (
    f"The password must use at least {MIN_DISTINCT} different characters (not, say, one repeated)."
)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list (one password a line), case-folded."""
    text = resources.files("app.domain").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


def problem(password: str, *, username: str) -> str | None:
    """Why `password` is refused for `username`, or None if it may be used."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT
    folded = password.casefold()  # ignores case, also where upper case has more letters (ß)
    if folded in common_passwords():
        return TOO_COMMON
    # both foldings: some letters only meet once upper-cased (the dotless i and I fold apart)
    if username and (username.casefold() in folded or username.upper().casefold() in folded):
        return HAS_USERNAME
    if len(set(folded)) < MIN_DISTINCT:  # aaaaaaaaaaaa, 121212121212: first in any guess list
        return TOO_REPETITIVE
    return None


def check_password(password: str, *, username: str) -> str:
    """The password, or `InvalidInput` (422, on the field `password`) saying what to change."""
    message = problem(password, username=username)
    if message is not None:
        raise validation_error("password", message)
    return password
