"""`irt serve` and `irt demo`: run the API, on a loaded study or on a freshly built demo."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.cli.common import DatabaseUrl, fail, open_database, resolve_url
from app.db.engine import Database
from app.db.migrate import upgrade
from app.db.models import Study
from app.domain.environment import LABEL, Mode
from app.domain.study import load_study
from app.services import checkpoints
from app.services.demo import DEFAULT_PASSWORD, demo_password_problem, set_up_demo
from app.settings import Settings

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="TCP port.")]
Workers = Annotated[int, typer.Option(help="Server processes.")]
ForwardedAllowIps = Annotated[
    str | None,
    typer.Option(
        envvar="IRT_FORWARDED_ALLOW_IPS",
        help="Proxies (IPs or networks, comma-separated) whose X-Forwarded-Proto/For to "
        "believe, e.g. a TLS-terminating nginx; unset, those headers are ignored.",
    ),
]


def run_server(
    url: str, *, host: str, port: int, workers: int, forwarded_allow_ips: str | None = None
) -> None:
    """Serve with uvicorn, refusing a database without a study: the API cannot work without one."""
    import uvicorn

    os.environ["IRT_DATABASE_URL"] = url
    if forwarded_allow_ips is not None:
        os.environ["IRT_FORWARDED_ALLOW_IPS"] = forwarded_allow_ips
    if not os.environ.get("IRT_SECRET_KEY"):
        os.environ["IRT_SECRET_KEY"] = secrets.token_urlsafe(32)
        typer.echo("IRT_SECRET_KEY not set: using a random key (tokens end with this process).")
    try:  # a bad setting stops here with its name, not in every worker with a traceback
        settings = Settings()
    except ValidationError as exc:
        fail(f"Invalid setting: {exc}")
    db = open_database(url)
    with db.read() as session:
        loaded = session.execute(select(Study.id)).first() is not None
    db.dispose()
    if not loaded:
        fail(
            "No study is loaded in this database. Load one first: `irt study load` (then sites, "
            "users, lists and kits), or `irt demo --database-url URL --no-serve` for the demo."
        )
    metrics_dir = _metrics_directory(workers)
    if metrics_dir:
        typer.echo(f"Metrics of all {workers} workers are summed in {metrics_dir}.")
    typer.echo(f"Serving on http://{host}:{port} (API docs at /docs), {workers} worker(s).")
    if settings.forwarded_allow_ips:
        typer.echo(f"Believing X-Forwarded-Proto/For from {settings.forwarded_allow_ips}.")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,  # the app logs each request itself, as JSON with its id
        server_header=False,
        # uvicorn would believe the headers from 127.0.0.1 by default; the app does it instead,
        # from IRT_FORWARDED_ALLOW_IPS only (app/main.py), however it is started.
        proxy_headers=False,
    )


def _metrics_directory(workers: int) -> str | None:
    """Several worker processes share their metrics through files (prometheus_client's
    multiprocess mode): PROMETHEUS_MULTIPROC_DIR, or a fresh temporary directory. Files left by
    an earlier run are removed, or their counts would be added again."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if workers <= 1:
            return None
        directory = tempfile.mkdtemp(prefix="irt-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    Path(directory).mkdir(parents=True, exist_ok=True)
    for kind in ("counter", "gauge", "histogram", "summary"):  # prometheus_client's files only
        for stale in Path(directory).glob(f"{kind}_*.db"):
            stale.unlink()
    return directory


def serve(
    database_url: DatabaseUrl = None,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
    forwarded_allow_ips: ForwardedAllowIps = None,
) -> None:
    """Serve the API on a migrated database with a study loaded."""
    run_server(
        resolve_url(database_url),
        host=host,
        port=port,
        workers=workers,
        forwarded_allow_ips=forwarded_allow_ips,
    )


def _demo_checkpoints(database: Path, *, fresh: bool) -> checkpoints.CheckpointLog | None:
    """Unless configured, the demo keeps its signed checkpoints and its own signing key beside
    its database file (a recreated database starts a new checkpoint file); the server it
    starts inherits the settings through the environment."""
    if not os.environ.get("IRT_CHECKPOINT_FILE"):
        path = checkpoints.beside(database)[0]
        if fresh:
            path.unlink(missing_ok=True)
        os.environ["IRT_CHECKPOINT_FILE"] = str(path.resolve())
    if not os.environ.get("IRT_CHECKPOINT_KEY_FILE"):
        key = checkpoints.beside(database)[1]
        if not key.exists():
            checkpoints.keygen(key)
        os.environ["IRT_CHECKPOINT_KEY_FILE"] = str(key.resolve())
    try:
        return checkpoints.log_from_settings(Settings())
    except (ValueError, OSError) as exc:
        fail(f"Audit checkpoints: {exc}")


def demo(
    password: Annotated[
        str, typer.Option(envvar="IRT_DEMO_PASSWORD", help="Password of every demo user.")
    ] = DEFAULT_PASSWORD,
    database: Annotated[Path, typer.Option(help="SQLite file, recreated.")] = Path("irt-demo.db"),
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="Set up on this (empty) database instead."),
    ] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve afterwards.")] = (
        True
    ),
    if_empty: Annotated[bool, typer.Option(help="Skip set-up if a study is loaded.")] = False,
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
    forwarded_allow_ips: ForwardedAllowIps = None,
) -> None:
    """Create the IMC-002 demo study (depot, kits, sites, users, lists, cohort C1 open); serve."""
    weak = demo_password_problem(study=load_study(), password=password)
    if weak is not None:
        fail(f"--password: {weak}")
    if database_url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{database.resolve()}"
    else:
        url = database_url
    upgrade(url)
    db = Database(url)
    with db.read() as session:
        loaded = session.execute(select(Study.id)).first() is not None
    # the checkpoints sit beside the SQLite file set up (or the --database path for another
    # engine), and a new set-up starts a new checkpoint file
    parsed = make_url(url)
    sqlite_file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    beside = Path(sqlite_file) if sqlite_file else database
    checkpoints.attach(db, _demo_checkpoints(beside, fresh=not loaded))
    if loaded and not if_empty:
        fail("A study is loaded in that database already; the demo needs an empty one.")
    if not loaded:
        study = load_study()
        users = set_up_demo(db, study=study, password=password, mode=Mode.TRAINING)
        typer.echo(f"{LABEL}: demo study {study.code} ready in {url} (a training database)")
        typer.echo(
            f"Users (password from --password / IRT_DEMO_PASSWORD, default {DEFAULT_PASSWORD!r}):"
        )
        for user in users:
            where = ", ".join(user.site_ids) or "all sites"
            typer.echo(f"  {user.username:<14} {user.role:<18} {where}")
    db.dispose()
    if serve_after:
        run_server(
            url, host=host, port=port, workers=workers, forwarded_allow_ips=forwarded_allow_ips
        )
