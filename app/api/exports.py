"""Data exports (docs/exports.md): SDTM-style CSV datasets, CDISC ODM 1.3.2 and FHIR R5.

The unblinded exports are for the unblinded monitor; the blinded variants (no arm, kit content
or lot) also for the sponsor admin, who stands for the sponsor's blinded data management.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Response

from app.api.deps import DB, StudyDep, require
from app.domain.roles import OVERSIGHT, UNBLINDED_MONITORS
from app.services import exports, unblinded_reads
from app.services.actor import Actor
from app.services.transaction import utcnow

router = APIRouter(prefix="/admin/exports", tags=["exports"])

Monitor = Annotated[Actor, Depends(require(*UNBLINDED_MONITORS))]
BlindedReader = Annotated[Actor, Depends(require(*OVERSIGHT))]
Dataset = Literal["dm", "ds", "ex", "ta", "define"]
BlindedDataset = Literal["dm", "ds", "ex", "define"]
MEDIA = {
    "sdtm": "application/zip",
    "odm": "application/xml",
    "fhir": "application/fhir+json",
    "csv": "text/csv",
}
SUFFIX = {"sdtm": "sdtm.zip", "odm": "odm.xml", "fhir": "fhir.json"}


def _doc(media: str) -> dict[int | str, dict[str, Any]]:
    schema: dict[str, str] = {"type": "string"}
    if media == MEDIA["sdtm"]:
        schema["format"] = "binary"
    elif media == MEDIA["fhir"]:
        schema = {"type": "object", "description": "A FHIR R5 Bundle"}
    return {200: {"content": {media: {"schema": schema}}}}


def _download(body: str | bytes, media: str, filename: str) -> Response:
    text_media = media if media == MEDIA["sdtm"] else f"{media}; charset=utf-8"
    return Response(
        body,
        media_type=text_media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _whole(
    db: DB, *, study: StudyDep, actor: Actor, kind: exports.ExportFormat, blinded: bool
) -> Response:
    body = unblinded_reads.export(
        db=db, study=study, actor=actor, kind=kind, blinded=blinded, now=utcnow()
    )
    name = f"{study.code}-{'blinded-' if blinded else ''}{SUFFIX[kind]}"
    return _download(body, MEDIA[kind], name)


def _dataset(db: DB, *, study: StudyDep, actor: Actor, dataset: str, blinded: bool) -> Response:
    text = unblinded_reads.sdtm_dataset(
        db=db, study=study, actor=actor, name=dataset, blinded=blinded, now=utcnow()
    )
    name = f"{study.code}-{'blinded-' if blinded else ''}{dataset}.csv"
    return _download(text, MEDIA["csv"], name)


@router.get("/sdtm.zip", response_class=Response, responses=_doc(MEDIA["sdtm"]))
def sdtm_zip(actor: Monitor, db: DB, study: StudyDep) -> Response:
    """DM, DS, EX and TA as CSV with define.csv (variable descriptions), in one zip."""
    return _whole(db, study=study, actor=actor, kind="sdtm", blinded=False)


@router.get("/sdtm/{dataset}.csv", response_class=Response, responses=_doc(MEDIA["csv"]))
def sdtm_dataset(dataset: Dataset, actor: Monitor, db: DB, study: StudyDep) -> Response:
    """One SDTM-style dataset, or `define` (the variable descriptions), as CSV."""
    return _dataset(db, study=study, actor=actor, dataset=dataset, blinded=False)


@router.get("/odm.xml", response_class=Response, responses=_doc(MEDIA["odm"]))
def odm_xml(actor: Monitor, db: DB, study: StudyDep) -> Response:
    """CDISC ODM 1.3.2: randomization number, date and arm of every subject."""
    return _whole(db, study=study, actor=actor, kind="odm", blinded=False)


@router.get("/fhir.json", response_class=Response, responses=_doc(MEDIA["fhir"]))
def fhir_json(actor: Monitor, db: DB, study: StudyDep) -> Response:
    """FHIR R5 Bundle: the ResearchStudy with its arms and one ResearchSubject per subject."""
    return _whole(db, study=study, actor=actor, kind="fhir", blinded=False)


@router.get("/blinded/sdtm.zip", response_class=Response, responses=_doc(MEDIA["sdtm"]))
def blinded_sdtm_zip(actor: BlindedReader, db: DB, study: StudyDep) -> Response:
    """DM, DS and EX without arm, treatment or lot (no TA), with define.csv, in one zip."""
    return _whole(db, study=study, actor=actor, kind="sdtm", blinded=True)


@router.get("/blinded/sdtm/{dataset}.csv", response_class=Response, responses=_doc(MEDIA["csv"]))
def blinded_sdtm_dataset(
    dataset: BlindedDataset, actor: BlindedReader, db: DB, study: StudyDep
) -> Response:
    """One blinded SDTM-style dataset, or `define`, as CSV."""
    return _dataset(db, study=study, actor=actor, dataset=dataset, blinded=True)


@router.get("/blinded/odm.xml", response_class=Response, responses=_doc(MEDIA["odm"]))
def blinded_odm_xml(actor: BlindedReader, db: DB, study: StudyDep) -> Response:
    """CDISC ODM 1.3.2 with randomization number and date, without arm items."""
    return _whole(db, study=study, actor=actor, kind="odm", blinded=True)


@router.get("/blinded/fhir.json", response_class=Response, responses=_doc(MEDIA["fhir"]))
def blinded_fhir_json(actor: BlindedReader, db: DB, study: StudyDep) -> Response:
    """FHIR R5 Bundle without comparison groups or assigned and actual groups."""
    return _whole(db, study=study, actor=actor, kind="fhir", blinded=True)
