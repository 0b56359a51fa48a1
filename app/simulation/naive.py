"""The naive supply policy, kept only as the adversary's control: what the blind-safe rules
replaced. Each content is handed out first expiry first on its own, a visit is refused when its
own content lacks kits, and a shipment brings every content in equal numbers. The simulator runs
it with `policy = "per_content"` to show that the adversary does find the arms when they leak;
the service never uses it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

from app.domain.common_expiry import Tier
from app.domain.resupply import Levels, Position
from app.simulation.state import Shelf


def naive_dates(
    shelf: Shelf, *, content: str, vials: int, today: date, window_days: int
) -> list[Tier] | None:
    """First expiry first within one content; None when that content lacks kits."""
    cutoff = today + timedelta(days=window_days)
    row = shelf.counts[content]
    chosen: list[Tier] = []
    for tier in sorted(row):
        if tier[0] <= cutoff:
            continue
        chosen.extend([tier] * min(row[tier], vials - len(chosen)))
        if len(chosen) == vials:
            return chosen
    return None


def naive_quantities(positions: Mapping[str, Position], levels: Levels) -> dict[str, int]:
    """Below the trigger in any content: every content in the number of the largest shortfall."""
    short = [
        levels.target - (p.stock + p.in_transit - p.need_lead)
        for p in positions.values()
        if p.stock + p.in_transit - p.need_lead < levels.trigger
    ]
    return dict.fromkeys(positions, max(short)) if short else {}
