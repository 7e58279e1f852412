"""Check an audit log: every record, every link, every signature, and how it ends.

`verify_lines` is the core: it takes parsed files, trusted keys, the head witness and
whether a writer is running, and returns a `VerifyReport` whose ``problems`` are in log
order — ``problems[0]`` is the first bad record. `verify_path` does the reading.

Two modes. A directory is a *whole log*: it must start with its genesis record, end with
a ``stop`` checkpoint (or have a live writer), and agree with the head witness. Files
named one by one are a *segment*: links, signatures and file-to-file continuity are
checked, but not where the log starts or ends.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sentinel_stack.audit.keys import HeadWitness, key_id, verify_signature
from sentinel_stack.audit.layout import FileLines, Fragment, Line
from sentinel_stack.audit.record import GENESIS_PREV, AuditRecord, checkpoint_message

STALE_SLACK = 30.0  # seconds a live writer's checkpoint may be late before it counts


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    seq: int | None
    kind: str
    message: str

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"{self.file}:{self.line}{seq}: {self.kind}: {self.message}"


@dataclass
class VerifyReport:
    mode: Literal["log", "segment"]
    files: list[str] = field(default_factory=list)
    records: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    last_checkpoint: dict[str, Any] | None = None
    unsigned_tail: int = 0
    sealed: bool = False
    live: bool = False
    keys: str = ""
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    recoveries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "mode": self.mode,
            "first_bad": _problem_json(self.first_bad) if self.first_bad else None,
            "problems": [_problem_json(p) for p in self.problems],
            "files": self.files,
            "records": self.records,
            "head": {"seq": self.head_seq, "hash": self.head_hash},
            "last_checkpoint": self.last_checkpoint,
            "unsigned_tail": self.unsigned_tail,
            "sealed": self.sealed,
            "live": self.live,
            "keys": self.keys,
            "recoveries": self.recoveries,
            "notes": self.notes,
        }


def _problem_json(p: Problem) -> dict[str, Any]:
    return {"file": p.file, "line": p.line, "seq": p.seq, "kind": p.kind, "message": p.message}


class _Checker:
    """One pass over the records in order, carrying what the next record must match."""

    def __init__(
        self,
        report: VerifyReport,
        keys: list[Ed25519PublicKey],
        whole: bool,
    ) -> None:
        self.report = report
        self.keys = {key_id(k): k for k in keys}
        self.whole = whole
        self.expected_seq: int | None = 0 if whole else None
        self.expected_prev: str | None = GENESIS_PREV if whole else None
        self.log_id: str | None = None
        self.checkpoints: dict[int, str] = {}
        self.last_good: tuple[int, float, str, int] | None = None  # seq, time, file, line
        self.interval: float | None = None
        self.since = 0
        self.expect_file: tuple[str, str, int] | None = None  # (name, from file, line)
        self.fragment: tuple[str, int, Fragment] | None = None  # awaiting its recovery
        self.excused: int | None = None  # seq of the recovery record that names it
        self.last: AuditRecord | None = None
        self.last_at: tuple[str, int] = ("", 0)
        self.first_in_file = True
        self.name = ""

    def problem(self, file: str, line: int, seq: int | None, kind: str, message: str) -> None:
        self.report.problems.append(Problem(file, line, seq, kind, message))

    def file_start(self, name: str) -> None:
        self.first_in_file = True
        self.name = name

    def bad_line(self, line: Line) -> None:
        if self.first_in_file:
            self.unexplained_fragment()
        self.problem(self.name, line.number, line.seq_hint, line.error_kind, line.error)
        # Re-anchor on the next good record: the break is this line, reported once.
        self.expected_seq = self.expected_prev = None
        self.first_in_file = False

    def record(self, line: Line, r: AuditRecord) -> None:
        at = (self.name, line.number)
        if self.first_in_file:
            self._file_boundary(line, r)
        elif self.expect_file is not None:
            self.problem(
                *at, r.seq, "rotation", f"records follow the rotation checkpoint at "
                f"{self.expect_file[1]}:{self.expect_file[2]} in the same file",
            )  # fmt: skip
            self.expect_file = None
        self._link(line, r)
        self._by_type(line, r)
        self.report.records += 1
        self.expected_seq, self.expected_prev = r.seq + 1, r.hash
        self.last, self.last_at = r, at
        self.first_in_file = False

    def _file_boundary(self, line: Line, r: AuditRecord) -> None:
        if self.fragment is not None:
            name, _number, fragment = self.fragment
            if r.type == "recovery" and _names_fragment(r, name, fragment):
                self.excused, self.fragment = r.seq, None
            else:
                self.unexplained_fragment()
        if self.expect_file is not None:
            expected, file, number = self.expect_file
            if self.name != expected:
                self.problem(
                    self.name, line.number, r.seq, "missing-file",
                    f"the rotation checkpoint at {file}:{number} says the log continues in "
                    f"{expected}, but the next records are in {self.name}",
                )  # fmt: skip
            self.expect_file = None

    def unexplained_fragment(self) -> None:
        """A torn line in an earlier file that no recovery record accounts for."""
        if self.fragment is None:
            return
        name, number, fragment = self.fragment
        self.fragment = None
        self.problem(
            name, number, None, "torn",
            f"the final line ({len(fragment.raw)} bytes) is cut short and the next file "
            "does not start with a recovery record naming those bytes",
        )  # fmt: skip

    def _link(self, line: Line, r: AuditRecord) -> None:
        at = (self.name, line.number)
        if self.expected_seq is None and self.whole and self.last is None:
            self.expected_seq, self.expected_prev = 0, GENESIS_PREV
        if self.expected_seq is not None and r.seq != self.expected_seq:
            if r.seq > self.expected_seq:
                gone = r.seq - self.expected_seq
                what = (
                    f"record {self.expected_seq} is missing"
                    if gone == 1
                    else f"records {self.expected_seq}…{r.seq - 1} are missing"
                )
                if self.expected_seq == 0:
                    what = "the log does not start at its genesis record (files or records removed)"
            else:
                what = "a record was moved, duplicated or inserted here"
            self.problem(*at, r.seq, "sequence", f"seq {r.seq} where {self.expected_seq} was "
                         f"expected: {what}")  # fmt: skip
        elif self.expected_prev is not None and r.prev != self.expected_prev:
            self.problem(
                *at, r.seq, "link",
                "prev is not the hash of the record before it: a record before this one was "
                "edited, removed or inserted",
            )  # fmt: skip

    def _by_type(self, line: Line, r: AuditRecord) -> None:
        at = (self.name, line.number)
        data_log_id = r.data.get("log_id")
        if r.type == "genesis":
            if r.seq != 0 or r.prev != GENESIS_PREV:
                self.problem(*at, r.seq, "genesis", "a genesis record in the middle of the log")
            self.log_id = data_log_id if isinstance(data_log_id, str) else None
        elif isinstance(data_log_id, str):
            if self.log_id is None:  # no genesis seen: reported already when it matters
                self.log_id = data_log_id
            elif data_log_id != self.log_id:
                self.problem(*at, r.seq, "log-id", f"belongs to log {data_log_id}, not to "
                             f"{self.log_id}: records spliced in from another log")  # fmt: skip
        if r.type == "checkpoint":
            self._checkpoint(line, r)
        else:
            self.since += 1
        if r.type == "recovery":
            self._recovery(line, r)
        if r.type == "open" and r.data.get("previous_closed") is False:
            self.report.notes.append(
                f"{at[0]}:{at[1]} (seq {r.seq}): the run before this one ended without its stop "
                f"checkpoint; {r.data.get('unsigned_records', '?')} record(s) it wrote after "
                "its last checkpoint were never signed (records cut from there would not show)"
            )

    def _checkpoint(self, line: Line, r: AuditRecord) -> None:
        at = (self.name, line.number)
        kid, signature = r.data.get("key_id"), r.data.get("signature")
        try:
            sig = bytes.fromhex(signature) if isinstance(signature, str) else b""
        except ValueError:
            sig = b""
        why = (
            verify_signature(self.keys, kid, sig, checkpoint_message(r))
            if isinstance(kid, str) and sig
            else "no key_id or signature"
        )
        if why:
            since = f"seq {self.last_good[0]}" if self.last_good else "the start"
            self.problem(
                *at, r.seq, "signature",
                f"checkpoint {why}: the records since {since} are not authenticated "
                "(one of them, or this checkpoint, was forged or changed)",
            )  # fmt: skip
        else:
            self.last_good = (r.seq, r.time, self.name, line.number)
            self.since = 0
            every = r.data.get("every_seconds")
            self.interval = float(every) if isinstance(every, int | float) else None
        self.checkpoints[r.seq] = r.hash
        if r.data.get("reason") == "rotate":
            self.expect_file = (str(r.data.get("next_file")), self.name, line.number)

    def _recovery(self, line: Line, r: AuditRecord) -> None:
        at = (self.name, line.number)
        self.report.recoveries.append({"file": at[0], "line": at[1], "seq": r.seq, **r.data})
        if r.data.get("damaged"):
            self.problem(
                *at, r.seq, "damaged",
                f"the writer found the log damaged when it started: {r.data.get('reason')}",
            )  # fmt: skip
        elif self.excused != r.seq:
            self.problem(*at, r.seq, "recovery", "names a torn line that is not where it says")

    def end_file(self, files: FileLines, last_file: bool, live: bool) -> None:
        fragment = files.fragment
        if fragment is None:
            return
        if not last_file:
            self.unexplained_fragment()  # a file that was nothing but a torn line
            self.fragment = (files.path.name, files.fragment_line, fragment)
        elif live:
            self.report.notes.append(
                f"{files.path.name}:{files.fragment_line}: a line is being written right now"
            )
        else:
            self.problem(
                files.path.name, files.fragment_line, None, "torn",
                f"the final line ({len(fragment.raw)} bytes) is cut short — a crash while "
                "writing, or truncation — and no writer has recorded the loss yet (starting "
                "the stack does)",
            )  # fmt: skip


def _names_fragment(r: AuditRecord, name: str, fragment: Fragment) -> bool:
    lost = r.data.get("lost")
    if r.data.get("damaged") or not isinstance(lost, list) or len(lost) != 1:
        return False
    region = lost[0]
    return isinstance(region, dict) and (
        region.get("file") == name
        and region.get("offset") == fragment.offset
        and region.get("length") == len(fragment.raw)
        and region.get("sha256") == hashlib.sha256(fragment.raw).hexdigest()
    )


def verify_lines(
    files: list[FileLines],
    keys: list[Ed25519PublicKey],
    *,
    whole: bool,
    live: bool = False,
    now: float | None = None,
    witness: Callable[[str], HeadWitness | None] = lambda _log_id: None,
    keys_source: str = "",
) -> VerifyReport:
    report = VerifyReport("log" if whole else "segment", [str(f.path) for f in files])
    report.live, report.keys = live, keys_source
    check = _Checker(report, keys, whole)
    nonempty = [f for f in files if f.size]
    for files_ in files:
        if not files_.size:
            continue
        check.file_start(files_.path.name)
        for line in files_.lines:
            if line.record is None:
                check.bad_line(line)
                continue
            check.record(line, line.record)
        check.end_file(files_, files_ is nonempty[-1], live)
    _finish(check, report, whole, live, now, witness)
    return report


def _finish(
    check: _Checker,
    report: VerifyReport,
    whole: bool,
    live: bool,
    now: float | None,
    witness: Callable[[str], HeadWitness | None],
) -> None:
    check.unexplained_fragment()
    last = check.last
    report.unsigned_tail = check.since
    if check.last_good is not None:
        seq, time, file, line = check.last_good
        report.last_checkpoint = {"seq": seq, "time": time, "file": file, "line": line}
    if last is None:
        if whole:
            name = report.files[0].rsplit("/", 1)[-1] if report.files else "-"
            check.problem(
                name, 0, None, "empty", "no audit records: the log was deleted or emptied"
            )
        return
    report.head_seq, report.head_hash = last.seq, last.hash
    report.sealed = last.type == "checkpoint" and last.data.get("reason") == "stop"
    if not whole:
        return
    at = check.last_at
    if report.sealed:
        pass
    elif live:
        late = _staleness(check, now)
        if late:
            check.problem(*at, last.seq, "stale", late)
    else:
        check.problem(
            *at, last.seq, "unsealed",
            "the log does not end with a stop checkpoint and no writer is running: the "
            "launcher was killed (crash, kill -9) or the tail was cut off; "
            f"{check.since} record(s) after the last checkpoint are not signed",
        )  # fmt: skip
    seen = witness(check.log_id) if check.log_id else None
    if seen is None:
        report.notes.append(
            "no head witness for this log (it lives beside the signing key): cutting the log "
            "back to an earlier checkpoint would not show"
        )
        return
    if seen.seq > last.seq:
        check.problem(
            *at, last.seq, "truncated",
            f"the head witness records checkpoint seq {seen.seq} (in {seen.file}), but the log "
            f"ends at seq {last.seq}: records were cut off its end",
        )  # fmt: skip
    elif check.checkpoints.get(seen.seq) != seen.hash:
        check.problem(*at, last.seq, "witness", f"checkpoint seq {seen.seq} is not the one the "
                      "head witness records: the log was rewritten")  # fmt: skip


def _staleness(check: _Checker, now: float | None) -> str:
    if now is None or check.last_good is None or check.interval is None:
        return ""
    age = now - check.last_good[1]
    if age <= 2 * check.interval + STALE_SLACK:
        return ""
    return (
        f"the writer is running and signs every {check.interval:g} s, but the newest "
        f"checkpoint is {age:.0f} s old: records after it were cut off"
    )
