"""Each site's time zone, on both engines: a new site gets its country's, the sponsor sets
another through the use case the API, the page and the CLI share (audited, an unknown zone
refused and the refusal recorded), and the exports follow it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.db.models import AuditEntry, Site
from app.domain.errors import InvalidInput, NotFound
from app.domain.roles import Role
from app.services import admin_commands, study_setup
from app.services.actor import Actor
from app.services.transaction import writing
from tests.support.cli import as_demo_user

SPONSOR = Actor("sponsor", Role.SPONSOR_ADMIN, frozenset())


def _actions(db: Database, site_id: str) -> list[str]:
    with db.read() as session:
        query = select(AuditEntry.action).where(AuditEntry.entity_id == site_id)
        return list(session.scalars(query.order_by(AuditEntry.seq)))


def test_a_site_is_in_its_countrys_time_zone_until_the_sponsor_sets_it(demo_db: Database) -> None:
    with demo_db.read() as session:
        zones = {i: z for i, z in session.execute(select(Site.id, Site.timezone))}
    assert zones == {"DE01": "Europe/Berlin", "DE02": "Europe/Berlin", "US01": "America/New_York"}
    with writing(demo_db) as session:
        study_setup.add_site(session, actor=SPONSOR, site_id="FR01", name="Paris", country="FR")
        study_setup.add_site(
            session, actor=SPONSOR, site_id="US02", name="Denver", country="US",
            timezone="America/Denver",
        )  # fmt: skip
    changed = admin_commands.set_site_timezone(
        db=demo_db, actor=SPONSOR, site_id="US01", timezone="America/Chicago"
    )
    assert (changed.site_id, changed.timezone) == ("US01", "America/Chicago")
    with pytest.raises(InvalidInput) as refused:
        admin_commands.set_site_timezone(
            db=demo_db, actor=SPONSOR, site_id="US01", timezone="Europe/Atlantis"
        )
    assert "Unknown time zone 'Europe/Atlantis'" in refused.value.detail
    with pytest.raises(NotFound):
        admin_commands.set_site_timezone(db=demo_db, actor=SPONSOR, site_id="XX99", timezone="UTC")
    with demo_db.read() as session:
        zones = {i: z for i, z in session.execute(select(Site.id, Site.timezone))}
    assert (zones["FR01"], zones["US02"], zones["US01"]) == (
        "Europe/Paris", "America/Denver", "America/Chicago",
    )  # fmt: skip
    assert _actions(demo_db, "US01")[-2:] == ["site.timezone", "site.timezone_refused"]
    with pytest.raises(InvalidInput), writing(demo_db) as session:
        study_setup.add_site(
            session, actor=SPONSOR, site_id="XX01", name="X", country="DE", timezone="CET+1"
        )


def test_the_cli_sets_and_lists_the_time_zone(
    demo_db: Database, db_url: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["sites", "set-timezone", "DE02", "Europe/Vienna", "--database-url", db_url]
    result = runner.invoke(app, as_demo_user(args))
    assert result.exit_code == 0, result.output
    assert "Site DE02 is in time zone Europe/Vienna." in result.output
    bad = runner.invoke(app, as_demo_user([*args[:3], "Nowhere", *args[4:]]))
    assert bad.exit_code == 1 and "Unknown time zone 'Nowhere'" in bad.output
    listed = runner.invoke(app, as_demo_user(["sites", "list", "--database-url", db_url]))
    assert "Europe/Vienna" in listed.output and "America/New_York" in listed.output
