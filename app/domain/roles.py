"""The roles, what each may do, and who is blinded."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SITE_COORDINATOR = "site_coordinator"
    INVESTIGATOR = "investigator"
    PHARMACIST = "pharmacist"
    SUPPLY_MANAGER = "supply_manager"
    SPONSOR_ADMIN = "sponsor_admin"
    UNBLINDED_MONITOR = "unblinded_monitor"


SITE_ROLES = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST})
"""Roles that work at sites and see only their own sites' objects."""

BLINDED_ROLES = frozenset(Role) - {Role.UNBLINDED_MONITOR}
