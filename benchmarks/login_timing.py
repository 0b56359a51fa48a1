"""`python -m benchmarks.login_timing`: does a login take as long for an unknown user as for a
real one? Interleaved rounds of four kinds of failed login (unknown user, real user with a wrong
password, disabled user, a user name of 80 characters) and the successful login, with the
production Argon2 parameters, through the service's `login` on a SQLite demo database. Prints
the median of each kind and its ratio to the real user's wrong password; an unknown user must
not be told apart by time (the goal: every ratio within 0.90 to 1.10)."""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import update

from app.db.engine import Database
from app.db.migrate import upgrade
from app.db.models import User
from app.domain.errors import DomainError
from app.domain.study import load_study
from app.services.auth import login
from app.services.demo import set_up_demo
from app.settings import Settings

PASSWORD = "timing-check-password-7"
KINDS = ("real user, wrong password", "unknown user", "disabled user", "long unknown name")


def _attempt(db: Database, settings: Settings, *, username: str, password: str, n: int) -> float:
    started = time.perf_counter()
    try:
        login(db, settings=settings, username=username, password=password, source=f"10.9.{n}")
    except DomainError as exc:
        if exc.code != "unauthorized":
            raise
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    os.environ["IRT_PASSWORD_HASH_PROFILE"] = "standard"  # the hasher reads the environment
    # generous free failures: the throttle must not answer before the password check here
    settings = Settings(
        password_hash_profile="standard",
        login_free_failures=10**6,
        login_account_free_failures=10**6,
        login_source_free_failures=10**6,
    )
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'timing.db'}"
        upgrade(url)
        db = Database(url)
        set_up_demo(db, study=load_study(), password=PASSWORD)
        with db.write() as session:
            session.execute(update(User).where(User.username == "sponsor").values(active=False))
        names = {
            KINDS[0]: "investigator",
            KINDS[1]: "no-such-user",
            KINDS[2]: "sponsor",
            KINDS[3]: "x" * 80,
        }
        times: dict[str, list[float]] = {kind: [] for kind in (*KINDS, "success")}
        tries = [(kind, name, "wrong") for kind, name in names.items()]
        tries.append(("success", "coordinator", PASSWORD))
        shuffle = random.Random(1).shuffle
        for n in range(args.rounds):
            shuffle(tries)  # no kind always runs first in a round, or just after another
            for kind, name, password in tries:
                times[kind].append(_attempt(db, settings, username=name, password=password, n=n))
        base = statistics.median(times[KINDS[0]])
        print(f"{args.rounds} rounds, production Argon2 parameters, SQLite")
        for kind, values in times.items():
            median = statistics.median(values)
            print(f"  {kind:28} median {median * 1000:7.1f} ms  ratio {median / base:5.3f}")


if __name__ == "__main__":
    main()
