"""The state one simulated trial keeps: stock at sites and depots, subjects, what blinded roles saw.

Stock is kept as counts per content and expiry date (and, at sites, per stage pool and shipment
of origin, which a blinded pharmacist can see on the receipt), not as kit numbers: kit numbers
are random and carry nothing, so counts are all the rules and the adversary need.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from app.domain.common_expiry import Tier
from app.domain.forecast import DueCalendar

N_FEATURES = 10
"""Per subject: see `SubjectSeen.features`."""


@dataclass
class SubjectSeen:
    """What blinded roles saw of one subject, summed over its visits."""

    refused_shown: int = 0
    """Refusals while the site showed at least as many dispensable kits as the visit needed."""
    served_while_refused: int = 0
    """Visits served on a day another subject of the site was refused."""
    later_expiry: int = 0
    """Kits handed out that expire later than the earliest dispensable kit on the shelf."""
    expiry_gap_days: int = 0
    newest_shipment: int = 0
    """Kits from the shipment the site received last."""
    kits: int = 0
    shipment_after_days: int = 60
    """Days from randomization to the site's next shipment request (60: none within 60)."""
    shipment_after_size: int = 0
    stranded_tiers: int = 0
    """Tiers this subject took the last kits of one content from, leaving the other content's
    kits there stranded: the next subject is served from another tier while kits remain."""

    def features(self, vials: int) -> list[float]:
        kits = max(self.kits, 1)
        return [
            float(self.refused_shown > 0),
            float(self.refused_shown),
            float(self.served_while_refused),
            self.later_expiry / kits,
            self.expiry_gap_days / kits / 30,
            self.newest_shipment / kits,
            self.shipment_after_days / 60,
            self.shipment_after_size / 20,
            float(vials),
            float(self.stranded_tiers),
        ]


@dataclass
class Subject:
    site: int
    stage: str
    level: Decimal
    arm: str
    day_one: int
    vials: int
    weight: float
    weight_used: float
    stop_index: int
    """The visit before which the subject stops treatment (past the last visit: never)."""
    next_index: int = 1
    seen: SubjectSeen = field(default_factory=SubjectSeen)


@dataclass
class Shelf:
    """Available kits of a site or depot: per content, count per tier (expiry date, shipment
    that brought the kits; 0 at a depot)."""

    counts: dict[str, Counter[Tier]]
    stranded: dict[str, Counter[Tier]] = field(default_factory=dict)
    """Kits of tiers another content has run out of: never handed out again (the common-tier
    rule offers a tier only while every content holds it), kept apart so that the rule does
    not walk past them at every visit; they still expire and count as left at the end."""

    totals: dict[str, int] = field(default_factory=dict)
    """Per content (in the study's order), the kits on the shelf, stranded ones included."""

    @classmethod
    def empty(cls, contents: tuple[str, ...]) -> Shelf:
        return cls(
            {c: Counter() for c in contents},
            {c: Counter() for c in contents},
            dict.fromkeys(contents, 0),
        )

    _first: date | None = None
    stale: bool = True
    """The earliest expiry may have moved since `earliest` last looked."""

    def add(self, content: str, tier: Tier, count: int) -> None:
        self.counts[content][tier] += count
        self.totals[content] += count
        self.stale = True

    def take(self, content: str, tier: Tier, count: int = 1, strand: bool = False) -> int:
        """Take kits; with `strand`, a tier whose content ran out strands the other contents'
        kits there. Returns the kits it stranded."""
        row = self.counts[content]
        row[tier] -= count
        self.totals[content] -= count
        if row[tier]:
            return 0
        del row[tier]
        self.stale = True
        stranded = 0
        if strand:
            for other, kits in self.counts.items():
                if tier in kits:
                    moved = kits.pop(tier)
                    self.stranded[other][tier] += moved
                    stranded += moved
        return stranded

    def expire(self, cutoff: date) -> dict[str, int]:
        """Remove every kit expiring on or before `cutoff`; how many per content."""
        gone: dict[str, int] = {}
        self.stale = True
        for rows in (self.counts, self.stranded):
            for content, row in rows.items():
                for tier in [t for t in row if t[0] <= cutoff]:
                    gone[content] = gone.get(content, 0) + row.pop(tier)
        for content, n in gone.items():
            self.totals[content] -= n
        return gone

    def earliest(self) -> date | None:
        """The earliest expiry date on the shelf (kept until the shelf changes)."""
        if self.stale:
            dates = [
                t[0] for rows in (self.counts, self.stranded) for r in rows.values() for t in r
            ]
            self._first, self.stale = (min(dates) if dates else None), False
        return self._first

    def left(self, content: str) -> int:
        """Kits of the content on the shelf, stranded ones included."""
        return self.totals[content]

    def by_date(self, after: date) -> dict[str, dict[date, int]]:
        """Kits expiring later than `after`, per content and expiry date."""
        out: dict[str, dict[date, int]] = {}
        for content, row in self.counts.items():
            dates: dict[date, int] = {}
            for (expiry, _), n in row.items():
                if expiry > after:
                    dates[expiry] = dates.get(expiry, 0) + n
            out[content] = dates
        return out


