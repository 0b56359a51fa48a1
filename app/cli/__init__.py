"""The `irt` command line: the root application and the whole command tree in one place.

Each group lives in its own module; they are mounted here in the order `irt --help` lists them.
"""

from __future__ import annotations

import sys

import typer

from app.cli import (
    amendments,
    audit,
    database,
    exports,
    identity,
    kits,
    lists,
    outbox,
    reports,
    server,
    shipments,
    simulation,
    sites,
    stages,
    study,
    supply,
    tokens,
    users,
)
from app.domain.study import StudyDefinitionError

app = typer.Typer(
    help="IMC-002 IRT: randomization and trial supply management.", no_args_is_help=True
)


@app.callback()
def who(
    user: identity.UserOption = None, password_file: identity.PasswordFileOption = None
) -> None:
    """Who runs the command (app/cli/identity.py): --user NAME or IRT_TOKEN."""
    identity.set_credentials(user=user, password_file=password_file)


app.command()(server.serve)
app.command()(server.demo)
app.command("simulate")(simulation.simulate_command)

for name, group in (
    ("db", database.db_app),
    ("study", study.study_app),
    ("lists", lists.lists_app),
    ("depots", sites.depots_app),
    ("sites", sites.sites_app),
    ("users", users.users_app),
    ("tokens", tokens.tokens_app),
    ("kits", kits.kits_app),
    ("supply", supply.supply_app),
    ("audit", audit.audit_app),
    ("outbox", outbox.outbox_app),
    ("cohorts", stages.cohorts_app),
    ("phase2-dose", stages.phase2_app),
    ("caps", amendments.caps_app),
    ("shipments", shipments.shipments_app),
    ("report", reports.report_app),
    ("export", exports.export_app),
):
    app.add_typer(group, name=name)


def main() -> None:
    """The `irt` entry point: a bad study file found while a command runs exits 1, untraced."""
    try:
        app()
    except StudyDefinitionError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        sys.exit(1)
