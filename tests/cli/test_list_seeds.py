"""`irt lists generate` and `verify` with seeds, on both engines: a seed comes from a file or
stdin and holds 128 bits at least; a generated one has 256 bits and is shown once; the database
keeps only its SHA-256 (docs/randomization.md, "Seeds")."""

from __future__ import annotations

import hashlib
import re
import secrets
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import app
from app.db.engine import Database
from app.domain import randomization_list as rl
from app.domain.study import load_study
from tests.support.cli import as_demo_user
from tests.support.databases import assert_unchanged, snapshot

runner = CliRunner()
SEED_64 = re.compile(r"\b[0-9a-f]{64}\b")


def irt(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, as_demo_user(list(args)), input=stdin, env=env)
    return result.exit_code, result.output


@pytest.fixture
def study_url(db: Database, db_url: str) -> str:
    """A migrated database with the study loaded and no list yet."""
    assert irt("study", "load", "--database-url", db_url)[0] == 0
    return db_url


def _seed_file(tmp_path: Path, seed: str, name: str = "seed.txt") -> Path:
    path = tmp_path / name
    path.write_text(seed + "\n", "utf-8")
    return path


def _assert_lists_from(db: Database, url: str, seed: str) -> None:
    """The stored lists are the seed's, and the database holds its SHA-256, never the seed:
    not in any row, and (SQLite) not in any byte of the database's files."""
    code, output = irt("lists", "show-commitment", "--database-url", url)
    assert code == 0
    for scope, slots in rl.generate_all(seed, load_study()).items():
        assert f"{scope}  {rl.commitment(slots)}  generated" in output
    with db.engine.connect() as conn:
        stored = set(conn.execute(text("SELECT seed_sha256 FROM randomization_lists")).scalars())
    assert stored == {hashlib.sha256(seed.encode()).hexdigest()}
    assert seed not in repr(snapshot(db))
    if db.engine.dialect.name == "sqlite":
        path = Path(str(make_url(url).database))
        files = [f for f in path.parent.iterdir() if f.name.startswith(path.name)]
        assert files
        for file in files:
            assert seed.encode() not in file.read_bytes(), file.name


def _no_lists(db: Database) -> bool:
    with db.engine.connect() as conn:
        count: int = conn.execute(text("SELECT count(*) FROM randomization_lists")).scalar_one()
    return count == 0


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ("1", "1 hex digits, 4 bits at most"),
        ("a1b2c3d4" * 3 + "e5f6a7b", "31 hex digits"),
        ("correct horse battery staple, very long text", "other than hex digits"),
        ("deadbeef" * 8, "only 5 different hex digits"),
    ],
)
def test_a_weak_seed_is_refused_and_nothing_is_stored(
    db: Database, study_url: str, tmp_path: Path, seed: str, message: str
) -> None:
    before = snapshot(db)
    path = _seed_file(tmp_path, seed)
    code, output = irt("lists", "generate", "--seed-file", str(path), "--database-url", study_url)
    assert code == 1
    assert message in output and "128 bits" in output and "openssl rand -hex 32" in output
    assert len(seed) < 8 or seed not in output  # a refusal never repeats the seed
    assert_unchanged(db, before)


def test_a_seed_on_the_command_line_or_in_the_environment_is_refused(
    db: Database, study_url: str
) -> None:
    seed = secrets.token_hex(32)
    for args, env in (
        (["--seed", seed], None),
        ([], {"IRT_LIST_SEED": seed}),
    ):
        code, output = irt("lists", "generate", *args, "--database-url", study_url, env=env)
        assert code == 1
        assert "--seed-file" in output and "was not used" in output and seed not in output
    assert _no_lists(db)


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_a_256_bit_seed_is_accepted_from_a_file_or_stdin(
    db: Database, study_url: str, tmp_path: Path, via: str
) -> None:
    seed = secrets.token_hex(32)
    if via == "file":
        args, stdin = ["--seed-file", str(_seed_file(tmp_path, seed))], None
    else:
        args, stdin = ["--seed-file", "-"], seed + "\n"
    code, output = irt("lists", "generate", *args, "--database-url", study_url, stdin=stdin)
    assert code == 0, output
    assert "Generated lists for C1, C2, C3, P2" in output
    assert seed not in output and not SEED_64.search(output)  # a supplied seed is not shown
    _assert_lists_from(db, study_url, seed)


