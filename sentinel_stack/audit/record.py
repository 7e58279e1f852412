"""One audit record: its canonical bytes, its hash, and how a line is read back.

A record is one JSON object per line::

    {"data":{…},"hash":"…","prev":"…","seq":7,"time":1700000000.25,"type":"alert"}

The encoding is canonical — keys sorted at every depth, no whitespace, UTF-8, as
`msgspec.json.encode(obj, order="sorted")` writes it — so the same record always has the
same bytes. ``hash`` is the SHA-256 (hex) of the canonical encoding of the record without
its ``hash`` key; ``prev`` is the previous record's ``hash`` (64 zeros for the first
record of a log). A reader re-encodes what it parsed and insists the bytes are identical,
so a change of even one byte — whitespace included — shows.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Literal

import msgspec

FORMAT_VERSION: Final = 1
GENESIS_PREV: Final = "0" * 64
CHECKPOINT_DOMAIN: Final = b"sentinel-stack audit checkpoint v1\x00"

RecordType = Literal[
    "genesis",
    "open",
    "checkpoint",
    "recovery",
    "gap",
    "alert",
    "block",
    "policy_decision",
    "remediation",
    "config_reload",
    "process_restart",
    "process_exit",
    "process_fatal",
    "process_stop",
]
RECORD_TYPES: Final[frozenset[str]] = frozenset(RecordType.__args__)  # type: ignore[attr-defined]
_KEYS: Final = frozenset({"data", "hash", "prev", "seq", "time", "type"})


class AuditRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A record as written; ``data`` is the event's own JSON object, kept whole."""

    seq: int
    time: float
    type: str
    data: dict[str, Any]
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        """Everything the hash covers."""
        return {
            "data": self.data,
            "prev": self.prev,
            "seq": self.seq,
            "time": self.time,
            "type": self.type,
        }

    def line(self) -> bytes:
        """The canonical line, newline included."""
        return canonical({**self.body(), "hash": self.hash}) + b"\n"


class BadRecord(ValueError):
    """A line that is not a well-formed record; the message says what is wrong with it.
    ``kind`` is "edited" when it parses but its bytes or hash betray a change."""

    def __init__(self, message: str, kind: str = "malformed") -> None:
        super().__init__(message)
        self.kind = kind


def canonical(value: object) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def record_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def seal(*, seq: int, time: float, type: str, data: dict[str, Any], prev: str) -> AuditRecord:
    """A record with its hash computed. ``data`` goes through a JSON round trip first, so
    what is hashed is exactly what a reader will parse back (tuples become lists, …)."""
    data = msgspec.json.decode(canonical(data))
    body = {"data": data, "prev": prev, "seq": seq, "time": time, "type": type}
    return AuditRecord(seq=seq, time=time, type=type, data=data, prev=prev, hash=record_hash(body))


def checkpoint_message(record: AuditRecord) -> bytes:
    """What a checkpoint's Ed25519 signature covers: the whole record except its own hash
    and the signature itself, behind a domain prefix so the key signs nothing else alike."""
    data = {k: v for k, v in record.data.items() if k != "signature"}
    return CHECKPOINT_DOMAIN + canonical({**record.body(), "data": data})


_decoder = msgspec.json.Decoder(dict[str, Any])


def parse_line(line: bytes) -> AuditRecord:
    """A record from one line (without its newline), or `BadRecord` saying why not.

    Checks shape, canonical bytes and the record's own hash; chain links (``seq``,
    ``prev``) and signatures are the verifier's business.
    """
    try:
        obj = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 raises the latter
        raise BadRecord(f"not a JSON object ({exc})") from None
    if set(obj) != _KEYS:
        missing, extra = sorted(_KEYS - set(obj)), sorted(set(obj) - _KEYS)
        raise BadRecord(f"wrong keys (missing {missing}, unexpected {extra})")
    seq, time, type_, data, prev, hash_ = (
        obj["seq"], obj["time"], obj["type"], obj["data"], obj["prev"], obj["hash"]
    )  # fmt: skip
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise BadRecord(f"seq must be a non-negative integer, not {seq!r}")
    if not isinstance(time, float | int) or isinstance(time, bool):
        raise BadRecord(f"time must be a number, not {time!r}")
    if type_ not in RECORD_TYPES:
        raise BadRecord(f"unknown record type {type_!r}")
    if not isinstance(data, dict):
        raise BadRecord("data must be an object")
    for name, value in (("prev", prev), ("hash", hash_)):
        if not (isinstance(value, str) and len(value) == 64 and _is_hex(value)):
            raise BadRecord(f"{name} must be 64 lowercase hex digits")
    record = AuditRecord(seq=seq, time=time, type=type_, data=data, prev=prev, hash=hash_)
    if record.line()[:-1] != line:
        raise BadRecord("bytes differ from the canonical encoding (the line was edited)", "edited")
    if record_hash(record.body()) != hash_:
        raise BadRecord(
            "hash does not match the record's content (the record was edited)", "edited"
        )
    return record


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
