"""``sentinel-stack audit verify|export``: check the audit log, or hand it to a SIEM.

Both read files only — no running stack needed. Without a FILE|DIR they use the config's
``[audit] dir``; the config's ``[audit] key_file`` (when it exists) is the default trusted
key and locates the head witness. Format and guarantees: docs/audit.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["AUDIT_COMMANDS", "add_audit_verbs"]

EXIT_OK = 0
EXIT_TAMPERED = 1
EXIT_UNUSABLE = 2
SHOW_PROBLEMS = 10


def add_audit_verbs(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``audit verify`` and ``audit export`` to the ``sentinel-stack`` subcommands."""
    from sentinel_stack.audit.export import DEFAULT_SD_ID

    audit = verbs.add_parser("audit", help="verify or export the tamper-evident audit log")
    actions = audit.add_subparsers(dest="audit_action", required=True, metavar="ACTION")

    def target(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "target",
            nargs="*",
            type=Path,
            metavar="FILE|DIR",
            help="a log directory (whole-log checks) or some of its files "
            "(default: the config's [audit] dir)",
        )

    verify = actions.add_parser(
        "verify",
        parents=[common],
        help="check every record, link and signature; exit 1 and name the first bad record",
    )
    target(verify)
    verify.add_argument(
        "--public-key",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="trust this public key (PEM; a copy kept away from the log). Repeatable",
    )
    verify.add_argument(
        "--head-file",
        type=Path,
        metavar="FILE",
        help="head witness to compare with (default: beside the config's key_file)",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    export = actions.add_parser(
        "export", parents=[common], help="print records as JSON lines, CEF or RFC 5424 syslog"
    )
    target(export)
    export.add_argument("--format", choices=("jsonl", "cef", "syslog"), default="jsonl")
    export.add_argument(
        "--since", metavar="WHEN", help="epoch seconds, ISO 8601 time, or a duration back (1h)"
    )
    export.add_argument(
        "--sd-id",
        default=DEFAULT_SD_ID,
        help="syslog SD-ID (default %(default)s; use your own enterprise number)",
    )


def cmd_audit(args: argparse.Namespace) -> int:
    from sentinel_stack.audit.keys import AuditKeyError
    from sentinel_stack.audit.sources import NothingToVerify
    from sentinel_stack.cli.main import CliError

    try:
        if args.audit_action == "verify":
            return _verify(args)
        return _export(args)
    except (NothingToVerify, AuditKeyError, ValueError) as exc:
        raise CliError(str(exc), EXIT_UNUSABLE) from None
    except PermissionError as exc:
        raise CliError(f"{exc.filename}: permission denied", EXIT_UNUSABLE) from None


def _config_paths(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """(audit dir, key file) from the config; (None, None) when it cannot be loaded and
    the command does not need it."""
    from sentinel_stack.audit.settings import audit_settings
    from sentinel_stack.cli.main import CliError, load
    from sentinel_stack.config.loader import ConfigError

    try:
        loaded = load(args)
    except ConfigError:
        if args.target:
            return None, None
        raise
    settings = audit_settings(loaded)
    if settings is None:
        if args.target:
            return None, None
        raise CliError("[audit] enabled = false in the config: name a FILE or DIR", EXIT_UNUSABLE)
    return settings.log.directory, settings.log.key_file


def _verify(args: argparse.Namespace) -> int:
    from sentinel_stack.audit.sources import verify_path

    directory, key_file = _config_paths(args)
    targets = list(args.target) or [directory]
    report = verify_path(
        [t for t in targets if t is not None],
        public_keys=args.public_key,
        key_file=key_file,
        head_file=args.head_file,
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return EXIT_OK if report.ok else EXIT_TAMPERED
    where = ", ".join(str(t) for t in targets)
    kind = "log" if report.mode == "log" else "segment"
    if report.ok:
        head = f"head seq {report.head_seq} ({(report.head_hash or '')[:16]}…)"
        check = report.last_checkpoint
        signed = f"last checkpoint seq {check['seq']}" if check else "no checkpoint"
        end = "sealed" if report.sealed else ("writer running" if report.live else "open")
        print(f"OK: audit {kind} {where}: {report.records} records in {len(report.files)} "
              f"file(s); {head}; {signed}; {end}")  # fmt: skip
        if report.unsigned_tail:
            print(
                f"  {report.unsigned_tail} record(s) after the last checkpoint are not signed yet"
            )
    else:
        first = report.problems[0]
        print(f"TAMPERED: audit {kind} {where}")
        print(f"  first bad record: {first}")
        for problem in report.problems[1:SHOW_PROBLEMS]:
            print(f"  also: {problem}")
        if len(report.problems) > SHOW_PROBLEMS:
            print(f"  … and {len(report.problems) - SHOW_PROBLEMS} more (--json lists all)")
    print(f"  keys: {report.keys}")
    for note in report.notes:
        print(f"  note: {note}")
    return EXIT_OK if report.ok else EXIT_TAMPERED


def _export(args: argparse.Namespace) -> int:
    from sentinel_stack.audit.export import parse_since, to_cef, to_syslog
    from sentinel_stack.audit.layout import read_lines
    from sentinel_stack.audit.sources import log_targets

    directory, _key = _config_paths(args)
    targets = [t for t in (list(args.target) or [directory]) if t is not None]
    files, _whole = log_targets(targets)
    since = parse_since(args.since, time.time()) if args.since else None
    hostname = socket.gethostname()
    unreadable = 0
    out = sys.stdout
    for path in files:
        for line in read_lines(path).lines:
            record = line.record
            if record is None:
                unreadable += 1
                continue
            if since is not None and record.time < since:
                continue
            if args.format == "jsonl":
                out.write(record.line().decode())
            elif args.format == "cef":
                out.write(to_cef(record) + "\n")
            else:
                out.write(to_syslog(record, hostname, args.sd_id) + "\n")
    out.flush()
    if unreadable:
        print(
            f"sentinel-stack: skipped {unreadable} unreadable line(s); run `audit verify`",
            file=sys.stderr,
        )
    return EXIT_OK


AUDIT_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"audit": cmd_audit}
