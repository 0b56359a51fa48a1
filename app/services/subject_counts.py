"""The kept subject counts (app/db/subject_counts.py): what the enrolment report reads, and
the monitor's check that they still equal the subjects they count."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.db.models import Randomization, Subject
from app.db.subject_counts import SubjectCount
from app.domain.audit_replay import Discrepancy
from app.domain.reports import Enrolled

Key = tuple[str, str, str, str]
"""site, status, scope, stratum ('' before randomization)."""

_COUNTS = select(
    SubjectCount.site_id,
    SubjectCount.status,
    SubjectCount.scope,
    SubjectCount.stratum,
    SubjectCount.subjects,
).where(SubjectCount.subjects != 0)
_OF_SITES = _COUNTS.where(SubjectCount.site_id.in_(bindparam("site_ids", expanding=True)))


def enrolled(session: Session, *, site_ids: Sequence[str] | None) -> list[Enrolled]:
    """The subjects of `site_ids` (None: of every site) per scope, stratum and status: a few
    rows per site. A study-level reader asks for every site without naming each one (670
    names bound and sent per report otherwise)."""
    if site_ids is not None and not site_ids:
        return []
    # plain rows through the connection: the ORM's result handling cost more than the query
    connection = session.connection()
    rows = (
        connection.execute(_COUNTS)
        if site_ids is None
        else connection.execute(_OF_SITES, {"site_ids": list(site_ids)})
    )
    return [
        Enrolled(site, scope or None, stratum or None, status, int(n))
        for site, status, scope, stratum, n in rows
    ]


def kept(session: Session) -> dict[Key, int]:
    return {
        (site, status, scope, stratum): int(n)
        for site, status, scope, stratum, n in session.execute(_COUNTS)
    }


def counted(session: Session) -> dict[Key, int]:
    """The same counts from the subjects and randomizations themselves (a scan of both)."""
    scope = func.coalesce(Randomization.scope, "")
    stratum = func.coalesce(Randomization.stratum, "")
    rows = session.execute(
        select(Subject.site_id, Subject.status, scope, stratum, func.count())
        .outerjoin(Randomization, Randomization.subject_id == Subject.id)
        .group_by(Subject.site_id, Subject.status, scope, stratum)
    )
    return {(site, status, sc, st): int(n) for site, status, sc, st, n in rows}


def drift(session: Session) -> list[Discrepancy]:
    """Every kept count that differs from the subjects it counts (the triggers keep them equal;
    a count edited by hand would misreport enrolment to the sponsor)."""
    have, count = kept(session), counted(session)
    return [
        Discrepancy(
            "subject_counts",
            "/".join(key),
            "subjects",
            str(have.get(key, 0)),
            str(count.get(key, 0)),
            None,
            "the kept count differs from the subjects it counts",
        )
        for key in sorted(set(have) | set(count))
        if have.get(key, 0) != count.get(key, 0)
    ]
