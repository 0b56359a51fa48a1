"""Who is acting: the authenticated user as the services see them."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.roles import SITE_ROLES, Role


@dataclass(frozen=True)
class Actor:
    username: str
    role: Role
    site_ids: frozenset[str]

    def sees_site(self, site_id: str) -> bool:
        """Site roles see their own sites; study-level roles see every site."""
        return self.role not in SITE_ROLES or site_id in self.site_ids


SYSTEM = Actor("system", Role.SPONSOR_ADMIN, frozenset())
"""Set-up work done by the `irt` command line on the operator's behalf."""
