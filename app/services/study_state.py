"""Reading and locking the study row and its stage state."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import Cohort, Study, StudyVersion
from app.db.randomization_counts import RandomizationCount
from app.domain.errors import Unavailable
from app.domain.stages import CohortStatus
from app.domain.study import StudyDefinition, parse_study
from app.services import definitions
from app.services.transaction import utcnow
from app.services.unit_reads import held, hold, once


def lock_study_exclusive(session: Session) -> Study:
    """Lock the study row for a stage change: waits for every randomization in progress."""
    study = session.execute(select(Study).with_for_update()).scalar_one_or_none()
    if study is None:
        raise Unavailable("study_not_loaded", "No study is loaded in this database.")
    return hold(session, Study, study)


def lock_study_shared(session: Session) -> Study:
    """Lock the study row in share mode: randomizations do not wait for each other, a stage
    change (`lock_study_exclusive`) waits for those in progress and they wait for it."""
    study = session.execute(select(Study).with_for_update(read=True)).scalar_one_or_none()
    if study is None:
        raise Unavailable("study_not_loaded", "No study is loaded in this database.")
    return hold(session, Study, study)


def current_study(session: Session) -> Study:
    """The study row; the one this transaction locked or read already, if any."""
    kept: Study | None = held(session, Study)
    if kept is not None:
        return kept
    study = session.execute(select(Study)).scalar_one_or_none()
    if study is None:
        raise Unavailable("study_not_loaded", "No study is loaded in this database.")
    return hold(session, Study, study)


def load_definition(session: Session) -> StudyDefinition:
    """The version of the study definition in effect today (the one stored when the study was
    loaded, until an amendment takes effect: app/services/study_versions.py)."""
    definition_json = session.execute(select(Study.definition_json)).scalar_one_or_none()
    if definition_json is None:
        raise Unavailable("study_not_loaded", "No study is loaded in this database.")
    if session.execute(select(StudyVersion.id).limit(1)).first() is None:
        return parse_study(json.loads(definition_json))
    return definitions.in_effect(session, on=utcnow().date())[1]


def cohorts(session: Session) -> list[Cohort]:
    """The cohort rows in their order, read once per transaction while none is changed."""
    return once(
        session,
        Cohort,
        lambda: list(session.execute(_COHORTS).scalars()),
        of=(Cohort,),
    )


def cohort_statuses(session: Session) -> dict[str, CohortStatus]:
    return {c.code: CohortStatus(c.status) for c in cohorts(session)}


def randomized_counts(session: Session, *, scope: str, stage: str) -> tuple[int, int, int]:
    """Subjects randomized in the scope, in the stage and in all, from the kept counts
    (app/db/randomization_counts.py): a few rows, however large the study."""
    return counts_in(randomized_by_scope_and_stage(session), scope=scope, stage=stage)


def counts_in(
    randomized: Mapping[tuple[str, str], int], *, scope: str, stage: str
) -> tuple[int, int, int]:
    """`randomized_counts` from counts per scope and stage already read."""
    rows = randomized.items()
    return (
        sum(n for (in_scope, _), n in rows if in_scope == scope),
        sum(n for (_, in_stage), n in rows if in_stage == stage),
        sum(n for _, n in rows),
    )


def per_scope(randomized: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Counts per scope and stage summed per scope."""
    out: dict[str, int] = {}
    for (scope, _), n in randomized.items():
        out[scope] = out.get(scope, 0) + n
    return out


def count_randomized(session: Session, **where: str) -> int:
    """Subjects randomized, of a scope, stratum or stage if given (the kept counts)."""
    query = select(func.coalesce(func.sum(RandomizationCount.randomized), 0))
    for column, value in where.items():
        query = query.where(getattr(RandomizationCount, column) == value)
    return int(session.execute(query).scalar_one())


def randomized_by_scope(session: Session) -> dict[str, int]:
    """Subjects randomized per scope (the kept counts)."""
    return per_scope(randomized_by_scope_and_stage(session))


_BY_SCOPE_AND_STAGE = select(
    RandomizationCount.scope, RandomizationCount.stage, func.sum(RandomizationCount.randomized)
).group_by(RandomizationCount.scope, RandomizationCount.stage)
_COHORTS = select(Cohort).order_by(Cohort.position)


def randomized_by_scope_and_stage(session: Session) -> dict[tuple[str, str], int]:
    """Subjects randomized per scope and stage (the kept counts)."""
    rows = session.execute(_BY_SCOPE_AND_STAGE).all()
    return {(scope, stage): int(total) for scope, stage, total in rows}