@dataclass
class Shipment:
    id: int
    site: int
    arrival_day: int
    kits: dict[str, dict[str, Counter[date]]]
    """Per stage pool, per content, kits per expiry date."""

    @property
    def size(self) -> int:
        return sum(sum(row.values()) for rows in self.kits.values() for row in rows.values())


@dataclass
class Tally:
    """Counts per content that the trial's figures are made of."""

    shipped: Counter[str] = field(default_factory=Counter)
    dispensed: Counter[str] = field(default_factory=Counter)
    expired_at_sites: Counter[str] = field(default_factory=Counter)
    left_at_sites: Counter[str] = field(default_factory=Counter)
    visits_due: int = 0
    visits_missed: int = 0
    randomization_refusals: int = 0
    visit_refusals: int = 0
    subjects_lost: int = 0
    """Eligible subjects not randomized within the grace days because the site lacked kits."""
    shipments: int = 0


@dataclass
class SiteState:
    code: str
    depot: int
    lead_days: int
    rate_per_day: float
    activation_day: int
    shelves: dict[str, Shelf]
    """Per stage pool (app/domain/stage_pools.py): the kits shipped for that stage's subjects."""
    calendars: dict[str, DueCalendar]
    """Per stage pool: the pending visits of its subjects on treatment."""
    in_transit: dict[str, Counter[str]] = field(default_factory=dict)
    last_received: int = -1
    refused_today: list[int] = field(default_factory=list)
    served_today: list[int] = field(default_factory=list)
    refused_vials: dict[str, int] = field(default_factory=dict)
    """Per stage pool, the most vials a visit refused today needed."""
    waiting_shipment: list[int] = field(default_factory=list)
    """Subjects randomized since the site's last shipment request."""
    dirty: bool = True
    """Something the resupply decides on changed today."""
    earliest: date | None = None
    """The earliest expiry date on the shelf at the start of the day."""
    stale: bool = True
    """A shelf changed since `earliest` was reckoned (kept here so the day's start need not
    ask every pool's shelf)."""
    shares: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per pool, the shares of need at the last check."""
    slack: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per pool and content, the position above safety at the last check (a pool missing: a
    shipment was due, or the pool needs nothing)."""
    spent: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per pool, how much of that slack the dispensings since could have used at most."""
    next_check: int = 0
    """The next day on which time alone (a visit entering the lead time, a kit ageing out)
    can change the decision: checking only then and after events decides as a daily check."""

    def first_expiry(self) -> date | None:
        """The earliest expiry date on the site's shelves, every pool (what a pharmacist sees)."""
        dates = [d for d in (s.earliest() for s in self.shelves.values()) if d is not None]
        return min(dates) if dates else None

    def left(self, content: str) -> int:
        """Kits of the content on the site's shelves, every pool, stranded ones included."""
        return sum(s.left(content) for s in self.shelves.values())

    def stock(self) -> dict[str, int]:
        """`left` of every content, in the study's order."""
        shelves = [s.totals for s in self.shelves.values()]
        return {c: sum([t[c] for t in shelves]) for c in shelves[0]} if shelves else {}


@dataclass
class TrialRecord:
    """What one trial gives the figures: tallies, subjects with what was seen, stock over time."""

    tally: Tally
    subjects: list[Subject]
    stock_by_week: list[list[dict[str, int]]]
    """Per week, per site, the dispensable stock per content at the week's start."""
    refusal_weeks: list[set[int]]
    """Per site, the weeks in which a visit or randomization was refused."""
    days: int
