"""Randomization lists in the database: generate, import, verify, commitments.

The seed of a generated list is never stored: the list row keeps its SHA-256 (`seed_sha256`),
and verification regenerates a list only from a seed given again (docs/randomization.md,
"Seeds")."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import AuditEntry, RandomizationList, Site
from app.db.models import Slot as SlotRow
from app.domain import list_formats as lf
from app.domain import randomization_list as rl
from app.domain import seeds
from app.domain.errors import Conflict, InvalidInput, not_found, validation_error
from app.domain.signatures import Signature, with_signature
from app.domain.study import PHASE_II_SCOPE, StudyDefinition
from app.services import audit, environment
from app.services.actor import Actor
from app.services.blinded_views import iso_utc
from app.services.transaction import utcnow


def new_seed() -> str:
    """A fresh seed of 256 bits (64 hex digits) from the operating system's random source."""
    return secrets.token_hex(seeds.GENERATED_SEED_BYTES)


def supplied_seed(text: str) -> str:
    """The seed a person supplied (a file's or stdin's text), refused below 128 bits. The
    edges call this; `generate` itself takes any seed, so that tests, the demo and the
    benchmarks can use fixed ones."""
    seed = seeds.read_seed(text)
    seeds.check_strength(seed)
    return seed


def given_seed(text: str) -> str:
    """A seed given again to verify lists: not judged for strength, only compared with the
    commitment (lists generated before the 128-bit rule may have weaker seeds)."""
    return seeds.read_seed(text)


def generate(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    seed: str,
    signature: Signature | None = None,
) -> list[str]:
    """Generate every scope's list from the secret seed; return the scopes created. Only the
    seed's SHA-256 is stored. A person signs it (`signature`); the demo's set-up does not."""
    lists = rl.generate_all(seed, study)
    _store_all(
        session,
        study=study,
        actor=actor,
        lists=lists,
        source="generated",
        seed=seed,
        signature=signature,
    )
    return list(lists)


def import_csv(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    text: str,
    file_format: str = "canonical",
    scope: str = PHASE_II_SCOPE,
    signature: Signature | None = None,
    columns: Mapping[str, str] | None = None,
    dag_sites: Mapping[str, str] | None = None,
) -> list[str]:
    """Validate the whole file first; store nothing unless every row is right.

    `file_format` is one of `list_formats.FORMATS`; `scope` is the scope of a REDCap or Sealed
    Envelope file (a canonical file names its scopes on every row); `columns` maps a file's
    own column names to ours, `dag_sites` REDCap's Data Access Group ids to site codes."""
    text = environment.accept(session, text, what="randomization list")
    try:
        lists = lf.parse(
            text,
            study=study,
            file_format=file_format,
            scope=scope,
            aliases=columns,
            dag_sites=dag_sites,
            sites=session.execute(select(Site.id)).scalars().all(),
        )
    except rl.ListImportError as exc:
        raise InvalidInput(
            "invalid_list",
            "The list file was refused; nothing was imported.",
            problems=exc.problems,
        ) from None
    _store_all(
        session,
        study=study,
        actor=actor,
        lists=lists,
        source="imported",
        seed=None,
        signature=signature,
    )
    return sorted(lists)


def _store_all(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    lists: dict[str, list[rl.Slot]],
    source: str,
    seed: str | None,
    signature: Signature | None,
) -> None:
    for scope, slots in lists.items():
        _store(
            session,
            study=study,
            actor=actor,
            scope=scope,
            slots=slots,
            source=source,
            seed=seed,
            signature=signature,
        )


def _store(
    session: Session,
    *,
    study: StudyDefinition,
    actor: Actor,
    scope: str,
    slots: list[rl.Slot],
    source: str,
    seed: str | None,
    signature: Signature | None,
) -> None:
    if session.execute(
        select(RandomizationList.id).where(RandomizationList.scope == scope)
    ).first():
        raise Conflict(
            "list_exists",
            f"A randomization list for {scope} exists already; lists are never replaced.",
        )
    digest = rl.commitment(slots)
    row = RandomizationList(
        scope=scope,
        source=source,
        seed_sha256=None if seed is None else seeds.seed_commitment(seed),
        sha256=digest,
        definition_sha256=study.fingerprint(),
        slot_count=len(slots),
        created_at=utcnow(),
        created_by=actor.username,
    )
    session.add(row)
    session.flush()
    session.add_all(
        SlotRow(
            list_id=row.id,
            stratum=s.stratum,
            sequence=s.sequence,
            block=s.block,
            block_size=s.block_size,
            arm=s.arm,
        )
        for s in slots
    )
    audit.record(
        session,
        actor=actor,
        action=f"list.{source}",
        entity="randomization_list",
        entity_id=scope,
        before=None,
        after=with_signature(
            {
                "sha256": digest,
                "slots": len(slots),
                "source": source,
                "definition_sha256": study.fingerprint(),
            },
            signature,
        ),
    )


