"""The checkpoint signing key, its public half, and the head witness kept beside the key.

The private key lives outside the log directory (whoever can rewrite the log must not
also be able to sign for it): ``[audit] key_file``, by default
``$XDG_CONFIG_HOME/sentinel-stack/<stack>-audit.key``. It is created on first use, mode
0600, as PKCS#8 PEM. The public key is written beside the log (``audit.pub``, every key
the log was ever signed with, PEM blocks one after another) for verifiers — who should
prefer a copy obtained out of band, since a tamperer can replace that file too.

The head witness (``<key_file>.heads/<log_id>.json``) remembers the newest checkpoint the
writer signed. It sits beside the key, not the log, so truncating the log back to an
older checkpoint — which leaves a perfectly valid shorter chain — is still caught.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBLIC_KEY_FILE = "audit.pub"


class AuditKeyError(RuntimeError):
    """A key file that cannot be used; the message names the file and what to do."""


class HeadWitness(msgspec.Struct, frozen=True, kw_only=True):
    log_id: str
    seq: int
    hash: str
    time: float
    file: str


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of SHA-256 over the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_or_create_private_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The key at ``path``, created (0600, parents 0700) when missing; True when created.

    Two launchers creating the same key at once end up with one key: the new key is
    written to a temporary file and hard-linked into place, which fails if another won.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")  # mode 0600
        try:
            os.write(fd, pem)
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # another launcher created it first: use theirs
            else:
                return key, True
        finally:
            Path(tmp).unlink(missing_ok=True)
    return _load_private_key(path), False


def _load_private_key(path: Path) -> Ed25519PrivateKey:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise AuditKeyError(
            f"audit key {path} is readable by others (mode {mode:04o}); "
            f"run `chmod 600 {path}` — and consider it leaked if others could read it"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise AuditKeyError(
            f"audit key {path} is not an unencrypted PEM private key ({exc}); "
            "move it away to let a new one be created, or point [audit] key_file elsewhere"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"audit key {path} is not an Ed25519 key; checkpoints need Ed25519")
    return key


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in ``path``: PEM public keys, or a PEM private key (whose
    public half is taken), one or more blocks."""
    text = path.read_bytes()
    keys: list[Ed25519PublicKey] = []
    for block in text.split(b"-----BEGIN ")[1:]:
        pem = b"-----BEGIN " + block
        try:
            if pem.startswith(b"-----BEGIN PRIVATE KEY"):
                private = serialization.load_pem_private_key(pem, password=None)
                if isinstance(private, Ed25519PrivateKey):
                    keys.append(private.public_key())
                continue
            public = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise AuditKeyError(f"{path}: a PEM block is not a key ({exc})") from None
        if isinstance(public, Ed25519PublicKey):
            keys.append(public)
    if not keys:
        raise AuditKeyError(f"{path} holds no Ed25519 key (expected PEM, as in audit.pub)")
    return keys


def publish_public_key(log_dir: Path, public: Ed25519PublicKey) -> None:
    """Add ``public`` to ``<log_dir>/audit.pub`` unless it is already there."""
    path = log_dir / PUBLIC_KEY_FILE
    pem = public_pem(public)
    existing = path.read_bytes() if path.exists() else b""
    if pem in existing:
        return
    with path.open("ab") as f:
        f.write(pem)


def verify_signature(keys: dict[str, Ed25519PublicKey], kid: str, sig: bytes, msg: bytes) -> str:
    """ "" when ``sig`` is ``kid``'s valid signature of ``msg``, else what is wrong."""
    public = keys.get(kid)
    if public is None:
        return f"signed by key {kid}, which is not a trusted key"
    try:
        public.verify(sig, msg)
    except InvalidSignature:
        return f"signature does not verify with key {kid}"
    return ""


def witness_path(key_file: Path, log_id: str) -> Path:
    return key_file.parent / f"{key_file.name}.heads" / f"{log_id}.json"


def write_witness(key_file: Path, witness: HeadWitness) -> None:
    """Replace the witness atomically (write, fsync, rename)."""
    path = witness_path(key_file, witness.log_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".head-")
    try:
        os.write(fd, msgspec.json.encode(witness))
        os.fsync(fd)
        os.close(fd)
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def read_witness(path: Path) -> HeadWitness | None:
    """The witness at ``path``; None when there is none (a broken one raises `AuditKeyError`)."""
    try:
        return msgspec.json.decode(path.read_bytes(), type=HeadWitness)
    except FileNotFoundError:
        return None
    except msgspec.DecodeError as exc:
        raise AuditKeyError(f"head witness {path} is unreadable ({exc})") from None
