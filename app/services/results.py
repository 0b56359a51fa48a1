"""What the use cases that change a subject or a shipment answer: typed, and blinded.

The API sends them as they are (they are its response models), the pages show them, and an
idempotent replay rebuilds them from the stored answer. Never an arm, a treatment or a kit
content, apart from the treatment an investigator unblinds on purpose (UnblindOut)."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field


class DoseOut(BaseModel):
    dose_level_mg_per_kg: float
    weight_kg: float
    dose_mg: float
    vials: int
    drug_volume_ml: float = Field(
        validation_alias=AliasChoices("drug_volume_ml", "infusion_volume_ml"),
        description="The drug volume drawn up from the vials (mL), at the syringe's 0.1 mL",
    )
    """Answers stored before the rename (replays, confirmations) still read."""


class RandomizationOut(BaseModel):
    subject_id: int
    randomization_number: str
    stage: str
    cohort: str | None
    stratum: str
    randomized_at: str
    dose: DoseOut
    kits: list[str]


class DispensingOut(BaseModel):
    visit: str
    visit_date: str
    dose: DoseOut
    kits: list[str]


class ReplaceOut(BaseModel):
    visit: str
    replaced_kit: str
    kit: str


class KitOut(BaseModel):
    """A kit as a blinded role sees it: never content or lot."""

    kit_number: str
    status: str
    expiry_date: str
    site_id: str | None
    depot_id: str | None


class ShipmentKitOut(KitOut):
    outcome: str | None


class ShipmentOut(BaseModel):
    shipment_id: int
    site_id: str
    depot_id: str
    kind: str
    status: str
    requested_at: str
    shipped_at: str | None
    received_at: str | None
    received_on: str | None = Field(
        description="The day the kits arrived (received_at is when the receipt was recorded)"
    )
    temperature_excursion: bool
    kit_count: int
    kits: list[ShipmentKitOut]


class UnblindOut(BaseModel):
    subject_id: int
    treatment: str
    unblinded_at: str


class RandomizeOut(RandomizationOut):
    """The randomize response: the randomization and the id of its confirmation."""

    confirmation_id: int


class DispenseOut(DispensingOut):
    confirmation_id: int


class ReplaceResultOut(ReplaceOut):
    confirmation_id: int


class SignatureOut(BaseModel):
    """An electronic signature as shown with the signed action (app/domain/signatures.py)."""

    printed_name: str
    username: str
    signed_at: str
    meaning: str


class UnblindResultOut(UnblindOut):
    confirmation_id: int
    signature: SignatureOut | None = None


class SubjectOut(BaseModel):
    subject_id: int
    site_id: str
    screening_number: str
    sex: str
    year_of_birth: int
    status: str
    unblinded: bool = False
    randomization: RandomizationOut | None = None
    visits: list[DispensingOut] = []


# --- sites, supply levels and stage decisions (app/services/admin_commands.py and
# supply_commands.py): nothing here depends on an arm or a content ---------------------------


class SiteOut(BaseModel):
    site_id: str
    name: str
    country: str
    active: bool
    depot_id: str | None
    timezone: str
    """IANA time zone: the site's local dates in exports and pages."""


class SiteActivatedOut(SiteOut):
    initial_shipment_id: int | None


class SupplyLevelsOut(BaseModel):
    site_id: str
    trigger: int
    target: int


class CohortOut(BaseModel):
    code: str
    dose_mg_per_kg: float
    cap: int
    status: str
    randomized: int
    opened_at: str | None
    closed_at: str | None


class Phase2Out(BaseModel):
    dose_mg_per_kg: float | None
    selected_at: str | None
    randomized: int
