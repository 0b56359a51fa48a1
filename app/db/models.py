"""SQLAlchemy models. One database serves one study; schema changes go through alembic only."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.db.types import ExactDecimal, UTCDateTime


class Base(DeclarativeBase):
    pass


class Study(Base):
    """The single study this database serves, with its definition snapshot and stage state."""

    __tablename__ = "study"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    definition_json: Mapped[str] = mapped_column(Text, deferred=True)  # read on its own
    definition_sha256: Mapped[str] = mapped_column(String(64))
    phase2_dose_mg_per_kg: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    phase2_dose_selected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    mode: Mapped[str] = mapped_column(String(12), default="production")
    """`production` or `training`, written when the study is loaded (migration 0013)."""
    phase2_cap: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Phase II's cap as the sponsor last set it; None: the definition's (migration 0013)."""


class StudyVersion(Base):
    """One version of the study definition: 1 as first loaded, then each protocol amendment,
    in effect from `effective_date` (app/services/study_versions.py, migration 0013)."""

    __tablename__ = "study_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    definition_json: Mapped[str] = mapped_column(Text)
    definition_sha256: Mapped[str] = mapped_column(String(64))
    effective_date: Mapped[date] = mapped_column(Date)
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    loaded_by: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    depot_id: Mapped[str | None] = mapped_column(String(12), nullable=True)
    """The depot that supplies the site (added by migration 0002)."""
    lead_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Depot-to-site lead time in days; None: the study's."""
    cover_weeks: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Weeks of forecast need a shipment covers beyond the lead time; None: the study's."""
    subjects_per_week: Mapped[Decimal | None] = mapped_column(ExactDecimal, nullable=True)
    """Expected recruitment, for the forecast; None: the study's."""
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    """IANA time zone of the site (migration 0014): its local dates in exports and pages."""


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    email: Mapped[str | None] = mapped_column(String(200), nullable=True)
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    """Raised on password reset or disabling: every token issued before stops working."""
    full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    """The printed name an electronic signature shows (migration 0009); None: the username."""


class UserSite(Base):
    __tablename__ = "user_sites"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)


class Cohort(Base):
    """A phase Ib cohort's stage state (planned, open, closed)."""

    __tablename__ = "cohorts"
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, unique=True)
    dose_mg_per_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    cap: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(10), default="planned")
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class RandomizationList(Base):
    """One list per scope (phase Ib cohort or phase II); its SHA-256 is the audited commitment.
    A generated list keeps the SHA-256 of its seed, never the seed (docs/randomization.md)."""

    __tablename__ = "randomization_lists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), unique=True)
    source: Mapped[str] = mapped_column(String(16))
    seed_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))
    definition_sha256: Mapped[str] = mapped_column(String(64))
    slot_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))


