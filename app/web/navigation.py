"""The menu: each page's entry, shown only to the roles that may open it (the same groups as
the pages' `page_actor`, from app/domain/roles.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.roles import (
    CONFIRMATION_READERS,
    EVERYONE,
    FORECAST_READERS,
    PHARMACY,
    SITE_STAFF,
    SPONSOR_ADMINS,
    SUPPLY_MANAGERS,
    UNBLINDED_MONITORS,
    Role,
)


@dataclass(frozen=True)
class NavItem:
    label: str
    url: str
    roles: frozenset[Role]
    description: str = ""


SIMULATION_MENU = SUPPLY_MANAGERS | UNBLINDED_MONITORS
"""The sponsor admin may open the simulation too, but it is not in the sponsor's menu."""

NAV: list[NavItem] = [
    NavItem("Subjects", "/subjects", SITE_STAFF, "Register, randomize and dose subjects."),
    NavItem("Confirmations", "/confirmations", CONFIRMATION_READERS, "Printable confirmations."),
    NavItem("Pharmacy", "/pharmacy", PHARMACY, "Site inventory and shipments."),
    NavItem(
        "Supply", "/supply", SUPPLY_MANAGERS, "Shipments, quarantine, supply levels, depot stock."
    ),
    NavItem("Forecast", "/supply/forecast", FORECAST_READERS, "Need per site."),
    NavItem("Simulation", "/supply/simulation", SIMULATION_MENU, "Simulated trials."),
    NavItem("Allocations", "/monitor/allocations", UNBLINDED_MONITORS, "Unblinded allocations."),
    NavItem("Unblindings", "/monitor/unblindings", UNBLINDED_MONITORS, "Emergency unblinding log."),
    NavItem(
        "Audit trail",
        "/monitor/audit",
        UNBLINDED_MONITORS,
        "The audit trail and its verification.",
    ),
    NavItem("Sites", "/admin/sites", SPONSOR_ADMINS, "Sites and their activation."),
    NavItem("Cohorts", "/admin/cohorts", SPONSOR_ADMINS, "Open and close phase Ib cohorts."),
    NavItem("Phase II dose", "/admin/phase2-dose", SPONSOR_ADMINS, "Record the phase II dose."),
    NavItem("Caps", "/admin/caps", SPONSOR_ADMINS, "Move unused places; study versions."),
    NavItem("Reports", "/reports/enrolment", EVERYONE),
]


def nav_for(role: Role | None) -> list[NavItem]:
    return [item for item in NAV if role is not None and role in item.roles]
