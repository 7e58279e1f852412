"""The chain as a pure state machine: next record, when a checkpoint is due, signing.

No files and no clock here: the writer passes ``now`` and a ``sign`` function, and writes
the records this returns in the order it returns them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sentinel_stack.audit.record import AuditRecord, checkpoint_message, seal

CheckpointReason = Literal["open", "records", "interval", "rotate", "stop"]
Signer = Callable[[bytes], bytes]


@dataclass(frozen=True)
class CheckpointPolicy:
    """Sign the head every ``records`` records or ``interval`` seconds, whichever first.

    The interval applies even when nothing happened: a running writer keeps signing, so a
    log whose newest checkpoint is much older than ``interval`` lost its tail (or its
    writer). Both numbers are written into every checkpoint for verifiers.
    """

    records: int = 1000
    interval: float = 60.0


@dataclass
class ChainHead:
    """Where the chain stands: the next ``seq`` and the hash the next record links to."""

    log_id: str
    next_seq: int
    head_hash: str
    last_checkpoint_seq: int | None = None
    last_checkpoint_time: float | None = None
    since_checkpoint: int = 0


class AuditChain:
    def __init__(self, head: ChainHead, policy: CheckpointPolicy, key_id: str, sign: Signer):
        self.head = head
        self.policy = policy
        self.key_id = key_id
        self._sign = sign
        self._interval_from: float | None = None

    def append(self, type: str, data: dict[str, Any], now: float) -> AuditRecord:
        """The next record (not a checkpoint); the head moves on."""
        record = seal(
            seq=self.head.next_seq, time=now, type=type, data=data, prev=self.head.head_hash
        )
        self._advance(record)
        self.head.since_checkpoint += 1
        return record

    def checkpoint(
        self, now: float, reason: CheckpointReason, next_file: str | None = None
    ) -> AuditRecord:
        """A signed checkpoint over the current head; ``next_file`` on rotation, so a
        verifier knows a successor must exist."""
        data: dict[str, Any] = {
            "log_id": self.head.log_id,
            "key_id": self.key_id,
            "reason": reason,
            "records": self.head.since_checkpoint,
            "every_records": self.policy.records,
            "every_seconds": self.policy.interval,
        }
        if next_file is not None:
            data["next_file"] = next_file
        unsigned = seal(
            seq=self.head.next_seq, time=now, type="checkpoint", data=data, prev=self.head.head_hash
        )
        signature = self._sign(checkpoint_message(unsigned)).hex()
        record = seal(
            seq=unsigned.seq,
            time=now,
            type="checkpoint",
            data={**unsigned.data, "signature": signature},
            prev=unsigned.prev,
        )
        self._advance(record)
        self.head.last_checkpoint_seq = record.seq
        self.head.last_checkpoint_time = now
        self.head.since_checkpoint = 0
        self._interval_from = now
        return record

    def due(self, now: float) -> CheckpointReason | None:
        """Why a checkpoint is due at ``now``, if one is."""
        if self.head.since_checkpoint >= self.policy.records:
            return "records"
        start = self._interval_from
        if start is None:
            self._interval_from = now
            return None
        if now - start >= self.policy.interval or now < start:  # the clock stepped back
            return "interval"
        return None

    def next_due(self, now: float) -> float:
        """Seconds until the interval checkpoint, for the writer's timer."""
        start = self._interval_from if self._interval_from is not None else now
        return max(0.0, start + self.policy.interval - now)

    def _advance(self, record: AuditRecord) -> None:
        self.head.next_seq = record.seq + 1
        self.head.head_hash = record.hash
