"""The audit log writer: plain blocking file I/O around the pure chain.

One writer per log (an flock on ``writer.lock``). Every record is one ``write`` of one
canonical line to a file opened for appending; a checkpoint is followed by ``fsync`` and
then by the head witness update, in that order, so the witness never names a checkpoint
the disk might not hold. The Trio service calls this from a worker thread, one call at a
time; nothing here knows about Trio.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sentinel_stack.audit.chain import AuditChain, ChainHead, CheckpointPolicy, CheckpointReason
from sentinel_stack.audit.keys import (
    HeadWitness,
    key_id,
    load_or_create_private_key,
    publish_public_key,
    read_witness,
    witness_path,
    write_witness,
)
from sentinel_stack.audit.layout import acquire_lock, file_name, file_number, log_files, read_lines
from sentinel_stack.audit.record import FORMAT_VERSION, AuditRecord
from sentinel_stack.audit.resume import Resume, new_log_id, plan_resume


class AuditSetupError(RuntimeError):
    """The log cannot be opened; the message says where and what to do."""


@dataclass(frozen=True)
class LogSettings:
    directory: Path
    key_file: Path
    stack: str
    policy: CheckpointPolicy = CheckpointPolicy()
    max_file_bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True)
class LogStatus:
    """What `status --json` shows about the log."""

    dir: str
    file: str
    seq: int
    hash: str
    last_checkpoint_seq: int | None
    last_checkpoint_time: float | None
    written: int
    key_id: str
    key_file: str


class AuditLog:
    def __init__(self, settings: LogSettings, chain: AuditChain, lock_fd: int) -> None:
        self.settings = settings
        self.chain = chain
        self.notices: list[str] = []
        self.written = 0
        self._lock_fd: int | None = lock_fd
        self._file: BinaryIO | None = None
        self._path = settings.directory
        self._size = 0

    @classmethod
    def open(cls, settings: LogSettings, now: float, pid: int) -> AuditLog:
        """Take the lock, load (or create) the key, resume the chain and sign the start."""
        directory, key_file = settings.directory, settings.key_file
        if key_file.resolve().is_relative_to(directory.resolve()):
            raise AuditSetupError(
                f"[audit] key_file {key_file} is inside the audit dir {directory}: whoever can "
                "rewrite the log could then sign for it; put the key elsewhere"
            )
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise AuditSetupError(f"cannot create the audit dir {directory}: {exc}") from None
        lock_fd = acquire_lock(directory)
        try:
            key, created = load_or_create_private_key(key_file)
            public = key.public_key()
            publish_public_key(directory, public)
            resume = plan_resume(
                log_files(directory),
                read_lines,
                lambda log_id: read_witness(witness_path(key_file, log_id)),
            )
            head = ChainHead(
                resume.log_id or new_log_id(),
                resume.next_seq,
                resume.head_hash,
                resume.last_checkpoint_seq,
                resume.last_checkpoint_time,
                resume.since_checkpoint,
            )
            log = cls(
                settings, AuditChain(head, settings.policy, key_id(public), key.sign), lock_fd
            )
            log.notices.extend(resume.notices)
            if created:
                log.notices.append(f"audit: created the signing key {key_file}")
            log._start(resume, now, pid, created)
        except BaseException:
            os.close(lock_fd)
            raise
        return log

    def _start(self, resume: Resume, now: float, pid: int, key_created: bool) -> None:
        self._open_file(resume.write_file)
        head = self.chain.head
        if resume.log_id is None:
            self._write(
                self.chain.append(
                    "genesis",
                    {"format": FORMAT_VERSION, "log_id": head.log_id, "stack": self.settings.stack},
                    now,
                )
            )
        if resume.recovery is not None:
            self._write(self.chain.append("recovery", resume.recovery, now))
        opened: dict[str, Any] = {
            "log_id": head.log_id,
            "stack": self.settings.stack,
            "pid": pid,
            "key_id": self.chain.key_id,
            "key_created": key_created,
        }
        if resume.previous_key_id not in (None, self.chain.key_id):
            # Verifiers need both public keys now; only an out-of-band copy of the old one
            # can vouch for the checkpoints it signed.
            opened["previous_key_id"] = resume.previous_key_id
            self.notices.append(
                f"audit: the signing key changed (was {resume.previous_key_id}, now "
                f"{self.chain.key_id}); verify with --public-key for both keys"
            )
        if resume.log_id is not None:
            opened["previous_closed"] = resume.clean
            if not resume.clean:
                # The last run ended without its stop checkpoint (crash, kill -9, power).
                opened["unsigned_records"] = resume.since_checkpoint
        self._write(self.chain.append("open", opened, now))
        self.checkpoint(now, "open")

    # ---- writing ------------------------------------------------------------------------

    def append(self, type: str, data: dict[str, Any], now: float) -> AuditRecord:
        """Write one record; checkpoint and rotate when due."""
        record = self.chain.append(type, data, now)
        self._write(record)
        self.written += 1
        reason = self.chain.due(now)
        if reason is not None:
            self.checkpoint(now, reason)
        if self._size >= self.settings.max_file_bytes:
            self.rotate(now)
        return record

    def tick(self, now: float) -> bool:
        """Checkpoint if one is due by time; True when one was written."""
        reason = self.chain.due(now)
        if reason is None:
            return False
        self.checkpoint(now, reason)
        return True

    def checkpoint(
        self, now: float, reason: CheckpointReason, next_file: str | None = None
    ) -> AuditRecord:
        record = self.chain.checkpoint(now, reason, next_file)
        self._write(record)
        self.sync()
        write_witness(
            self.settings.key_file,
            HeadWitness(
                log_id=self.chain.head.log_id,
                seq=record.seq,
                hash=record.hash,
                time=now,
                file=self._path.name,
            ),
        )
        return record

    def rotate(self, now: float) -> None:
        """Seal this file with a checkpoint naming its successor, then open the successor."""
        number = file_number(self._path.name) or 0
        successor = file_name(number + 1)
        self.checkpoint(now, "rotate", successor)
        self._close_file()
        self._open_file(successor)

    def close(self, now: float) -> None:
        """Sign the final head (a clean end), flush to disk and release the lock."""
        try:
            if self._file is not None:
                self.checkpoint(now, "stop")
        finally:
            self._close_file()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def sync(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def status(self) -> LogStatus:
        head = self.chain.head
        return LogStatus(
            dir=str(self.settings.directory),
            file=str(self._path),
            seq=head.next_seq - 1,
            hash=head.head_hash,
            last_checkpoint_seq=head.last_checkpoint_seq,
            last_checkpoint_time=head.last_checkpoint_time,
            written=self.written,
            key_id=self.chain.key_id,
            key_file=str(self.settings.key_file),
        )

    # ---- files --------------------------------------------------------------------------

    def _write(self, record: AuditRecord) -> None:
        assert self._file is not None
        line = record.line()
        self._file.write(line)
        self._size += len(line)

    def _open_file(self, name: str) -> None:
        path = self.settings.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "ab")
        self._path = path
        self._size = os.fstat(fd).st_size
        dir_fd = os.open(self.settings.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)  # the new name survives a power cut too
        finally:
            os.close(dir_fd)

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
