"""The sponsor admin's use cases: activating a site, opening and closing a cohort, and the phase
II dose, called by the API (app/api/admin.py) and the admin pages alike.

Each one owns its unit of work (`writing`: the change and its audit entry commit together) and
answers a typed result (app/services/results.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from app.db.engine import Database
from app.domain.study import StudyDefinition
from app.services import sites, stages
from app.services.actor import Actor
from app.services.results import CohortOut, Phase2Out, SiteActivatedOut
from app.services.transaction import utcnow, writing


def activate_site(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    site_id: str,
    depot_id: str | None,
    reason: str,
) -> SiteActivatedOut:
    """Open a site for enrolment (supplied by `depot_id`, or the depot it has); its initial
    shipment is requested from that depot."""
    with writing(db) as session:
        site = sites.activate(
            session,
            study=study,
            actor=actor,
            site_id=site_id,
            depot_id=depot_id,
            reason=reason,
            today=utcnow().date(),
        )
    return SiteActivatedOut.model_validate(site)


def change_cohort(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    code: str,
    action: Literal["open", "close"],
    reason: str,
) -> CohortOut:
    """Open or close a cohort, audited with the reason."""
    with writing(db) as session:
        cohort = stages.change_cohort(
            session, study=study, actor=actor, code=code, action=action, reason=reason
        )
    return CohortOut.model_validate(cohort)


def select_phase2_dose(
    *, db: Database, study: StudyDefinition, actor: Actor, dose_mg_per_kg: Decimal, reason: str
) -> Phase2Out:
    """Record the phase II dose once (every cohort closed), audited with the reason."""
    with writing(db) as session:
        phase2 = stages.select_phase2_dose(
            session, study=study, actor=actor, dose=dose_mg_per_kg, reason=reason
        )
    return Phase2Out.model_validate(phase2)
