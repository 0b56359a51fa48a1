"""Production and training: what a database is, and what a list or kit file is for.

A training database is marked as such in its study row when the study is loaded; it holds dummy
lists and kits only. A file meant for training starts with one marker line, `# irt-mode:
training`; a file without it is a production file (the layout the packager and the list
vendors already use). Each kind of database refuses the other kind of file, so that dummy kits
never reach a production database and real lists never reach a training one."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    PRODUCTION = "production"
    TRAINING = "training"


MARKER = "# irt-mode: training"
"""The first line of a training list or kit file (docs/deployment.md)."""
LABEL = "TRAINING"
"""What every page, confirmation, notification, export and CLI output of a training database
shows."""


class WrongEnvironment(ValueError):
    """A file for the other kind of database."""


def file_mode(text: str) -> tuple[Mode, str]:
    """The mode a file is marked for, and its text without the marker line."""
    first, _newline, rest = text.lstrip("\ufeff").partition("\n")
    if first.strip().casefold() == MARKER.casefold():
        return Mode.TRAINING, rest
    return Mode.PRODUCTION, text


def accept_file(database: Mode, text: str, *, what: str) -> str:
    """The file's text to parse, if its mode is the database's; else WrongEnvironment."""
    mode, body = file_mode(text)
    if mode == database:
        return body
    if database == Mode.PRODUCTION:
        raise WrongEnvironment(
            f"This {what} is marked for training (its first line is {MARKER!r}); this is a "
            "production database and takes production files only."
        )
    raise WrongEnvironment(
        f"This is a training database: it takes training {what}s only, whose first line is "
        f"{MARKER!r}. A production {what} is never loaded into training."
    )


def mark_file(mode: Mode, text: str) -> str:
    """A file written by a database of `mode`: training files carry the marker line."""
    return f"{MARKER}\n{text}" if mode == Mode.TRAINING else text


def mark_name(mode: Mode, filename: str) -> str:
    """A download's file name: `TRAINING-` in front in a training database."""
    return f"{LABEL}-{filename}" if mode == Mode.TRAINING else filename


def mark_subject(mode: Mode, subject_line: str) -> str:
    """A notification's subject line: `[TRAINING]` in front in a training database."""
    return f"[{LABEL}] {subject_line}" if mode == Mode.TRAINING else subject_line
