"""Request and response bodies of API v1. Response models double as a whitelist: a field that
is not declared here can never reach a client, which backs the blinding rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from app.domain.corrections import CORRECTABLE
from app.domain.dates import latest_today
from app.domain.eligibility import EligibilityAnswers, Exclusions
from app.domain.errors import InvalidInput
from app.domain.reasons import MIN_VISIBLE, check_reason
from app.services.results import (
    DoseOut,
    KitOut,
    RandomizationOut,
    SignatureOut,
    UnblindOut,
)
from app.services.shipments import Receipt
from app.services.signatures import SignatureInput

WeightKg = Annotated[
    Decimal,
    Field(gt=0, le=1000, max_digits=5, decimal_places=1),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
                {"type": "string", "pattern": r"^[0-9]{1,4}(\.[0-9])?$"},
            ],
            "description": "Kilograms, at most one decimal, above 0 and at most 1000; a number "
            "or its text (as a form sends it).",
        }
    ),
]
"""A weight: the documented schema admits only what the validation admits (no "", no "abc")."""
SCHEMA_YEAR = datetime.now(UTC).year
"""The latest year of birth the OpenAPI document states (this year when the app started)."""


def not_in_future(value: date) -> date:
    """A date may be today anywhere on earth (UTC+14), never later."""
    if value > latest_today(datetime.now(UTC)):
        raise ValueError("the date is in the future")
    return value


def visible_reason(value: str) -> str:
    """The domain's rule for reasons (app/domain/reasons.py), as a field error on `reason`;
    the reason kept is the cleaned one (no invisible characters at its ends)."""
    try:
        return check_reason(value)
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


def reason_field(max_length: int) -> Any:
    return Field(
        max_length=max_length,
        description=f"Why, for the audit trail: at least {MIN_VISIBLE} visible characters "
        "(spaces and invisible characters do not count).",
        json_schema_extra={"minLength": MIN_VISIBLE},
    )


Reason = Annotated[str, reason_field(2000), AfterValidator(visible_reason)]
LongReason = Annotated[str, reason_field(4000), AfterValidator(visible_reason)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    device_token: str = Field(
        description="Proof that this device has logged in as this user: send it back as the "
        "`device_token` form field of later logins, so that other people's wrong passwords for "
        "the user never hold this device up."
    )


class Me(BaseModel):
    username: str
    role: str
    site_ids: list[str]


class SubjectCreate(Strict):
    site_id: str = Field(min_length=1, max_length=12)
    screening_number: str = Field(
        min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$"
    )
    sex: Literal["F", "M"]
    year_of_birth: int = Field(ge=1900, json_schema_extra={"maximum": SCHEMA_YEAR})

    @field_validator("year_of_birth")
    @classmethod
    def _not_future_year(cls, value: int) -> int:
        if value > datetime.now(UTC).year:
            raise ValueError("the year of birth is in the future")
        return value


class ExclusionAnswers(Strict):
    active_or_unstable_neuropsychiatric_sle: bool
    active_or_unstable_lupus_nephritis: bool
    other_autoimmune_disease: bool
    uncontrolled_medical_condition: bool
    active_severe_infection: bool
    malignancy_within_5_years: bool


class EligibilityIn(Strict):
    sle_diagnosis_date: date
    screening_date: date
    sledai_2k_score: int = Field(ge=0, le=105)
    bilag_a_count: int = Field(ge=0, le=9)
    bilag_b_count: int = Field(ge=0, le=9)
    on_soc_medication: bool
    prednisone_equivalent_mg_per_day: Decimal = Field(ge=0, le=1000, max_digits=7, decimal_places=2)
    exclusions: ExclusionAnswers

    _dates = field_validator("sle_diagnosis_date", "screening_date")(not_in_future)

    def to_domain(self) -> EligibilityAnswers:
        return EligibilityAnswers(
            sle_diagnosis_date=self.sle_diagnosis_date,
            screening_date=self.screening_date,
            sledai_2k_score=self.sledai_2k_score,
            bilag_a_count=self.bilag_a_count,
            bilag_b_count=self.bilag_b_count,
            on_soc_medication=self.on_soc_medication,
            prednisone_equivalent_mg_per_day=self.prednisone_equivalent_mg_per_day,
            exclusions=Exclusions(**self.exclusions.model_dump()),
        )


class RandomizeIn(Strict):
    visit_date: date
    weight_kg: WeightKg
    eligibility: EligibilityIn

    _visit = field_validator("visit_date")(not_in_future)


class ReasonIn(Strict):
    reason: Reason


class SignatureIn(Strict):
    """An electronic signature: the signer's own password, entered again now, and optionally
    the meaning the client showed (it must then be the service's own, which is recorded)."""

    password: str = Field(min_length=1, max_length=200)
    meaning: str | None = Field(default=None, max_length=500)

    def given(self) -> SignatureInput:
        return SignatureInput(password=self.password, meaning=self.meaning)


class SignedReasonIn(ReasonIn):
    signature: SignatureIn


class Phase2DoseIn(SignedReasonIn):
    dose_mg_per_kg: Decimal = Field(gt=0, max_digits=5, decimal_places=2)


ScopeCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,8}$")]
CapValue = Annotated[int, Field(ge=0, le=100_000)]


