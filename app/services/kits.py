"""Kit lists and kit status changes."""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.orm import Session

from app.db.models import Depot, Kit, KitImport
from app.domain.errors import Conflict, InvalidInput, not_found
from app.domain.kits import KitListError, KitStatus, KitTransitionError, check_transition
from app.domain.kits import parse_kit_list as parse
from app.domain.signatures import Signature, with_signature
from app.domain.study import StudyDefinition
from app.services import audit, environment
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.transaction import utcnow


def decode_upload(raw: bytes) -> str:
    """An uploaded kit list as text: UTF-8 only, so no character is silently replaced."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "invalid_kit_list",
            "The kit list was refused; nothing was imported.",
            problems=[f"the file is not UTF-8 text (byte {exc.start})"],
        ) from None


def import_kit_list(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    text: str,
    today: date,
    signature: Signature | None = None,
) -> dict[str, Any]:
    """Validate the whole file, then store every kit at its depot; the same file twice is a
    no-op (answered with the first import), a file repeating a stored kit number is refused."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    text = environment.accept(session, text, what="kit list")  # the file as signed: `digest`
    previous = session.execute(
        select(KitImport).where(KitImport.sha256 == digest)
    ).scalar_one_or_none()
    if previous is not None:
        return {
            "import_id": previous.id,
            "sha256": digest,
            "kits": previous.kit_count,
            "already_imported": True,
        }
    depots = session.execute(select(Depot.id)).scalars().all()
    try:
        records = parse(text, contents=study.contents, depots=depots, today=today)
    except KitListError as exc:
        raise InvalidInput(
            "invalid_kit_list",
            "The kit list was refused; nothing was imported.",
            problems=exc.problems,
        ) from None
    numbers = [r.kit_number for r in records]
    clashes: list[str] = []
    for start in range(0, len(numbers), 500):
        clashes += (
            session.execute(
                select(Kit.kit_number).where(Kit.kit_number.in_(numbers[start : start + 500]))
            )
            .scalars()
            .all()
        )
    if clashes:
        raise InvalidInput(
            "invalid_kit_list",
            "The kit list was refused; nothing was imported.",
            problems=[f"kit number {n} exists already" for n in sorted(clashes)],
        )
    now = utcnow()
    batch = KitImport(
        sha256=digest, kit_count=len(records), imported_at=now, imported_by=actor.username
    )
    session.add(batch)
    session.flush()
    session.execute(
        insert(Kit),
        [
            {
                "kit_number": r.kit_number,
                "content": r.content,
                "lot": r.lot,
                "expiry_date": r.expiry_date,
                "status": KitStatus.AT_DEPOT.value,
                "depot_id": r.depot,
                "site_id": None,
                "import_id": batch.id,
                "updated_at": now,
            }
            for r in records
        ],
    )
    audit.record(
        session,
        actor=actor,
        action="kits.import",
        entity="kit_import",
        entity_id=batch.id,
        before=None,
        after=with_signature(
            {
                "sha256": digest,
                "kits": len(records),
                # what each kit is, so that the replay tells an edited kit row from the import
                # (only the unblinded monitor reads the audit trail: docs/threat-model.md)
                "kit_list": sorted(
                    [r.kit_number, r.content, r.lot, r.expiry_date.isoformat()] for r in records
                ),
            },
            signature,
        ),
    )
    return {
        "import_id": batch.id,
        "sha256": digest,
        "kits": len(records),
        "already_imported": False,
    }


def get_kit(session: Session, *, kit_number: str, actor: Actor) -> Kit:
    """The kit, or 404 if it does not exist or is at a site the user cannot see."""
    kit = session.get(Kit, kit_number)
    visible = kit is not None and (
        actor.sees_site(kit.site_id) if kit.site_id else actor.sees_every_site
    )
    if kit is None or not visible:
        raise not_found(f"Kit {kit_number}")
    return kit


def move(
    session: Session,
    *,
    actor: Actor,
    kit: Kit,
    target: KitStatus,
    by: str,
    reason: str | None,
    **context: Any,
) -> None:
    """Change a kit's status if the state machine allows `by` to; audited."""
    current = KitStatus(kit.status)
    try:
        check_transition(
            kit.kit_number, current=current, target=target, by=by, at_site=kit.site_id is not None
        )
    except KitTransitionError as exc:
        raise Conflict(
            "invalid_kit_transition",
            str(exc),
            from_status=str(exc.current),
            to_status=str(exc.target),
        ) from None
    kit.status = target.value
    kit.updated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=f"kit.{target.value}",
        entity="kit",
        entity_id=kit.kit_number,
        before={"status": current.value},
        after={"status": target.value, **context},
        reason=reason,
    )


def blinded_kit(kit: Kit) -> dict[str, Any]:
    """What a blinded role may see of a kit: number, status, expiry, where it is."""
    return blinded_view(kit.kit_number, kit.status, kit.expiry_date, kit.site_id, kit.depot_id)


def usable_after(day: date, window_days: int) -> ColumnElement[bool]:
    """`usable_on` in SQL, for kits counted rather than read one by one: the kit expires later
    than `day` + the window (do-not-dispense or do-not-ship)."""
    return Kit.expiry_date > day + timedelta(days=window_days)


BLINDED_COLUMNS = (Kit.kit_number, Kit.status, Kit.expiry_date, Kit.site_id, Kit.depot_id)
"""The columns `blinded_view` takes, in its order: a long list reads these, not whole kits."""


def blinded_view(
    kit_number: str, status: str, expiry_date: date, site_id: str | None, depot_id: str | None
) -> dict[str, Any]:
    return {
        "kit_number": kit_number,
        "status": status,
        "expiry_date": expiry_date.isoformat(),
        "site_id": site_id,
        "depot_id": depot_id if site_id is None else None,
    }


def unblinded_kit(kit: Kit) -> dict[str, Any]:
    return {
        **blinded_kit(kit),
        "content": kit.content,
        "lot": kit.lot,
        "depot_id": kit.depot_id,
        "updated_at": iso_utc(kit.updated_at),
    }
