"""What `verify` reads: the files, the keys it may trust, the head witness, the lock.

Which public key to trust decides what verification proves. In order of preference:

1. ``--public-key FILE`` (repeatable): a copy kept out of band — the only source a
   tamperer with write access to the log *and* its surroundings cannot have replaced;
2. the private key file from the config (its public half): fine on the machine itself;
3. ``audit.pub`` beside the log: convenient, but whoever can rewrite the log can rewrite
   it too, so the report says the keys are not independent.
"""

from __future__ import annotations

import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sentinel_stack.audit.keys import (
    PUBLIC_KEY_FILE,
    AuditKeyError,
    HeadWitness,
    load_public_keys,
    read_witness,
    witness_path,
)
from sentinel_stack.audit.layout import file_number, log_files, read_lines, writer_running
from sentinel_stack.audit.verify import VerifyReport, verify_lines


class NothingToVerify(RuntimeError):
    pass


def log_targets(targets: list[Path]) -> tuple[list[Path], Path | None]:
    """The files to check, and the log directory when the target is a whole log."""
    if len(targets) == 1 and targets[0].is_dir():
        # No files at all is a verdict (the log was deleted), not a usage error.
        return log_files(targets[0]), targets[0]
    missing = [str(t) for t in targets if not t.is_file()]
    if missing:
        raise NothingToVerify(f"no such file: {', '.join(missing)}")
    numbered = all(file_number(t.name) is not None for t in targets)
    ordered = sorted(targets, key=lambda t: file_number(t.name) or 0) if numbered else targets
    return ordered, None


def trusted_keys(
    directory: Path, public_keys: list[Path], key_file: Path | None
) -> tuple[list[Ed25519PublicKey], str]:
    """The keys checkpoints must verify with, and a phrase saying where they came from."""
    if public_keys:
        keys = [k for path in public_keys for k in load_public_keys(path)]
        return keys, "out of band (" + ", ".join(str(p) for p in public_keys) + ")"
    if key_file is not None and key_file.is_file():
        try:
            return load_public_keys(key_file), f"the signing key {key_file}"
        except (AuditKeyError, PermissionError):
            pass
    beside = directory / PUBLIC_KEY_FILE
    if beside.is_file():
        return load_public_keys(beside), (
            f"{beside} beside the log — NOT independent: a tamperer who rewrote the log "
            "could replace it; pass --public-key with a copy kept elsewhere"
        )
    return [], "none found: no checkpoint can be authenticated"


def verify_path(
    targets: list[Path],
    *,
    public_keys: list[Path] | None = None,
    key_file: Path | None = None,
    head_file: Path | None = None,
    now: float | None = None,
) -> VerifyReport:
    """Verify a log directory (whole-log checks) or some of its files (a segment)."""
    files, directory = log_targets(targets)
    where = directory if directory is not None else files[-1].parent
    keys, source = trusted_keys(where, public_keys or [], key_file)
    explicit = read_witness(head_file) if head_file is not None else None

    def witness(log_id: str) -> HeadWitness | None:
        if head_file is not None:
            return explicit if explicit is not None and explicit.log_id == log_id else None
        if key_file is None:
            return None
        return read_witness(witness_path(key_file, log_id))

    return verify_lines(
        [read_lines(path) for path in files],
        keys,
        whole=directory is not None,
        live=writer_running(where),
        now=time.time() if now is None else now,
        witness=witness,
        keys_source=source,
    )
