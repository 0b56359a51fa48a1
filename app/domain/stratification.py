"""Derive the stratum from the site's answers (never typed in by the site)."""

from __future__ import annotations

from decimal import Decimal

from app.domain.eligibility import EligibilityAnswers
from app.domain.study import NO_STRATUM, PhaseII


def stratum_of(phase_ii: PhaseII, answers: EligibilityAnswers) -> str:
    """The phase II stratum code, e.g. ``SLEDAI>=10/PRED<10``; ``ALL`` when not stratified."""
    if not phase_ii.strata_factors:
        return NO_STRATUM
    levels = [
        factor.level_of(Decimal(getattr(answers, factor.field)))
        for factor in phase_ii.strata_factors
    ]
    return "/".join(levels)
