"""Who is acting: the authenticated user as the services see them."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.roles import SITE_ROLES, Role


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    site_ids: frozenset[str]
    is_system: bool = False

    @property
    def audit_role(self) -> str:
        """The role the audit trail records: the user's, or `system` for the service itself."""
        return "system" if self.is_system else str(self.role)

    @property
    def sees_every_site(self) -> bool:
        """Study-level roles see every site; site roles only their own."""
        return self.role not in SITE_ROLES

    def sees_site(self, site_id: str) -> bool:
        return self.sees_every_site or site_id in self.site_ids


def job(name: str, role: Role = Role.SPONSOR_ADMIN) -> Actor:
    """One of the service's own jobs (`system:resupply`, `system:outbox`, `system:demo`,
    `system:setup`), recorded with role `system`: the trail tells it apart from any person,
    whose user name can never hold a colon (app/services/study_setup.py)."""
    return Actor(f"system:{name}", role, frozenset(), is_system=True)


SYSTEM = Actor("system", Role.SPONSOR_ADMIN, frozenset(), is_system=True)
"""The service itself, where no job name fits: study-level rights, recorded in the audit trail
as user `system`, role `system`. The `irt` command line acts as a named user instead
(app/cli/identity.py)."""