class Slot(Base):
    __tablename__ = "randomization_slots"
    __table_args__ = (UniqueConstraint("list_id", "stratum", "sequence"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("randomization_lists.id"))
    stratum: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(Integer)
    block: Mapped[int] = mapped_column(Integer)
    block_size: Mapped[int] = mapped_column(Integer)
    arm: Mapped[str] = mapped_column(String(20))


class Subject(Base):
    __tablename__ = "subjects"
    __table_args__ = (UniqueConstraint("site_id", "screening_number"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    screening_number: Mapped[str] = mapped_column(String(40))
    sex: Mapped[str] = mapped_column(String(1))
    year_of_birth: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="registered")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    unblinded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Randomization(Base):
    __tablename__ = "randomizations"
    __table_args__ = (Index("ix_randomizations_scope", "scope"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), unique=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("randomization_slots.id"), unique=True)
    randomization_number: Mapped[str] = mapped_column(String(20), unique=True)
    stage: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(8))
    stratum: Mapped[str] = mapped_column(String(64))
    randomized_at: Mapped[datetime] = mapped_column(UTCDateTime)
    randomized_by: Mapped[str] = mapped_column(String(80))
    visit_date: Mapped[date] = mapped_column(Date)
    weight_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    dose_level_mg_per_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    dose_mg: Mapped[Decimal] = mapped_column(ExactDecimal)
    vials: Mapped[int] = mapped_column(Integer)
    drug_volume_ml: Mapped[Decimal] = mapped_column(ExactDecimal)
    eligibility_json: Mapped[str] = mapped_column(Text)
    """The answers as randomized; corrections are in DataCorrection, never written here."""
    actual_stratum: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The stratum the corrected answers give (migration 0012); None: no correction touched a
    stratification factor. `stratum` stays the stratum as randomized, with its slot."""
    study_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The study definition version the randomization used (migration 0013)."""
    last_visit_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The visit index of the subject's latest standing dispensing; None when none stands."""
    last_vials: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """That dispensing's vials. Both are a kept copy of `dispensings` (migration 0021), so that
    the forecast reads a site's subjects on treatment without a lookup per subject; the
    monitor's check compares them."""


class SubjectStatusChange(Base):
    """One change of a subject's status (migration 0010): an act (screen failure,
    discontinuation, withdrawal, completion) or the signed correction that undoes one
    (`corrects_id`). Append-only (database triggers): the history keeps both
    (app/domain/lifecycle.py)."""

    __tablename__ = "subject_status_changes"
    __table_args__ = (
        CheckConstraint(
            "(act IS NULL) <> (corrects_id IS NULL)", name="ck_status_change_act_or_correction"
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    act: Mapped[str | None] = mapped_column(String(16), nullable=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    effective_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    reason_category: Mapped[str | None] = mapped_column(String(40), nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    corrects_id: Mapped[int | None] = mapped_column(
        ForeignKey("subject_status_changes.id"), nullable=True, unique=True
    )
    signature_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_by_role: Mapped[str] = mapped_column(String(32))


class IdempotencyKey(Base):
    """A client's Idempotency-Key: in flight until its transaction stores the response."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("username", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10))
    response_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response_body: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """Append-only, hash-chained; UPDATE and DELETE are refused by database triggers."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    occurred_at: Mapped[str] = mapped_column(String(32))
    username: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(80))
    before: Mapped[str] = mapped_column(Text)
    after: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """One row: the chain's last seq and hash. Locking it serializes appends into one sequence."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


class Depot(Base):
    __tablename__ = "depots"
    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KitImport(Base):
    """One imported kit list file; the same file (same SHA-256) is never imported twice."""

    __tablename__ = "kit_imports"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kit_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[str] = mapped_column(String(80))


class Kit(Base):
    """One vial of IMC-002 or placebo. `content` and `lot` are unblinded data."""

    __tablename__ = "kits"
    __table_args__ = (
        Index("ix_kits_site_stock", "site_id", "status", "content", "expiry_date"),
        Index("ix_kits_depot_stock", "depot_id", "status", "content", "expiry_date"),
    )
    kit_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    content: Mapped[str] = mapped_column(String(20))
    lot: Mapped[str] = mapped_column(String(40))
    expiry_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    depot_id: Mapped[str | None] = mapped_column(ForeignKey("depots.id"), nullable=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("kit_imports.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    pool: Mapped[str | None] = mapped_column(String(10), nullable=True)
    """The stage pool the kit was shipped for (app/domain/stage_pools.py), set when it leaves
    the depot; None before."""
    shipment_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The shipment that took the kit to its site, set when it leaves the depot; None for a kit
    never shipped. A kept copy of `shipment_kits` (migration 0020), read for the kit's tier
    (app/domain/common_expiry.py) without joining the site's shipments; the monitor's check
    compares the two."""


class SupplyLevel(Base):
    """A site's own trigger and target for one content (else the study's defaults)."""

    __tablename__ = "site_supply_levels"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    content: Mapped[str] = mapped_column(String(20), primary_key=True)
    trigger: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)


class Shipment(Base):
    __tablename__ = "shipments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    depot_id: Mapped[str] = mapped_column(ForeignKey("depots.id"))
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    requested_by: Mapped[str] = mapped_column(String(80))
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the receipt was recorded."""
    received_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    received_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    """The day the kits arrived, as the pharmacist dates the receipt (may be before the day it
    was recorded; added by migration 0006)."""
    temperature_excursion: Mapped[bool] = mapped_column(Boolean, default=False)


class ShipmentKit(Base):
    __tablename__ = "shipment_kits"
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id"), primary_key=True)
    kit_number: Mapped[str] = mapped_column(ForeignKey("kits.kit_number"), primary_key=True)
    outcome: Mapped[str | None] = mapped_column(String(12), nullable=True)
    pool: Mapped[str | None] = mapped_column(String(10), nullable=True)
    """The stage pool the kit is shipped for; the kit takes it when it leaves the depot."""


def _standing(name: str, *columns: str, unique: bool = False) -> Index:
    where = text("entered_in_error_at IS NULL")  # a dispensing entered in error stays, marked
    return Index(name, *columns, unique=unique, sqlite_where=where, postgresql_where=where)


class Dispensing(Base):
    """One dosing visit of one subject: the weight, the dose and (in DispensedKit) the kits.
    One standing dispensing per visit; one entered in error stays, marked, beside it."""

    __tablename__ = "dispensings"
    # over standing dispensings only: one per visit, and each subject's latest read directly
    __table_args__ = (
        _standing("uq_dispensings_standing_visit", "subject_id", "visit", unique=True),
        _standing("ix_dispensings_standing_order", "subject_id", "visit_index"),  # 0018
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    visit: Mapped[str] = mapped_column(String(8))
    visit_index: Mapped[int] = mapped_column(Integer)
    visit_date: Mapped[date] = mapped_column(Date)
    weight_measured_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    weight_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    dose_level_mg_per_kg: Mapped[Decimal] = mapped_column(ExactDecimal)
    dose_mg: Mapped[Decimal] = mapped_column(ExactDecimal)
    vials: Mapped[int] = mapped_column(Integer)
    drug_volume_ml: Mapped[Decimal] = mapped_column(ExactDecimal)
    dispensed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispensed_by: Mapped[str] = mapped_column(String(80))
    study_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The study definition version the dispensing used (migration 0013)."""
    window_override_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    window_override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    entered_in_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    entered_in_error_by: Mapped[str | None] = mapped_column(String(80), nullable=True)
    entered_in_error_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class MissedVisit(Base):
    """A dosing visit that site staff recorded as missed, with a reason (docs/visits.md)."""

    __tablename__ = "missed_visits"
    __table_args__ = (
        UniqueConstraint("subject_id", "visit", name="uq_missed_visits_subject_visit"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    visit: Mapped[str] = mapped_column(String(8))
    visit_index: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by: Mapped[str] = mapped_column(String(80))


class DispensedKit(Base):
    """A kit given at a dispensing. The unique kit number means a kit is dispensed once, ever."""

    __tablename__ = "dispensed_kits"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dispensing_id: Mapped[int] = mapped_column(ForeignKey("dispensings.id"), index=True)
    kit_number: Mapped[str] = mapped_column(ForeignKey("kits.kit_number"), unique=True)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    replaced_by_kit: Mapped[str | None] = mapped_column(String(16), nullable=True)
    replacement_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class Unblinding(Base):
    """An emergency unblinding of one subject by an investigator of its site."""

    __tablename__ = "unblindings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), unique=True)
    unblinded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unblinded_by: Mapped[str] = mapped_column(String(80))
    reason_category: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)


class OutboxMessage(Base):
    """A notification waiting for `irt outbox drain` (SMTP or webhook); never holds treatment."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    recipients: Mapped[str] = mapped_column(Text)
    subject_line: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)


class Confirmation(Base):
    """The confirmation of a randomization, dispensing, kit replacement or unblinding, stored
    with the event. `body` is the blinded variant (JSON); `treatment` is only shown to those
    who may see it (app/services/confirmations.py)."""

    __tablename__ = "confirmations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id"), index=True)
    visit: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(80))
    created_by_role: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    treatment: Mapped[str] = mapped_column(String(80))


class DataCorrection(Base):
    """A signed correction of a subject's data (migration 0012): append-only, refused UPDATE
    and DELETE by triggers. Values are kept as text, as the subject page shows them."""

    __tablename__ = "data_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    field: Mapped[str] = mapped_column(String(80))
    visit: Mapped[str | None] = mapped_column(String(8), nullable=True)
    old_value: Mapped[str] = mapped_column(Text)
    new_value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    stratum_before: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stratum_after: Mapped[str | None] = mapped_column(String(64), nullable=True)
    signature_json: Mapped[str] = mapped_column(Text)
    corrected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    corrected_by: Mapped[str] = mapped_column(String(80))
    corrected_by_role: Mapped[str] = mapped_column(String(32))
