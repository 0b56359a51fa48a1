"""Data exports (docs/exports.md): SDTM datasets (SAS XPT v5 with define.xml, or CSV), CDISC
ODM 1.3.2 and FHIR R5.

The unblinded exports are for the unblinded monitor; the blinded variants (no arm, kit content
or lot) also for the sponsor admin, who stands for the sponsor's blinded data management.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from app.api.deps import DB, StudyDep, require
from app.domain.roles import OVERSIGHT, UNBLINDED_MONITORS
from app.services import exports, unblinded_reads
from app.services.actor import Actor
from app.services.transaction import utcnow

router = APIRouter(prefix="/admin/exports", tags=["exports"])

Monitor = Annotated[Actor, Depends(require(*UNBLINDED_MONITORS))]
BlindedReader = Annotated[Actor, Depends(require(*OVERSIGHT))]
Dataset = Literal["dm", "ds", "ex", "ta", "te", "tv", "define"]
SdtmFormat = Annotated[
    Literal["csv", "xpt"],
    Query(
        alias="format",
        description="xpt: SAS XPT v5 datasets with a Define-XML 2.1 (for Pinnacle 21, CORE and "
        "submissions); csv: CSV datasets with define.csv",
    ),
]
MEDIA = {
    "sdtm": "application/zip",
    "sdtm-xpt": "application/zip",
    "odm": "application/xml",
    "fhir": "application/fhir+json",
    "csv": "text/csv",
}
SUFFIX = {"sdtm": "sdtm.zip", "sdtm-xpt": "sdtm-xpt.zip", "odm": "odm.xml", "fhir": "fhir.json"}


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
def sdtm_zip(actor: Monitor, db: DB, study: StudyDep, file_format: SdtmFormat = "csv") -> Response:
    """DM, DS, EX, TA, TE and TV in one zip: SAS XPT v5 with define.xml (`format=xpt`) or CSV
    with define.csv."""
    kind: exports.ExportFormat = "sdtm-xpt" if file_format == "xpt" else "sdtm"
    return _whole(db, study=study, actor=actor, kind=kind, blinded=False)


@router.get("/sdtm/{dataset}.csv", response_class=Response, responses=_doc(MEDIA["csv"]))
def sdtm_dataset(dataset: Dataset, actor: Monitor, db: DB, study: StudyDep) -> Response:
    """One SDTM-style dataset, or `define` (the variable descriptions), as CSV."""
    return _dataset(db, study=study, actor=actor, dataset=dataset, blinded=False)


SubjectKey = Annotated[
    Literal["usubjid", "subject-label"],
    Query(description="SubjectKey: USUBJID, or the subject label the EDC shows (screening number)"),
]


def _odm(db: DB, *, study: StudyDep, actor: Actor, blinded: bool, subject_key: str) -> Response:
    body = unblinded_reads.odm(
        db=db, study=study, actor=actor, blinded=blinded, now=utcnow(), subject_key=subject_key
    )
    name = f"{study.code}-{'blinded-' if blinded else ''}{SUFFIX['odm']}"
    return _download(body, MEDIA["odm"], name)


@router.get("/odm.xml", response_class=Response, responses=_doc(MEDIA["odm"]))
def odm_xml(
    actor: Monitor, db: DB, study: StudyDep, subject_key: SubjectKey = "usubjid"
) -> Response:
    """CDISC ODM 1.3.2: randomization number, date and arm of every subject."""
    return _odm(db, study=study, actor=actor, blinded=False, subject_key=subject_key)


@router.get("/fhir.json", response_class=Response, responses=_doc(MEDIA["fhir"]))
def fhir_json(actor: Monitor, db: DB, study: StudyDep) -> Response:
    """FHIR R5 Bundle: the ResearchStudy with its arms and one ResearchSubject per subject."""
    return _whole(db, study=study, actor=actor, kind="fhir", blinded=False)


@router.get("/blinded/sdtm.zip", response_class=Response, responses=_doc(MEDIA["sdtm"]))
def blinded_sdtm_zip(
    actor: BlindedReader, db: DB, study: StudyDep, file_format: SdtmFormat = "csv"
) -> Response:
    """The datasets without arm, treatment or lot (one BLINDED arm in TA), XPT or CSV."""
    kind: exports.ExportFormat = "sdtm-xpt" if file_format == "xpt" else "sdtm"
    return _whole(db, study=study, actor=actor, kind=kind, blinded=True)


@router.get("/blinded/sdtm/{dataset}.csv", response_class=Response, responses=_doc(MEDIA["csv"]))
def blinded_sdtm_dataset(
    dataset: Dataset, actor: BlindedReader, db: DB, study: StudyDep
) -> Response:
    """One blinded SDTM-style dataset, or `define`, as CSV."""
    return _dataset(db, study=study, actor=actor, dataset=dataset, blinded=True)


@router.get("/blinded/odm.xml", response_class=Response, responses=_doc(MEDIA["odm"]))
def blinded_odm_xml(
    actor: BlindedReader, db: DB, study: StudyDep, subject_key: SubjectKey = "usubjid"
) -> Response:
    """CDISC ODM 1.3.2 with randomization number and date, without arm items."""
    return _odm(db, study=study, actor=actor, blinded=True, subject_key=subject_key)


@router.get("/blinded/fhir.json", response_class=Response, responses=_doc(MEDIA["fhir"]))
def blinded_fhir_json(actor: BlindedReader, db: DB, study: StudyDep) -> Response:
    """FHIR R5 Bundle without comparison groups or assigned and actual groups."""
    return _whole(db, study=study, actor=actor, kind="fhir", blinded=True)
