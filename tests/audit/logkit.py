"""Build audit logs for tests, and the tamperer's tools to change them.

The tamperer can read and rewrite every file in the log directory and recompute any hash,
but does not hold the signing key (unless a test gives them one of their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from sentinel_stack.audit.chain import CheckpointPolicy
from sentinel_stack.audit.keys import key_id
from sentinel_stack.audit.layout import log_files
from sentinel_stack.audit.record import AuditRecord, checkpoint_message, seal
from sentinel_stack.audit.sources import verify_path
from sentinel_stack.audit.verify import VerifyReport
from sentinel_stack.audit.writer import AuditLog, LogSettings

T0 = 1_700_000_000.0


@dataclass
class LogKit:
    root: Path

    @property
    def dir(self) -> Path:
        return self.root / "log"

    @property
    def key_file(self) -> Path:
        return self.root / "keys" / "stack-audit.key"

    def settings(self, records: int = 5, max_bytes: int = 4096) -> LogSettings:
        return LogSettings(self.dir, self.key_file, "t", CheckpointPolicy(records, 60.0), max_bytes)

    def open(self, at: float = T0, **kw: int) -> AuditLog:
        return AuditLog.open(self.settings(**kw), at, 4242)

    def write(self, count: int = 30, at: float = T0, close: bool = True, **kw: int) -> AuditLog:
        """A log with ``count`` alert records (and its checkpoints, rotations)."""
        log = self.open(at, **kw)
        for i in range(count):
            log.append("alert", alert(i), at + i * 0.5)
        if close:
            log.close(at + count)
        else:
            log.flush()  # as the service does after every batch
        return log

    def verify(self, *targets: Path, **kw: object) -> VerifyReport:
        kw.setdefault("key_file", self.key_file)
        kw.setdefault("now", T0 + 1000)
        return verify_path(list(targets) or [self.dir], **kw)  # type: ignore[arg-type]

    def files(self) -> list[Path]:
        return log_files(self.dir)

    def lines(self, path: Path) -> list[bytes]:
        return path.read_bytes().splitlines(keepends=True)

    def set_lines(self, path: Path, lines: list[bytes]) -> None:
        path.write_bytes(b"".join(lines))

    def all_lines(self) -> list[tuple[Path, int]]:
        """(file, index) of every line in log order."""
        return [(p, i) for p in self.files() for i in range(len(self.lines(p)))]


def alert(i: int) -> dict[str, object]:
    return {
        "kind": "alert",
        "rule": "web_server_spawned_shell",
        "severity": "high",
        "summary": f"nginx spawned sh #{i}",
        "technique": "T1059.004",
        "client_ip": "127.0.0.1",
    }


def parse(line: bytes) -> AuditRecord:
    from sentinel_stack.audit.record import parse_line

    return parse_line(line.rstrip(b"\n"))


def rechain(
    records: list[AuditRecord], prev: str, signer: Ed25519PrivateKey | None = None
) -> list[AuditRecord]:
    """What a tamperer does after a change: renumber and recompute every hash and link.
    Checkpoints keep their old signature, or are re-signed with ``signer`` (their key)."""
    out = []
    seq = records[0].seq if records else 0
    for r in records:
        data = dict(r.data)
        if r.type == "checkpoint" and signer is not None:
            data["key_id"] = key_id(signer.public_key())
            unsigned = seal(seq=seq, time=r.time, type=r.type, data=data, prev=prev)
            data["signature"] = signer.sign(checkpoint_message(unsigned)).hex()
        new = seal(seq=seq, time=r.time, type=r.type, data=data, prev=prev)
        out.append(new)
        prev, seq = new.hash, seq + 1
    return out


def rewrite_all(kit: LogKit, change, signer: Ed25519PrivateKey | None = None) -> None:  # type: ignore[no-untyped-def]
    """Apply ``change`` to the list of every record (in order), then rechain and write the
    records back into the same files, the same number per file where possible."""
    files = kit.files()
    per_file = [[parse(line) for line in kit.lines(p)] for p in files]
    flat = [r for rs in per_file for r in rs]
    changed = rechain(change(flat), "0" * 64, signer)
    at = 0
    for index, (path, rs) in enumerate(zip(files, per_file, strict=True)):
        take = len(rs) if index < len(files) - 1 else len(changed) - at
        kit.set_lines(path, [r.line() for r in changed[at : at + take]])
        at += take
