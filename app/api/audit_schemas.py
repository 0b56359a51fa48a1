"""Response bodies of the audit trail's API: its entries, the verification of the chain, the
signed checkpoints and the replay against the business tables."""

from __future__ import annotations

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    seq: int
    occurred_at: str
    username: str
    role: str
    action: str
    entity: str
    entity_id: str
    before: str
    after: str
    reason: str | None
    prev_hash: str
    hash: str


class CheckpointOut(BaseModel):
    seq: int
    hash: str
    at: str
    why: str
    key_id: str
    signature: str


class CheckpointCheckOut(BaseModel):
    ok: bool
    checkpoints: int
    last_good_seq: int | None
    first_bad_seq: int | None
    detail: str


class DiscrepancyOut(BaseModel):
    table: str
    key: str
    field: str | None
    found: str | None
    recorded: str | None
    seq: int | None
    problem: str


class ReplayOut(BaseModel):
    ok: bool
    entries: int
    rows: int
    discrepancies: list[DiscrepancyOut]


class AuditVerifyOut(BaseModel):
    """`ok`: the chain, the signed checkpoints (when the service keeps them) and the replay
    against the business tables all agree. `first_bad_seq`: the chain's first broken entry,
    else the first entry a checkpoint contradicts."""

    ok: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None
    chain_ok: bool = True
    checkpoints: CheckpointCheckOut | None = None
    bad_checkpoint_lines: list[str] = []
    replay: ReplayOut | None = None


class CheckpointsOut(BaseModel):
    public_key_pem: str | None
    key_id: str | None
    checkpoints: list[CheckpointOut]
