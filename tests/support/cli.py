"""Running `irt` as a named user in tests: every command that changes or reveals trial data
needs one (app/cli/identity.py). The demo users share one password, read from a file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import inspect, select

from app.db.engine import Database
from app.db.models import User
from app.domain.roles import Role
from app.services import study_setup
from app.services.actor import job
from app.services.transaction import writing
from tests.support.demo import DEMO_PASSWORD

PASSWORD_FILE = Path(tempfile.mkdtemp(prefix="irt-test-")) / "password"
PASSWORD_FILE.write_text(DEMO_PASSWORD + "\n", "utf-8")

USER_FOR = {
    "cohorts": "sponsor",
    "phase2-dose": "sponsor",
    "sites": "sponsor",
    "depots": "sponsor",
    "users": "sponsor",
    "study": "sponsor",
    "lists": "monitor",
    "kits": "monitor",
    "shipments": "supply",
    "report": "monitor",
    "export": "monitor",
    "audit": "monitor",
    "tokens": "sponsor",
}
"""The demo user each command group runs as (its role is the one the command needs)."""


STUDY_USERS = {
    "sponsor": Role.SPONSOR_ADMIN,
    "monitor": Role.UNBLINDED_MONITOR,
    "supply": Role.SUPPLY_MANAGER,
}


def ensure_study_users(url: str) -> None:
    """The study-level demo users, in a migrated database that lacks them (a test that starts
    from an empty database); made by the set-up job, as an operator's first accounts are."""
    db = Database(url)
    try:
        if not inspect(db.engine).has_table("users"):
            return
        with writing(db) as session:
            known = set(session.execute(select(User.username)).scalars())
            for name, role in STUDY_USERS.items():
                if name not in known:
                    study_setup.add_user(
                        session,
                        actor=job("setup"),
                        username=name,
                        password=DEMO_PASSWORD,
                        role=role,
                    )
    finally:
        db.dispose()


def as_demo_user(args: list[str], user: str | None = None) -> list[str]:
    """`args` run as `user`, or as the demo user of the command group (made first if the
    database has not got it)."""
    if user is None and args[:2] == ["report", "inventory"]:
        user = "supply"
    user = user or (USER_FOR.get(args[0]) if args else None)
    if user is None:
        return list(args)
    if "--database-url" in args:
        ensure_study_users(args[args.index("--database-url") + 1])
    return ["--user", user, "--password-file", str(PASSWORD_FILE), *args]
