"""The roles, the groups of them that share a permission, and who is blinded.

Each group is named for who it is and defined once here, so that the API routes, the pages,
their menu and the CLI admit the same people (the route tests check every route's roles)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SITE_COORDINATOR = "site_coordinator"
    INVESTIGATOR = "investigator"
    PHARMACIST = "pharmacist"
    SUPPLY_MANAGER = "supply_manager"
    SPONSOR_ADMIN = "sponsor_admin"
    UNBLINDED_MONITOR = "unblinded_monitor"


SITE_STAFF = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR, Role.PHARMACIST})
"""Who works at sites: registers and doses subjects, reads confirmations, and sees only its
own sites' objects."""

SITE_ROLES = SITE_STAFF
"""The site staff, under the name the visibility rules use (objects of their own sites only)."""

RANDOMIZERS = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})
"""Who randomizes subjects."""

INVESTIGATORS = frozenset({Role.INVESTIGATOR})
"""Who may break the blind of a subject in an emergency."""

PHARMACISTS = frozenset({Role.PHARMACIST})
"""Who replaces a damaged or lost dispensed kit."""

SUPPLY_MANAGERS = frozenset({Role.SUPPLY_MANAGER})
"""Who requests, ships and cancels shipments, decides quarantines and sets supply levels."""

PHARMACY = PHARMACISTS | SUPPLY_MANAGERS
"""Who handles site stock: inventory, shipments and their receipt, kit status."""

SPONSOR_ADMINS = frozenset({Role.SPONSOR_ADMIN})
"""Who activates sites, opens and closes cohorts and records the phase II dose."""

UNBLINDED_MONITORS = frozenset({Role.UNBLINDED_MONITOR})
"""Who sees allocations, the audit trail and the unblinded exports."""

OVERSIGHT = UNBLINDED_MONITORS | SPONSOR_ADMINS
"""Who oversees the whole study: the unblinding log and the blinded exports."""

DEPOT_READERS = SUPPLY_MANAGERS | UNBLINDED_MONITORS
"""Who reads a depot's stock."""

KIT_IMPORTERS = UNBLINDED_MONITORS
"""Who imports the packager's kit list: it names each kit's content, so only an unblinded role.
(A blinded supply manager who uploaded it, pooled with the sponsor's blinded EX export that links
kit numbers to subjects, would unblind every subject.)"""

FORECAST_READERS = PHARMACY | OVERSIGHT
"""Who reads the supply forecast (blinded totals for all but the unblinded monitor)."""

PLANNERS = SUPPLY_MANAGERS | OVERSIGHT
"""Who runs supply simulations (simulated trials reveal nothing of the real one)."""

CONFIRMATION_READERS = SITE_STAFF | UNBLINDED_MONITORS
"""Who opens the confirmation pages (the API's confirmations are for the site staff only)."""

CORRECTORS = RANDOMIZERS
"""Who corrects a subject's data (stratification factors, eligibility answers, weight, year of
birth, sex) with a reason and a signature: the site staff who entered it."""

MISSTRATIFICATION_READERS = SITE_STAFF | OVERSIGHT
"""Who reads the mis-stratification report: site staff (their sites) and the sponsor admin,
strata only; the unblinded monitor with the arm."""

EVERYONE = frozenset(Role)
"""Every role: the home page and the enrolment report."""

BLINDED_ROLES = EVERYONE - UNBLINDED_MONITORS