class CapsIn(SignedReasonIn):
    """The new caps of the scopes that change, e.g. a move of 3 unused places of closed cohort
    C3 to phase II: `{"C3": 5, "P2": 197}` (docs/randomization.md, "Caps")."""

    caps: dict[ScopeCode, CapValue] = Field(min_length=1, max_length=20)


class StudyVersionIn(SignedReasonIn):
    """A protocol amendment: the whole study definition (TOML text) and the day it takes effect."""

    definition_toml: str = Field(min_length=1, max_length=200_000)
    effective_date: date


class AllocationOut(RandomizationOut):
    site_id: str
    screening_number: str
    randomized_by: str
    arm: str
    treatment: str
    list_scope: str
    slot_sequence: int
    block: int
    block_size: int


class ListCommitmentOut(BaseModel):
    scope: str
    source: str
    sha256: str
    slots: int
    definition_sha256: str
    created_at: str
    created_by: str


class Health(BaseModel):
    status: str
    database: str
    study: str


class DispenseIn(Strict):
    visit: str = Field(min_length=1, max_length=8, description="Visit code, e.g. W4")
    visit_date: date
    weight_kg: WeightKg
    window_override_reason: Reason | None = Field(
        default=None,
        description="Investigators only: why the visit is dosed outside its window",
    )

    _visit = field_validator("visit_date")(not_in_future)


class VisitReasonIn(Strict):
    """A missed visit, or a dispensing entered in error: why (docs/visits.md)."""

    reason: Reason


class StatusChangeIn(Strict):
    """A subject status change (screen failure, discontinuation, withdrawal, completion): the
    day it took effect, a coded reason (app/domain/lifecycle.py) and the reason in words."""

    effective_date: date
    reason_category: str = Field(min_length=1, max_length=40)
    reason: Reason

    _effective = field_validator("effective_date")(not_in_future)


class CompletionIn(StatusChangeIn):
    reason_category: str = Field(default="completed", min_length=1, max_length=40)


class StatusUndoIn(Strict):
    """The undo of a status change: why, signed with the user's own password."""

    reason: Reason
    signature: SignatureIn


class ReplaceIn(Strict):
    reason: Reason
    status: Literal["damaged", "lost"] = "damaged"


class InventoryOut(BaseModel):
    site_id: str
    total: int
    dispensable: int
    by_status: dict[str, int]
    listed_statuses: list[str] = Field(description="The statuses of the kits listed")
    kits: list[KitOut]


class ShipmentRequestIn(Strict):
    site_id: str = Field(min_length=1, max_length=12)
    kits_per_content: int = Field(ge=1, le=500, description="The same number of each content")
    reason: Reason


