"""`irt outbox`: deliver the notifications queued by committed transactions; a failed delivery
stays queued for the next run, and the exit code tells the scheduler."""

from __future__ import annotations

import typer

from app.cli.common import DatabaseUrl, command_group, fail, open_database
from app.services import outbox
from app.settings import get_settings

outbox_app = command_group("Notifications.")


@outbox_app.command("drain")
def outbox_drain(database_url: DatabaseUrl = None) -> None:
    """Deliver waiting notifications (IRT_OUTBOX_WEBHOOK_URL or IRT_SMTP_HOST); failures stay."""
    db = open_database(database_url)
    try:
        send = outbox.sender_for(settings=get_settings())
    except RuntimeError as exc:
        fail(str(exc))
    sent, failed = outbox.drain(db, send=send)
    typer.echo(f"{sent} sent, {failed} failed (kept for the next drain).")
    if failed:
        raise typer.Exit(1)
