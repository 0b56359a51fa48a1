"""The meanings a signature carries, and how an echoed meaning is compared."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.domain import signatures as s


def test_each_action_has_its_own_words() -> None:
    assert s.cohort_meaning(code="C2", action="open") == "I approve opening cohort C2"
    assert s.cohort_meaning(code="C1", action="close") == "I approve closing cohort C1"
    assert s.phase2_dose_meaning(Decimal("1.20")) == "I approve 1.2 mg/kg as the phase II dose"
    assert s.unblinding_meaning(screening_number="DE01-003", site_id="DE01") == (
        "I authorise the emergency unblinding of subject DE01-003 at site DE01"
    )


@given(st.text(min_size=1, max_size=60))
def test_an_echo_differs_only_in_spacing_and_a_full_stop(words: str) -> None:
    meaning = s.cohort_meaning(code="C2", action="open")
    assert s.same_meaning(f"  {meaning}. ", meaning)
    assert s.same_meaning(meaning.replace(" ", "\n  "), meaning)
    if " ".join(words.split()).rstrip(".") != meaning:
        assert not s.same_meaning(words, meaning)


def test_the_audit_after_carries_the_signature_only_when_signed() -> None:
    signature = s.Signature(
        "Dr A", "sponsor", "2026-01-01T00:00:00Z", "I approve opening cohort C2"
    )
    assert s.with_signature({"x": 1}, None) == {"x": 1}
    assert s.with_signature({"x": 1}, signature)["signature"]["printed_name"] == "Dr A"
