"""Reports (read only): enrolment against caps, inventory and expiry outlook, unblinding log.

Each report is a JSON-ready dict (or list) scoped to the reader's sites, and a CSV text of the
same rows. Nothing here is split by arm or content; the unblinding log names the treatment only
when the caller asks for the unblinded variant (the unblinded monitor). The CSV cells are
neutralised (`csv_text`): a reason typed as `=HYPERLINK(...)` is written `'=HYPERLINK(...)`."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Depot, Site
from app.domain import reports as rules
from app.domain.csv_cells import csv_text
from app.domain.errors import not_found
from app.domain.kits import KitStatus
from app.domain.lifecycle import SubjectStatus
from app.domain.study import PHASE_II_SCOPE, StudyDefinition
from app.services import caps, kit_counts, subject_counts
from app.services.actor import Actor
from app.services.emergency_unblinding import unblinding_log
from app.services.stages import phase2_view
from app.services.study_state import cohort_statuses, randomized_by_scope
from app.services.transaction import utcnow


def _fields(line: object) -> dict[str, Any]:
    """A report line's fields, shallow. `dataclasses.asdict` deep-copies each line's dicts,
    which was a quarter of the sponsor's enrolment report over 670 sites; the lines are built
    for this one answer and shared with nothing."""
    return dict(vars(line))


def visible_sites(session: Session, *, actor: Actor, site_id: str | None = None) -> list[str]:
    """The sites the reader may see (one, when `site_id` names one of them; else 404)."""
    ids = [s for s in session.execute(select(Site.id).order_by(Site.id)).scalars()]
    visible = [s for s in ids if actor.sees_site(s)]
    if site_id is None:
        return visible
    if site_id not in visible:
        raise not_found(f"Site {site_id}")
    return [site_id]


# --- enrolment --------------------------------------------------------------------------------


def enrolment(session: Session, *, study: StudyDefinition, actor: Actor) -> dict[str, Any]:
    """Stages against their caps in force (study-wide), strata and sites (the reader's sites)."""
    _, study = caps.effective_definition(session, on=utcnow().date())
    site_ids = visible_sites(session, actor=actor)
    every = actor.sees_every_site
    subjects = subject_counts.enrolled(session, site_ids=None if every else site_ids)
    study_wide = randomized_by_scope(session)
    statuses: dict[str, str] = {code: str(s) for code, s in cohort_statuses(session).items()}
    statuses[PHASE_II_SCOPE] = "open" if phase2_view(session)["dose_mg_per_kg"] else "planned"
    report = rules.enrolment(
        study, subjects=subjects, statuses=statuses, site_ids=site_ids, study_wide=study_wide
    )
    return {
        "site_ids": site_ids,
        "target": report.target,
        "registered": report.registered,
        "randomized": report.randomized,
        "by_status": report.by_status,
        "stages": [{**_fields(line), "remaining": line.remaining} for line in report.stages],
        "strata": [_fields(line) for line in report.strata],
        "sites": [_fields(line) for line in report.sites],
    }


ENROLMENT_COLUMNS = (
    "level",
    "stage",
    "scope",
    "stratum",
    "site_id",
    "status",
    "registered",
    "randomized",
    "cap",
    "remaining",
    *(f"status_{status.value}" for status in SubjectStatus),
)


def enrolment_csv(report: dict[str, Any]) -> str:
    """One row per stage, stratum, site, and site and scope (`level` says which)."""
    rows: list[dict[str, Any]] = [{"level": "stage", **s} for s in report["stages"]]
    rows += [{"level": "stratum", **s} for s in report["strata"]]
    for site in report["sites"]:
        statuses = {f"status_{k}": n for k, n in site.get("by_status", {}).items()}
        rows.append({"level": "site", **site, **statuses})
        rows += [
            {"level": "site_scope", "site_id": site["site_id"], "scope": scope, "randomized": n}
            for scope, n in site["by_scope"].items()
        ]
    return csv_text(ENROLMENT_COLUMNS, ([row.get(c) for c in ENROLMENT_COLUMNS] for row in rows))


# --- inventory and expiry outlook ---------------------------------------------------------------


def inventory(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    today: date,
    site_id: str | None = None,
) -> dict[str, Any]:
    """Kits per status and stock per expiry window at each of the reader's sites (and, for
    study-level roles, each depot). Totals only: never by content or lot."""
    site_ids = visible_sites(session, actor=actor, site_id=site_id)
    locations = [(s, "site") for s in site_ids]
    every = actor.sees_every_site and site_id is None
    if every:
        depots = session.execute(select(Depot.id).order_by(Depot.id)).scalars()
        locations += [(d, "depot") for d in depots]
    kits = kit_counts.stock(session, names=None if every else [name for name, _ in locations])
    supply = study.supply
    windows = rules.expiry_windows(supply.do_not_dispense_days, supply.do_not_ship_days)
    outlook = rules.expiry_outlook(kits, locations=locations, today=today, windows=windows)
    return {
        "as_of": today.isoformat(),
        "do_not_dispense_days": supply.do_not_dispense_days,
        "do_not_ship_days": supply.do_not_ship_days,
        "windows": [w.label for w in windows],
        "locations": [
            {
                **_fields(line),
                "next_expiry": line.next_expiry.isoformat() if line.next_expiry else None,
            }
            for line in outlook
        ],
    }


def inventory_csv(report: dict[str, Any]) -> str:
    """One row per location: kits per status, stock, next expiry, stock per expiry window."""
    statuses = [s.value for s in KitStatus]
    header = ["location", "kind", "total", *statuses, "in_stock", "next_expiry"]
    header += report["windows"]
    return csv_text(
        header,
        (
            [line["location"], line["kind"], line["total"]]
            + [line["by_status"].get(s, 0) for s in statuses]
            + [line["in_stock"], line["next_expiry"]]
            + [line["by_window"][w] for w in report["windows"]]
            for line in report["locations"]
        ),
    )


# --- unblinding log ---------------------------------------------------------------------------


def unblindings(
    session: Session, *, study: StudyDefinition, actor: Actor, with_treatment: bool
) -> list[dict[str, Any]]:
    """Every emergency unblinding at the reader's sites; the treatment only when asked for."""
    rows = [r for r in unblinding_log(session, study) if actor.sees_site(r["site_id"])]
    if not with_treatment:
        rows = [{k: v for k, v in r.items() if k != "treatment"} for r in rows]
    return rows


UNBLINDING_COLUMNS = (
    "subject_id",
    "site_id",
    "screening_number",
    "randomization_number",
    "unblinded_at",
    "unblinded_by",
    "reason_category",
    "reason",
)


def unblindings_csv(rows: list[dict[str, Any]], with_treatment: bool) -> str:
    header = (*UNBLINDING_COLUMNS, "treatment") if with_treatment else UNBLINDING_COLUMNS
    return csv_text(header, ([row[c] for c in header] for row in rows))
