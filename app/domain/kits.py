"""Kits: the status state machine, selection for dispensing and shipping, kit list files."""

from __future__ import annotations

import csv
import io
import random
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from app.domain.csv_cells import csv_text
from app.domain.roles import Role


class KitStatus(StrEnum):
    AT_DEPOT = "at_depot"
    IN_TRANSIT = "in_transit"
    AVAILABLE = "available"
    DISPENSED = "dispensed"
    DAMAGED = "damaged"
    LOST = "lost"
    QUARANTINED = "quarantined"
    EXPIRED = "expired"
    RETURNED = "returned"
    DESTROYED = "destroyed"


S = KitStatus
SYSTEM = "system"
"""Transitions the service makes itself (shipping, dispensing, expiry)."""

SUPPLY = frozenset({Role.SUPPLY_MANAGER})
PHARMACY = frozenset({Role.PHARMACIST, Role.SUPPLY_MANAGER})
SITE_PHARMACY = frozenset({Role.PHARMACIST})

TRANSITIONS: dict[tuple[KitStatus, KitStatus], frozenset[str]] = {
    (S.AT_DEPOT, S.IN_TRANSIT): frozenset({SYSTEM}),
    (S.IN_TRANSIT, S.AVAILABLE): frozenset({SYSTEM}),
    (S.IN_TRANSIT, S.DAMAGED): frozenset({SYSTEM}),
    (S.IN_TRANSIT, S.LOST): frozenset({SYSTEM}),
    (S.IN_TRANSIT, S.QUARANTINED): frozenset({SYSTEM}),
    (S.AVAILABLE, S.DISPENSED): frozenset({SYSTEM}),
    (S.AVAILABLE, S.EXPIRED): frozenset({SYSTEM}),
    (S.AT_DEPOT, S.EXPIRED): frozenset({SYSTEM}),
    (S.AT_DEPOT, S.QUARANTINED): SUPPLY,
    (S.AT_DEPOT, S.DAMAGED): SUPPLY,
    (S.AT_DEPOT, S.LOST): SUPPLY,
    (S.AVAILABLE, S.QUARANTINED): PHARMACY,
    (S.AVAILABLE, S.DAMAGED): PHARMACY,
    (S.AVAILABLE, S.LOST): PHARMACY,
    (S.AVAILABLE, S.RETURNED): PHARMACY,
    (S.QUARANTINED, S.AVAILABLE): SUPPLY,
    (S.QUARANTINED, S.AT_DEPOT): SUPPLY,
    (S.QUARANTINED, S.DAMAGED): SUPPLY,
    (S.DISPENSED, S.DAMAGED): frozenset({SYSTEM}),
    (S.DISPENSED, S.LOST): frozenset({SYSTEM}),
    (S.DISPENSED, S.RETURNED): SITE_PHARMACY,
    (S.DAMAGED, S.DESTROYED): SUPPLY,
    (S.EXPIRED, S.DESTROYED): SUPPLY,
    (S.RETURNED, S.DESTROYED): SUPPLY,
}
"""Every allowed (from, to) and who may make it by hand; `system` marks the service's own
moves (shipping, receipt, dispensing, replacement, expiry). Anything else is refused."""

USABLE_AT_SITE = frozenset({S.AVAILABLE})


class KitTransitionError(ValueError):
    def __init__(self, kit_number: str, current: KitStatus, target: KitStatus, why: str) -> None:
        super().__init__(f"Kit {kit_number} cannot go from {current} to {target}: {why}.")
        self.current = current
        self.target = target


def check_transition(
    kit_number: str, *, current: KitStatus, target: KitStatus, by: str, at_site: bool | None = None
) -> None:
    """Raise KitTransitionError unless `by` (a role or "system") may move the kit. Where the
    kit is matters for a release: to `available` at a site, to `at_depot` at a depot."""
    if at_site is not None and (
        (target is S.AVAILABLE and not at_site) or (target is S.AT_DEPOT and at_site)
    ):
        home = "available" if at_site else "at_depot"
        where = "at a site" if at_site else "at a depot"
        raise KitTransitionError(
            kit_number, current, target, f"the kit is {where}, so it goes back to {home}"
        )
    allowed = TRANSITIONS.get((current, target))
    if allowed is None:
        raise KitTransitionError(kit_number, current, target, "that change is not allowed")
    if by not in allowed:
        why = (
            "only the service itself makes it (by shipping, receipt, dispensing or replacement)"
            if allowed == {SYSTEM}
            else f"the {by} role may not make it"
            if by != SYSTEM
            else "only a user of the right role makes it"
        )
        raise KitTransitionError(kit_number, current, target, why)


@dataclass(frozen=True)
class KitCandidate:
    kit_number: str
    content: str
    expiry_date: date
    shipment: int = 0
    """The shipment that brought the kit to its site (0 at a depot)."""
    pool: str | None = None
    """The stage pool the kit was shipped for (app/domain/stage_pools.py; None at a depot)."""


