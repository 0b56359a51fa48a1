"""Data corrections (pure): which of a subject's data may be corrected, how a new value is read
and written, and what a correction does to the eligibility answers and the stratum.

ICH E9 analyses a subject as randomized: a correction never moves the subject to another slot
or another arm and never changes a dose already given. It records the value as it should have
been; when it touches a stratification factor, the stratum the corrected answers give is kept
beside the stratum as randomized (the subject is then mis-stratified)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from app.domain.eligibility import EXCLUSION_MESSAGES, EligibilityAnswers, Exclusions
from app.domain.stratification import stratum_of
from app.domain.study import StudyDefinition

Kind = Literal["sex", "year", "weight", "date", "count", "decimal", "yes_no"]
Where = Literal["subject", "visit", "eligibility"]


@dataclass(frozen=True)
class Correctable:
    field: str
    label: str
    kind: Kind
    where: Where
    low: int | None = None
    high: int | None = None


_ANSWERS: tuple[Correctable, ...] = (
    Correctable("eligibility.screening_date", "Screening date", "date", "eligibility"),
    Correctable("eligibility.sle_diagnosis_date", "Date of SLE diagnosis", "date", "eligibility"),
    Correctable(
        "eligibility.sledai_2k_score", "SLEDAI-2K total score at screening", "count",
        "eligibility", 0, 105,
    ),
    Correctable(
        "eligibility.bilag_a_count", "BILAG-2004 organ systems scored A", "count",
        "eligibility", 0, 9,
    ),
    Correctable(
        "eligibility.bilag_b_count", "BILAG-2004 organ systems scored B", "count",
        "eligibility", 0, 9,
    ),
    Correctable(
        "eligibility.on_soc_medication", "On standard-of-care medication", "yes_no",
        "eligibility",
    ),
    Correctable(
        "eligibility.prednisone_equivalent_mg_per_day",
        "Oral prednisone-equivalent dose at baseline (mg/day)", "decimal", "eligibility", 0, 1000,
    ),
)  # fmt: skip

CORRECTABLE: dict[str, Correctable] = {
    c.field: c
    for c in (
        Correctable("sex", "Sex", "sex", "subject"),
        Correctable("year_of_birth", "Year of birth", "year", "subject", 1900),
        Correctable("weight_kg", "Weight measured at a dosing visit (kg)", "weight", "visit"),
        *_ANSWERS,
        *(
            Correctable(f"eligibility.exclusions.{name}", f"Has {text}", "yes_no", "eligibility")
            for name, text in EXCLUSION_MESSAGES.items()
        ),
    )
}
"""Every field that may be corrected, in the order the correction form offers them."""

LEGACY_EXCLUSIONS = {
    "active_neuropsychiatric_sle": "active_or_unstable_neuropsychiatric_sle",
    "active_lupus_nephritis": "active_or_unstable_lupus_nephritis",
}
"""Exclusion keys of answers recorded before the question became "active or unstable"."""


class CorrectionRefused(ValueError):
    """A new value that cannot be used; the message names the accepted values."""


def parse_value(
    study: StudyDefinition, field: str, raw: str, *, this_year: int
) -> str | int | Decimal | bool | date:
    """The typed new value of `field` from the text entered, or CorrectionRefused."""
    spec = CORRECTABLE.get(field)
    if spec is None:
        raise CorrectionRefused(f"{field!r} cannot be corrected here")
    text = raw.strip()
    if spec.kind == "sex":
        if text.upper() not in ("F", "M"):
            raise CorrectionRefused("the sex is F or M")
        return text.upper()
    if spec.kind == "yes_no":
        if text.lower() not in ("yes", "no", "true", "false"):
            raise CorrectionRefused("answer yes or no")
        return text.lower() in ("yes", "true")
    if spec.kind == "date":
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise CorrectionRefused("a date as YYYY-MM-DD") from None
    if spec.kind in ("year", "count"):
        if not text.isdigit():
            raise CorrectionRefused("a whole number")
        number = int(text)
        high = this_year if spec.kind == "year" else spec.high
        if (spec.low is not None and number < spec.low) or (high is not None and number > high):
            raise CorrectionRefused(f"a whole number from {spec.low} to {high}")
        return number
    try:
        number_value = Decimal(text)
    except InvalidOperation:
        raise CorrectionRefused("a number, e.g. 72.5") from None
    if not number_value.is_finite():
        raise CorrectionRefused("a number, e.g. 72.5")
    if spec.kind == "weight":
        lightest, heaviest = study.weight.min_kg, study.weight.max_kg
        if not lightest <= number_value <= heaviest or number_value != number_value.quantize(
            Decimal("0.1")
        ):
            raise CorrectionRefused(
                f"a weight from {lightest} to {heaviest} kg, one decimal at most"
            )
        return number_value
    if not 0 <= number_value <= 1000 or number_value != number_value.quantize(Decimal("0.01")):
        raise CorrectionRefused("a dose from 0 to 1000 mg/day, two decimals at most")
    return number_value


def value_text(value: Any) -> str:
    """One spelling of a value for the record and the page: yes/no, ISO dates, plain numbers."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


def with_answer(answers: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy of the stored answers with one `eligibility.` field replaced."""
    parts = field.split(".")[1:]
    copy = {**answers, "exclusions": dict(answers.get("exclusions") or {})}
    if len(parts) == 2:
        copy["exclusions"][parts[1]] = value
    else:
        copy[parts[0]] = value
    return copy


def answers_from_json(stored: dict[str, Any]) -> EligibilityAnswers:
    """The typed answers from their stored JSON (older records' exclusion keys mapped)."""
    exclusions = dict(stored.get("exclusions") or {})
    for old, new in LEGACY_EXCLUSIONS.items():
        if old in exclusions:
            exclusions.setdefault(new, exclusions.pop(old))
    return EligibilityAnswers(
        sle_diagnosis_date=_date(stored["sle_diagnosis_date"]),
        screening_date=_date(stored["screening_date"]),
        sledai_2k_score=int(stored["sledai_2k_score"]),
        bilag_a_count=int(stored["bilag_a_count"]),
        bilag_b_count=int(stored["bilag_b_count"]),
        on_soc_medication=_yes(stored["on_soc_medication"]),
        prednisone_equivalent_mg_per_day=Decimal(str(stored["prednisone_equivalent_mg_per_day"])),
        exclusions=Exclusions(**{k: _yes(exclusions.get(k, False)) for k in EXCLUSION_MESSAGES}),
    )


def actual_stratum(study: StudyDefinition, *, stage: str, answers: dict[str, Any]) -> str | None:
    """The phase II stratum the (corrected) answers give; None for a phase Ib subject, whose
    cohort has a single stratum whatever the answers."""
    if stage != "phase_ii":
        return None
    return stratum_of(study.phase_ii, answers_from_json(answers))


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _yes(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() in ("true", "yes", "1")
