"""Signed checkpoints of the audit chain, kept outside the database.

Someone who can write to the database can rewrite the trail and recompute every hash; they
cannot sign. After each commit that passes a multiple of N entries or changes a stage, the
chain head (seq, hash) is signed with an Ed25519 key that never enters the database and
appended to a JSON-lines file (docs/deployment.md, "Audit checkpoints")."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import weakref
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import make_url

from app.db.engine import Database
from app.domain.checkpoints import Checkpoint, checkpoint_reason, signed_payload
from app.settings import Settings

log = logging.getLogger(__name__)


def public_key_path(private_key_file: Path) -> Path:
    return private_key_file.with_name(private_key_file.name + ".pub")


def keygen(private_key_file: Path) -> Path:
    """Write a new private key (PEM, owner-only) and its public key beside it; never overwrite."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public = public_key_path(private_key_file)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_of(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def public_key_of(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class CheckpointFile:
    """What a verifier reads: the checkpoints whose signature holds, and the lines that fail."""

    checkpoints: list[Checkpoint]
    bad_lines: list[str]


class CheckpointLog:
    """The append-only file, the public key that verifies it, and (on the service) the signer."""

    def __init__(
        self,
        path: Path,
        *,
        public_key: Ed25519PublicKey,
        private_key: Ed25519PrivateKey | None = None,
        every: int = 100,
    ) -> None:
        self.path, self.public_key, self.private_key, self.every = (
            path,
            public_key,
            private_key,
            every,
        )

    def append(self, *, seq: int, hash: str, why: str) -> Checkpoint:
        """Sign and append one line; O_APPEND with one write keeps concurrent writers' lines
        whole, and fsync makes it durable before the next commit can rely on it."""
        if self.private_key is None:
            raise RuntimeError("no checkpoint signing key configured")
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kid = key_id(self.public_key)
        payload = signed_payload(seq=seq, hash=hash, at=at, why=why, key_id=kid)
        signature = base64.b64encode(self.private_key.sign(payload)).decode()
        point = Checkpoint(seq, hash, at, why, kid, signature)
        line = (json.dumps(asdict(point), sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return point

    def read(self) -> CheckpointFile:
        """Every line, its signature checked; a line that fails is named, never trusted."""
        if not self.path.exists():
            return CheckpointFile([], [])
        good, bad = [], []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                point = Checkpoint(**json.loads(line))
                payload = signed_payload(
                    seq=point.seq, hash=point.hash, at=point.at, why=point.why, key_id=point.key_id
                )
                self.public_key.verify(base64.b64decode(point.signature), payload)
            except (ValueError, TypeError, InvalidSignature):
                bad.append(f"line {number} of {self.path.name}: not a validly signed checkpoint")
                continue
            good.append(point)
        return CheckpointFile(good, bad)

    def latest(self, count: int = 10) -> list[Checkpoint]:
        return sorted(self.read().checkpoints, key=lambda c: c.seq)[-count:]


def log_from_settings(settings: Settings) -> CheckpointLog | None:
    """The configured log; None when no checkpoint file is set. Without the private key (a
    verifier's machine) it verifies with the public key and signs nothing."""
    if not settings.checkpoint_file:
        return None
    private_file = Path(settings.checkpoint_key_file) if settings.checkpoint_key_file else None
    private = private_key_of(private_file) if private_file else None
    if settings.checkpoint_public_key_file:
        public = public_key_of(Path(settings.checkpoint_public_key_file))
    elif private is not None:
        public = private.public_key()
    else:
        raise ValueError("IRT_CHECKPOINT_FILE needs IRT_CHECKPOINT_KEY_FILE or _PUBLIC_KEY_FILE")
    return CheckpointLog(
        Path(settings.checkpoint_file),
        public_key=public,
        private_key=private,
        every=settings.checkpoint_every,
    )


_LOGS: weakref.WeakKeyDictionary[Database, CheckpointLog] = weakref.WeakKeyDictionary()


def beside(database: Path) -> tuple[Path, Path]:
    """The checkpoint file and signing key that `irt demo` keeps beside its SQLite file (unless
    configured), so that later `irt` commands on that file find them too."""
    return (
        database.with_name(database.stem + ".checkpoints.jsonl"),
        database.with_name(database.stem + ".checkpoint-key.pem"),
    )


def log_for(settings: Settings, *, database_url: str) -> CheckpointLog | None:
    """The configured log; without one, for a SQLite file, the log `irt demo` keeps beside it
    (when both its file and key are there)."""
    configured = log_from_settings(settings)
    if configured is not None or settings.checkpoint_file:
        return configured
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path, key = beside(Path(url.database))
    if not (path.exists() and key.exists()):
        return None
    return log_from_settings(
        settings.model_copy(update={"checkpoint_file": str(path), "checkpoint_key_file": str(key)})
    )


def attach(db: Database, checkpoint_log: CheckpointLog | None) -> Database:
    """Give the database its checkpoint log: each writing transaction on it then checkpoints."""
    if checkpoint_log is None:
        _LOGS.pop(db, None)
    else:
        _LOGS[db] = checkpoint_log
    return db


def log_of(db: Database) -> CheckpointLog | None:
    return _LOGS.get(db)


@dataclass(frozen=True)
class Chained:
    """What one transaction appended to the chain (set by audit.flush)."""

    first_seq: int
    last_seq: int
    last_hash: str
    actions: tuple[str, ...]


def after_commit(db: Database, chained: Chained) -> Checkpoint | None:
    """Checkpoint the committed head if due. A failure is logged, never raised: the work is
    committed, and the next checkpoint covers these entries too."""
    checkpoint_log = log_of(db)
    if checkpoint_log is None or checkpoint_log.private_key is None:
        return None
    why = checkpoint_reason(
        first_seq=chained.first_seq,
        last_seq=chained.last_seq,
        actions=chained.actions,
        every=checkpoint_log.every,
    )
    if why is None:
        return None
    try:
        return checkpoint_log.append(seq=chained.last_seq, hash=chained.last_hash, why=why)
    except OSError:
        log.exception("Writing the audit checkpoint failed; the next one covers these entries")
        return None
