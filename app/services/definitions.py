"""Which version of the study definition is in effect on a day, read from `study_versions`
(parsed once per process and version: a definition never changes once stored)."""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import StudyVersion
from app.domain import study_versions as rules
from app.domain.errors import Unavailable
from app.domain.study import StudyDefinition, parse_study
from app.services.unit_reads import once


@lru_cache(maxsize=32)
def _parsed(definition_json: str) -> StudyDefinition:
    return parse_study(json.loads(definition_json))


def definition(row: StudyVersion) -> StudyDefinition:
    return _parsed(row.definition_json)


def rows(session: Session) -> list[StudyVersion]:
    """Every version, oldest first."""
    found = list(session.execute(select(StudyVersion).order_by(StudyVersion.version)).scalars())
    if not found:
        raise Unavailable("study_not_loaded", "No study is loaded in this database.")
    return found


_BY_FINGERPRINT: dict[str, StudyDefinition] = {}
"""Parsed definitions by their fingerprint (equal fingerprints, equal definitions), so that the
definition's text is read and hashed only the first time (every randomization asks)."""


_VERSIONS = select(
    StudyVersion.version, StudyVersion.effective_date, StudyVersion.definition_sha256
).order_by(StudyVersion.version)


def in_effect(session: Session, *, on: date) -> tuple[int, StudyDefinition]:
    """The version in effect on `on`, and its definition."""
    versions = once(
        session,
        StudyVersion,
        lambda: session.execute(_VERSIONS).all(),
        of=(StudyVersion,),
    )
    if not versions:
        raise Unavailable("study_not_loaded", "No study is loaded in this database.")
    number = rules.version_on([(v.version, v.effective_date) for v in versions], on)
    fingerprint = next(v.definition_sha256 for v in versions if v.version == number)
    found = _BY_FINGERPRINT.get(fingerprint)
    if found is None:
        text = session.execute(
            select(StudyVersion.definition_json).where(StudyVersion.version == number)
        ).scalar_one()
        found = _BY_FINGERPRINT.setdefault(fingerprint, _parsed(text))
    return number, found


def latest(session: Session) -> tuple[int, StudyDefinition]:
    """The newest version (perhaps not in effect yet), and its definition."""
    row = rows(session)[-1]
    return row.version, definition(row)