def test_a_generated_seed_has_64_hex_digits_and_is_shown_once(db: Database, study_url: str) -> None:
    code, output = irt("lists", "generate", "--database-url", study_url)
    assert code == 0, output
    shown = SEED_64.findall(output)
    assert len(shown) == 1
    assert "sealed statistician's envelope" in output
    _assert_lists_from(db, study_url, shown[0])
    code, output = irt("lists", "show-commitment", "--database-url", study_url)
    assert shown[0] not in output


def test_a_generated_seed_goes_to_a_new_private_file_instead(
    db: Database, study_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "envelope" / "seed.txt"
    out.parent.mkdir()
    code, output = irt("lists", "generate", "--seed-out", str(out), "--database-url", study_url)
    assert code == 0, output
    seed = out.read_text("utf-8").strip()
    assert len(seed) == 64 and SEED_64.fullmatch(seed)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert seed not in output and str(out) in output
    _assert_lists_from(db, study_url, seed)

    # an existing file is never overwritten; a failed generation leaves no seed file behind
    code, output = irt("lists", "generate", "--seed-out", str(out), "--database-url", study_url)
    assert code == 1 and "must not exist" in output
    assert out.read_text("utf-8").strip() == seed
    other = tmp_path / "envelope" / "second.txt"
    code, output = irt("lists", "generate", "--seed-out", str(other), "--database-url", study_url)
    assert code == 1 and "exists already" in output
    assert not other.exists()


def test_verify_regenerates_with_the_right_seed_and_names_a_wrong_one(
    study_url: str, tmp_path: Path
) -> None:
    seed = secrets.token_hex(32)
    path = _seed_file(tmp_path, seed)
    assert irt("lists", "generate", "--seed-file", str(path), "--database-url", study_url)[0] == 0

    code, output = irt("lists", "verify", "--database-url", study_url)
    assert code == 0 and "P2: ok (not regenerated: give the seed with --seed-file)" in output

    for args, stdin in ((["--seed-file", str(path)], None), (["--seed-file", "-"], seed)):
        code, output = irt("lists", "verify", *args, "--database-url", study_url, stdin=stdin)
        assert code == 0, output
        assert "P2: ok\n" in output and "C1: ok\n" in output and "not regenerated" not in output

    wrong = _seed_file(tmp_path, secrets.token_hex(32), "wrong.txt")
    code, output = irt("lists", "verify", "--seed-file", str(wrong), "--database-url", study_url)
    assert code == 1
    assert "P2: BROKEN" in output and "the seed given is not this list's seed" in output


def test_verify_names_a_list_that_differs_from_its_seed(
    db: Database, study_url: str, tmp_path: Path
) -> None:
    seed = secrets.token_hex(32)
    path = _seed_file(tmp_path, seed)
    assert irt("lists", "generate", "--seed-file", str(path), "--database-url", study_url)[0] == 0
    # another list's slots, with the list's commitment to match: the audit log and the seed
    # both tell
    # (C1 holds 8 slots: one other seed in about 16 gives the same list, so draw until it differs)
    scope = load_study().scope("C1")
    other = rl.generate_list(secrets.token_hex(32), scope)
    while other == rl.generate_list(seed, scope):
        other = rl.generate_list(secrets.token_hex(32), scope)
    with db.engine.begin() as conn:
        list_id = conn.execute(
            text("SELECT id FROM randomization_lists WHERE scope = 'C1'")
        ).scalar_one()
        conn.execute(text("DELETE FROM randomization_slots WHERE list_id = :id"), {"id": list_id})
        for s in other:
            conn.execute(
                text(
                    "INSERT INTO randomization_slots (list_id, stratum, sequence, block, "
                    "block_size, arm) VALUES (:id, :stratum, :sequence, :block, :size, :arm)"
                ),
                {
                    "id": list_id,
                    "stratum": s.stratum,
                    "sequence": s.sequence,
                    "block": s.block,
                    "size": s.block_size,
                    "arm": s.arm,
                },
            )
        conn.execute(
            text("UPDATE randomization_lists SET sha256 = :digest WHERE id = :id"),
            {"digest": rl.commitment(other), "id": list_id},
        )
    code, output = irt("lists", "verify", "--seed-file", str(path), "--database-url", study_url)
    assert code == 1
    assert "C1: BROKEN" in output and "regenerating from the seed gives" in output
    assert "P2: ok" in output
