"""The sponsor admin's use cases: activating a site, opening and closing a cohort, and the phase
II dose, called by the API (app/api/admin.py) and the admin pages alike.

Each one owns its unit of work (`writing`: the change and its audit entry commit together) and
answers a typed result (app/services/results.py). Stage decisions and the kit list import are
signed (app/services/signatures.py): the signature is checked before the transaction starts.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any, Literal

from app.db.engine import Database
from app.domain import signatures as meanings
from app.domain.study import StudyDefinition
from app.services import attempts, kits, signatures, sites, stages
from app.services.actor import Actor
from app.services.kit_counts import fold_kit_counts
from app.services.results import CohortOut, Phase2Out, SiteActivatedOut, SiteOut
from app.services.resupply_checks import check_every_site
from app.services.signatures import SignatureInput
from app.services.transaction import utcnow, writing
from app.settings import Settings


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
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="site.activate_refused",
            entity="site",
            entity_id=site_id,
            sent={"depot_id": depot_id, "reason": reason},
        ),
        writing(db) as session,
    ):
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


def set_site_timezone(*, db: Database, actor: Actor, site_id: str, timezone: str) -> SiteOut:
    """Set the site's IANA time zone (its local dates in the exports and pages)."""
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="site.timezone_refused",
            entity="site",
            entity_id=site_id,
            sent={"timezone": timezone},
        ),
        writing(db) as session,
    ):
        site = sites.set_timezone(session, actor=actor, site_id=site_id, timezone=timezone)
    return SiteOut.model_validate(site)


def change_cohort(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    code: str,
    action: Literal["open", "close"],
    reason: str,
    settings: Settings,
    signature: SignatureInput,
) -> CohortOut:
    """Open or close a cohort, signed by the sponsor and audited with the reason."""
    signed = signatures.sign(
        db,
        settings=settings,
        actor=actor,
        given=signature,
        meaning=meanings.cohort_meaning(code=code, action=action),
    )
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action=f"cohort.{action}_refused",
            entity="cohort",
            entity_id=code,
            sent={"action": action, "reason": reason},
        ),
        writing(db) as session,
    ):
        cohort = stages.change_cohort(
            session,
            study=study,
            actor=actor,
            code=code,
            action=action,
            reason=reason,
            signature=signed,
        )
    if action == "open":
        check_every_site(db=db, study=study, actor=actor)  # stock for the cohort's dose
    return CohortOut.model_validate(cohort)


def select_phase2_dose(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    dose_mg_per_kg: Decimal,
    reason: str,
    settings: Settings,
    signature: SignatureInput,
) -> Phase2Out:
    """Record the phase II dose once (every cohort closed), signed and audited with the reason."""
    signed = signatures.sign(
        db,
        settings=settings,
        actor=actor,
        given=signature,
        meaning=meanings.phase2_dose_meaning(dose_mg_per_kg),
    )
    with (
        attempts.refusals_recorded(
            db,
            actor=actor,
            action="phase2.select_dose_refused",
            entity="study",
            entity_id="phase2",
            sent={"dose_mg_per_kg": dose_mg_per_kg, "reason": reason},
        ),
        writing(db) as session,
    ):
        phase2 = stages.select_phase2_dose(
            session, study=study, actor=actor, dose=dose_mg_per_kg, reason=reason, signature=signed
        )
    check_every_site(db=db, study=study, actor=actor)  # stock phase II's pool for its subjects
    return Phase2Out.model_validate(phase2)


def import_kit_list(
    *,
    db: Database,
    study: StudyDefinition,
    actor: Actor,
    text: str,
    settings: Settings,
    signature: SignatureInput,
) -> dict[str, Any]:
    """Import the packager's kit list, signed under the file's SHA-256 (the meaning names the
    very file approved)."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    signed = signatures.sign(
        db,
        settings=settings,
        actor=actor,
        given=signature,
        meaning=meanings.kit_list_meaning(digest),
    )
    with writing(db) as session:
        imported = kits.import_kit_list(
            session, study=study, actor=actor, text=text, today=utcnow().date(), signature=signed
        )
    fold_kit_counts(db)  # thousands of kits at once: kept before the stock report reads them
    return imported
