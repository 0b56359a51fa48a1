"""The sponsor admin's amendments: the caps in force (moving unused places of closed cohorts to
phase II) and the versions of the study definition (docs/randomization.md, "Caps" and
"Versions"). Neither names an arm: blinded admins may read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from app.api.deps import DB, IdempotencyKeyHeader, SettingsDep, require
from app.api.schemas import CapsIn, StudyVersionIn
from app.domain.roles import OVERSIGHT, SPONSOR_ADMINS
from app.services import amendment_commands, caps
from app.services.actor import Actor
from app.services.caps import CapsOut
from app.services.commands import Retry
from app.services.study_versions import VersionOut

router = APIRouter(prefix="/admin", tags=["admin"])

Sponsor = Annotated[Actor, Depends(require(*SPONSOR_ADMINS))]
Admin = Annotated[Actor, Depends(require(*OVERSIGHT))]


@router.get("/caps", response_model=CapsOut)
def caps_in_force(actor: Sponsor, db: DB) -> Any:
    """Every scope's cap, randomized count and unused places, against the study's target."""
    with db.read() as session:
        return caps.caps_view(session)


@router.post("/caps", response_model=CapsOut)
def change_caps(
    body: CapsIn,
    actor: Sponsor,
    db: DB,
    settings: SettingsDep,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Any:
    """Signed: "I approve these randomization caps: C3 5, P2 197". Needs an Idempotency-Key.
    Refusals (409): `cap_below_randomized`, `cohort_closed`, `over_target`, `no_change`,
    `list_too_short`."""
    done = amendment_commands.change_caps(
        db=db,
        actor=actor,
        retry=Retry(key=idempotency_key, lease_seconds=settings.idempotency_lease_seconds),
        caps_asked=body.caps,
        reason=body.reason,
        settings=settings,
        signature=body.signature.given(),
    )
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return done.result


@router.get("/study-versions", response_model=list[VersionOut])
def study_versions(actor: Admin, db: DB) -> Any:
    """Every version of the study definition, with its effective date and what it changed."""
    return amendment_commands.list_versions(db=db)


@router.post("/study-versions", status_code=201, response_model=VersionOut)
def load_study_version(body: StudyVersionIn, actor: Sponsor, db: DB, settings: SettingsDep) -> Any:
    """Signed: "I approve the study definition with SHA-256 <sha> as a new version in effect
    from <date>". Refusals: `invalid_definition`, `amendment_not_allowed` (422),
    `changes_the_past`, `no_change`, `cap_below_randomized` (409)."""
    return amendment_commands.load_study_version(
        db=db,
        actor=actor,
        definition_toml=body.definition_toml,
        effective_date=body.effective_date,
        reason=body.reason,
        settings=settings,
        signature=body.signature.given(),
    )