class ReceiveIn(Strict):
    damaged: list[str] = Field(default_factory=list, max_length=1000)
    missing: list[str] = Field(default_factory=list, max_length=1000)
    temperature_excursion: bool = False
    received_on: date | None = Field(
        default=None,
        description="The day the kits arrived (default today, UTC): not in the future, not "
        "before the day the shipment was shipped",
    )

    def to_receipt(self) -> Receipt:
        return Receipt(
            damaged=tuple(self.damaged),
            missing=tuple(self.missing),
            temperature_excursion=self.temperature_excursion,
            received_on=self.received_on,
        )


class ExpiryStockOut(BaseModel):
    expiry_date: str
    total: int
    reserved: int
    by_status: dict[str, int]


class DepotStockOut(BaseModel):
    """Kits at a depot: totals by status and by expiry date, never by content or lot."""

    depot_id: str
    name: str
    country: str
    as_of: str
    do_not_ship_days: int
    total: int
    shippable: int
    reserved: int
    by_status: dict[str, int]
    by_expiry: list[ExpiryStockOut]


class KitStatusIn(Strict):
    status: Literal[
        "available", "at_depot", "quarantined", "damaged", "lost", "returned", "destroyed"
    ]
    reason: Reason


class SiteActivateIn(ReasonIn):
    depot_id: str | None = Field(default=None, max_length=12)


class SiteTimezoneIn(Strict):
    timezone: str = Field(min_length=1, max_length=64, examples=["Europe/Berlin"])
    """IANA time zone name; an unknown one is refused by the use case (validation_error)."""


class SupplyLevelsIn(Strict):
    trigger: int = Field(ge=0, le=1000)
    target: int = Field(ge=1, le=1000)


class KitImportOut(BaseModel):
    import_id: int
    sha256: str
    kits: int
    already_imported: bool


class UnblindedKitOut(KitOut):
    content: str
    lot: str
    updated_at: str


class ReconciliationOut(BaseModel):
    site_id: str
    content: str
    shipped_to_site: int
    by_status: dict[str, int]
    accounted: int
    balance: int


class UnblindIn(Strict):
    reason_category: Literal["adverse_event", "overdose", "pregnancy", "other"]
    reason: LongReason
    signature: SignatureIn


class UnblindingLogOut(UnblindOut):
    site_id: str
    screening_number: str
    randomization_number: str
    unblinded_by: str
    reason_category: str
    reason: str


class OutboxMessageOut(BaseModel):
    message_id: int
    kind: str
    recipients: list[str]
    subject: str
    body: dict[str, Any]
    created_at: str
    sent_at: str | None
    attempts: int
    last_error: str | None


class ConfirmationOut(BaseModel):
    """A confirmation as site staff see it (blinded: never the treatment)."""

    confirmation_id: int
    kind: str
    title: str
    study_code: str
    study_name: str
    stage: str | None
    """None for a subject never randomized (a screen failure's confirmation)."""
    cohort: str | None
    mode: str | None
    site_id: str
    site_name: str
    subject_id: int
    screening_number: str
    randomization_number: str | None
    stratum: str | None
    status: str | None = None
    """A status change: the subject's state after it, and `from_status` before it."""
    from_status: str | None = None
    effective_date: str | None = None
    visit: str | None
    visit_date: str | None
    dose: DoseOut | None
    kits: list[str]
    replaced_kit: str | None
    reason_category: str | None
    performed_at: str
    performed_by: str
    performed_by_role: str
    signature: SignatureOut | None = None
    """The electronic signature of a signed action (an unblinding), with its meaning."""


class CorrectionIn(Strict):
    field: str = Field(
        max_length=80,
        description="What to correct: " + ", ".join(CORRECTABLE),
        json_schema_extra={"enum": list(CORRECTABLE)},
    )
    visit: str | None = Field(
        default=None, max_length=8, description="For weight_kg: the dosing visit (default D1)."
    )
    new_value: str = Field(
        min_length=1,
        max_length=40,
        description="The corrected value as text: F or M, a year, a number, YYYY-MM-DD, yes/no.",
    )
    reason: Reason
    signature: SignatureIn
