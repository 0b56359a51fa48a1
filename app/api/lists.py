"""Randomization list import over HTTP (the unblinded monitor, standing for the unblinded
statistician, as `irt lists import`): the body is the file, the signature is in headers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from app.api.deps import DB, SettingsDep, StudyDep, require
from app.api.schemas import ListCommitmentOut
from app.domain.errors import validation_error
from app.domain.roles import UNBLINDED_MONITORS
from app.domain.study import PHASE_II_SCOPE
from app.services import list_import
from app.services.actor import Actor
from app.services.signatures import SignatureInput

router = APIRouter(prefix="/admin", tags=["admin"])

Monitor = Annotated[Actor, Depends(require(*UNBLINDED_MONITORS))]
Pairs = Annotated[list[str], Query(max_length=20)]


def _pairs(values: list[str], name: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key.strip() or not target.strip() or len(value) > 200:
            raise validation_error(name, f"{name} {value[:200]!r}: write it as FROM=TO")
        out[key.strip()] = target.strip()
    return out


@router.post(
    "/lists/import",
    status_code=201,
    response_model=list[ListCommitmentOut],
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def import_list(
    request: Request,
    actor: Monitor,
    db: DB,
    study: StudyDep,
    settings: SettingsDep,
    signature_password: Annotated[
        str, Header(alias="Signature-Password", max_length=200, description="Your own password.")
    ],
    signature_meaning: Annotated[
        str | None, Header(alias="Signature-Meaning", max_length=500)
    ] = None,
    list_format: Annotated[
        Literal["canonical", "redcap", "sealed-envelope"], Query(alias="format")
    ] = "canonical",
    scope: Annotated[str, Query(max_length=8, pattern=r"^[A-Z0-9]+$")] = PHASE_II_SCOPE,
    column: Pairs = [],  # noqa: B006 - FastAPI copies query defaults
    dag: Pairs = [],  # noqa: B006
) -> Any:
    """A list file as text/csv, signed in headers: "I approve the randomization list file with
    SHA-256 <hex of the body> for import". `column=THEIRS=OURS` maps a file's own column names,
    `dag=ID=SITE` REDCap's Data Access Group ids (docs/randomization.md, "Other formats"). All
    rows valid or nothing is imported: a 422 problem names every row and column at fault."""
    raw = await request.body()
    return await run_in_threadpool(
        list_import.import_list,
        db=db,
        study=study,
        actor=actor,
        raw=raw,
        file_format=list_format,
        scope=scope,
        columns=_pairs(column, "column"),
        dag_sites=_pairs(dag, "dag"),
        settings=settings,
        signature=SignatureInput(password=signature_password, meaning=signature_meaning),
    )