def usable_on(kit: KitCandidate, day: date, window_days: int) -> bool:
    """The kit expires later than `day` + window (do-not-dispense or do-not-ship)."""
    return expires_after_window(kit.expiry_date, day, window_days)


def expires_after_window(expiry: date, day: date, window_days: int) -> bool:
    """`usable_on` for an expiry date (kits counted rather than read one by one)."""
    return expiry > day + timedelta(days=window_days)


# --- kit list files -------------------------------------------------------------------------

KIT_COLUMNS = ("kit_number", "content", "lot", "expiry_date", "depot")
KIT_NUMBER_ALPHABET = "ACDEFGHJKLMNPQRTUVWXY3479"
"""No look-alike characters (0/O, 1/I, 5/S, 2/Z, 8/B, 6/G)."""


@dataclass(frozen=True)
class KitRecord:
    kit_number: str
    content: str
    lot: str
    expiry_date: date
    depot: str


class KitListError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse_kit_list(
    text: str, *, contents: Sequence[str], depots: Iterable[str], today: date
) -> list[KitRecord]:
    """Validate a whole kit list; raise KitListError naming every bad row, or return the kits.

    Beyond each row's fields (unique kit number, known content and depot, ISO date not in the
    past), blinding demands that every expiry date carries both contents: an expiry date only
    one content has would let anybody who sees expiry dates tell the contents apart.
    """
    known_depots = set(depots)
    problems: list[str] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header, rows = tuple(reader.fieldnames or ()), list(reader)
    except csv.Error as exc:  # e.g. an oversized field
        raise KitListError([f"not a readable CSV file: {exc}"]) from None
    if header != KIT_COLUMNS:
        raise KitListError([f"header: expected columns {','.join(KIT_COLUMNS)}"])
    seen: dict[str, int] = {}
    records: list[KitRecord] = []
    for row_no, row in enumerate(rows, start=2):
        bad = []
        number = (row.get("kit_number") or "").strip()
        if not number or len(number) > 16 or not number.isalnum():
            bad.append(f"kit number {number!r} must be 1 to 16 letters or digits")
        elif number in seen:
            bad.append(f"kit number {number} repeats row {seen[number]}")
        else:
            seen[number] = row_no
        content = (row.get("content") or "").strip()
        if content not in contents:
            bad.append(f"unknown content {content!r}")
        lot = (row.get("lot") or "").strip()
        if not lot or len(lot) > 40:
            bad.append("lot must be 1 to 40 characters")
        depot = (row.get("depot") or "").strip()
        if depot not in known_depots:
            bad.append(f"unknown depot {depot!r}")
        expiry: date | None = None
        try:
            expiry = date.fromisoformat(row.get("expiry_date") or "")
        except ValueError:
            bad.append(f"expiry date {row.get('expiry_date')!r} is not a date (YYYY-MM-DD)")
        if expiry is not None and expiry <= today:
            bad.append(f"expiry date {expiry} is not in the future")
        if bad:
            problems.append(f"row {row_no}: " + ", ".join(bad))
        elif expiry is not None:
            records.append(KitRecord(number, content, lot, expiry, depot))
    if not problems:
        by_expiry: dict[date, set[str]] = defaultdict(set)
        for record in records:
            by_expiry[record.expiry_date].add(record.content)
        for expiry, present in sorted(by_expiry.items()):
            if set(present) != set(contents):
                problems.append(
                    f"expiry date {expiry}: only {', '.join(sorted(present))} kits expire then; "
                    "each expiry date must carry every content, or expiry would unblind"
                )
    if not records and not problems:
        problems.append("the file holds no kits")
    if problems:
        raise KitListError(problems)
    return records


def kit_list_csv(records: Iterable[KitRecord]) -> str:
    """A kit list in the import's layout (`irt kits generate`), its cells neutralised like every
    CSV for people (`csv_text`): the generated ones (kit numbers, content codes, lots, ISO dates)
    never start a formula, so only a depot code typed as one would change."""
    return csv_text(
        KIT_COLUMNS,
        ((r.kit_number, r.content, r.lot, r.expiry_date.isoformat(), r.depot) for r in records),
    )


def generate_kit_list(
    contents: Sequence[str],
    *,
    per_content: int,
    expiry_dates: Sequence[date],
    depot: str,
    rng: secrets.SystemRandom | random.Random,
    number_length: int = 8,
) -> list[KitRecord]:
    """Random, unique, non-sequential kit numbers; per expiry date one lot per content, every
    expiry date carrying every content in equal numbers; rows in random order."""
    numbers: set[str] = set()
    total = per_content * len(contents)
    while len(numbers) < total:
        numbers.add("".join(rng.choice(KIT_NUMBER_ALPHABET) for _ in range(number_length)))
    pool = list(numbers)
    rng.shuffle(pool)
    records = []
    for c_index, content in enumerate(contents):
        for i in range(per_content):
            e_index = i * len(expiry_dates) // per_content
            lot = f"L{e_index + 1:02d}{chr(ord('A') + c_index)}"
            records.append(KitRecord(pool.pop(), content, lot, expiry_dates[e_index], depot))
    rng.shuffle(records)
    return records