def stored_slots(session: Session, row: RandomizationList) -> list[rl.Slot]:
    rows = session.execute(
        select(SlotRow).where(SlotRow.list_id == row.id).order_by(SlotRow.stratum, SlotRow.sequence)
    ).scalars()
    return [rl.Slot(row.scope, s.stratum, s.sequence, s.block, s.block_size, s.arm) for s in rows]


@dataclass(frozen=True)
class ListCheck:
    scope: str
    ok: bool
    problems: list[str]
    unchecked_seed: bool = False
    """A generated list that was not regenerated: no seed was given."""


def verify(session: Session, *, study: StudyDefinition, seed: str | None = None) -> list[ListCheck]:
    """Stored slots hash to the stored and to the audited commitment. Given the seed, a
    generated list must have its seed commitment and be regenerated from it bit for bit."""
    results = []
    for row in session.execute(
        select(RandomizationList).order_by(RandomizationList.scope)
    ).scalars():
        problems = []
        digest = rl.commitment(stored_slots(session, row))
        if digest != row.sha256:
            problems.append(f"stored slots hash to {digest}, the list records {row.sha256}")
        audited = audited_commitment(session, row.scope)
        if audited != row.sha256:
            problems.append(f"the audit log committed {audited}, the list records {row.sha256}")
        generated = row.source == "generated"
        if generated and seed is not None:
            problems.extend(_seed_problems(row, study=study, seed=seed))
        results.append(
            ListCheck(row.scope, not problems, problems, unchecked_seed=generated and seed is None)
        )
    return results


def _seed_problems(row: RandomizationList, *, study: StudyDefinition, seed: str) -> list[str]:
    """A wrong seed is named as such, not as a list that differs: the list may well be right."""
    if row.seed_sha256 is not None and seeds.seed_commitment(seed) != row.seed_sha256:
        return ["the seed given is not this list's seed (its SHA-256 differs from the commitment)"]
    regenerated = rl.commitment(rl.generate_list(seed, study.scope(row.scope)))
    if regenerated != row.sha256:
        return [f"regenerating from the seed gives {regenerated}, the list records {row.sha256}"]
    return []


def audited_commitment(session: Session, scope: str) -> str | None:
    entry = (
        session.execute(
            select(AuditEntry)
            .where(AuditEntry.entity == "randomization_list", AuditEntry.entity_id == scope)
            .order_by(AuditEntry.seq)
        )
        .scalars()
        .first()
    )
    return None if entry is None else str(json.loads(entry.after)["sha256"])


def commitments(session: Session) -> list[dict[str, Any]]:
    return [
        {
            "scope": row.scope,
            "source": row.source,
            "sha256": row.sha256,
            "slots": row.slot_count,
            "definition_sha256": row.definition_sha256,
            "created_at": iso_utc(row.created_at),
            "created_by": row.created_by,
        }
        for row in session.execute(
            select(RandomizationList).order_by(RandomizationList.scope)
        ).scalars()
    ]


def export_text(
    session: Session, *, study: StudyDefinition, file_format: str, scope: str | None
) -> str:
    """The stored list in a format: canonical (every scope, or one), or REDCap's or Sealed
    Envelope's layout (one scope, default phase II)."""
    if file_format not in lf.FORMATS:
        raise validation_error(
            "format", f"format {file_format!r}: use one of {', '.join(lf.FORMATS)}"
        )
    if scope is not None and scope not in {s.code for s in study.scopes()}:
        raise validation_error("scope", f"unknown scope {scope!r}")
    if file_format == "canonical":
        slots = [
            slot
            for row in session.execute(select(RandomizationList)).scalars()
            if scope is None or row.scope == scope
            for slot in stored_slots(session, row)
        ]
        return rl.to_csv(slots)
    code = scope or PHASE_II_SCOPE
    row = session.execute(
        select(RandomizationList).where(RandomizationList.scope == code)
    ).scalar_one_or_none()
    if row is None:
        raise not_found(f"The randomization list of {code}")
    return lf.export(stored_slots(session, row), study=study, file_format=file_format, scope=code)
