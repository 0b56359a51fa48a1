"""How a replay discrepancy reads, the same in `irt audit verify` and on the monitor's page."""

from __future__ import annotations

from app.domain.audit_replay import Discrepancy


def test_a_changed_field_shows_what_was_found_and_what_the_trail_recorded() -> None:
    edited = Discrepancy("subjects", "12", "status", "withdrawn", "randomized", 40, "differs")
    assert edited.line == "subjects 12: differs (status: withdrawn, expected randomized)"


def test_a_row_no_entry_explains_names_only_the_row() -> None:
    stray = Discrepancy("kits", "K7Q4TRXA", None, None, None, None, "no entry explains it")
    assert stray.line == "kits K7Q4TRXA: no entry explains it"
