"""The denylist agent: refuse requests from denied IPs, paths, user agents and header values.

Entries live in a JSON-lines file (``file``, default ``denylist.json`` in the agent's
state directory under `sentinel-stack up` — it survives reboots — else in the run directory),
loaded at start and saved atomically after every change, so they survive restarts. They are
changed at run time through the control socket (`sentinel_agents.denylist.control`), which
``sentinel-stack deny add|remove|list`` talks to. An entry's TTL is judged against the wall
clock; an expired entry stops matching at once and is purged (from memory and file) by a
task that sleeps until the next expiry.
"""

from __future__ import annotations

import functools
import logging
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import trio

from sentinel_agents.denylist.control import ControlError, ControlRequest, serve_control
from sentinel_agents.denylist.denylist import Denylist, ListedEntry
from sentinel_agents.denylist.model import DenyEntry, DenylistError, DenyRequest
from sentinel_agents.denylist.store import load_denylist, save_denylist
from sentinel_agents.denylist.ttl import parse_ttl
from sentinel_agents.program import ConfigRejected, ProgramAgent, side_file
from sentinel_stack.agent import AgentHealth, Audit, Decision, RequestHeaders, block

__all__ = ["DenylistAgent", "DenylistSettings", "entry_json"]

log = logging.getLogger("sentinel_agents.denylist")

MAX_SOCKET_PATH = 107
_ALLOW = Decision()


class DenylistSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """``[agents.denylist.config]``: where entries live and how a refusal looks."""

    file: str | None = None
    """Default: ``$SENTINEL_STATE_DIR/<agent name>/<agent name>.json`` under `up`, else
    ``$SENTINEL_RUN_DIR/<agent name>.json`` (alone: beside ``--socket``)."""
    control_socket: str | None = None
    """Default: ``$SENTINEL_RUN_DIR/agents/<agent name>.ctl`` (alone: beside ``--socket``)."""
    status: int = 403
    body: str = "access denied\n"


def entry_json(entry: DenyEntry, remaining_ttl: float | None = None) -> dict[str, Any]:
    """An entry as the control socket shows it."""
    shown: dict[str, Any] = {"kind": entry.kind, "value": entry.value}
    if entry.header:
        shown["header"] = entry.header
    shown.update(
        reason=entry.reason,
        created_at=entry.created_at,
        expires_at=entry.expires_at,
        remaining_ttl=remaining_ttl,
    )
    return shown


class DenylistAgent(ProgramAgent):
    """Blocks requests that match a live denylist entry."""

    name = "denylist"
    version = "1.0.0"
    concurrent = False  # decisions only compute

    def __init__(self) -> None:
        super().__init__()
        self.settings = DenylistSettings()
        self.denylist = Denylist()
        self.file: Path | None = None
        self.control_path: Path | None = None
        self.blocked = 0
        self.problems: list[str] = []
        self.save_error = ""
        self._changed = trio.Event()
        self._save_lock = trio.Lock()
        self._control_scope: trio.CancelScope | None = None

    # ---- configuration ---------------------------------------------------------------------

    async def apply_config(self, raw: Mapping[str, Any], base_dir: Path | None) -> None:
        try:
            settings = msgspec.convert(dict(raw), DenylistSettings)
        except msgspec.ValidationError as error:
            raise ConfigRejected(str(error)) from None
        if not 400 <= settings.status <= 599:
            raise ConfigRejected(f"status must be a 4xx or 5xx code, not {settings.status}")
        file = self._resolve(settings.file, base_dir, f"{self.name}.json", lasting=True)
        if settings.file is None and file != self.file and not file.exists():
            # Entries an earlier version kept in the run dir (this boot's) move along once.
            legacy = self._resolve(None, base_dir, f"{self.name}.json")
            if legacy != file and legacy.exists():
                file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                await trio.to_thread.run_sync(shutil.copy2, legacy, file)
        control = self._resolve(settings.control_socket, base_dir, f"agents/{self.name}.ctl")
        if len(str(control)) > MAX_SOCKET_PATH:
            raise ConfigRejected(
                f"control_socket: {control} is longer than the kernel allows for a Unix "
                f"socket ({MAX_SOCKET_PATH} bytes); choose a shorter path"
            )
        self.settings = settings
        if file != self.file:
            await self._load(file)
        if control != self.control_path:
            self.control_path = control
            if self._control_scope is not None:
                self._control_scope.cancel()  # the control task binds the new path

    def _resolve(
        self, configured: str | None, base_dir: Path | None, default: str, *, lasting: bool = False
    ) -> Path:
        path = side_file(self, configured, default, lasting=lasting)
        if configured and base_dir is not None and not path.is_absolute():
            return base_dir / path
        return path

    async def prepare(self) -> None:
        if self.file is None:
            await self.apply_config({}, None)

    async def reload(self) -> None:
        before = self.file
        await super().reload()
        if self.file is not None and self.file == before:
            await self._load(self.file)  # an operator may have edited it

    async def _load(self, path: Path) -> None:
        denylist, report = await trio.to_thread.run_sync(
            functools.partial(load_denylist, path, now=time.time())
        )
        for problem in report.problems:
            log.warning("unreadable denylist line skipped", extra={"problem": problem})
        self.denylist, self.file, self.problems = denylist, path, list(report.problems)
        self._changed.set()
        log.info(
            "denylist loaded",
            extra={"file": str(path), "entries": len(denylist), "expired": report.expired},
        )

    # ---- decisions -------------------------------------------------------------------------

    async def on_request_headers(self, request: RequestHeaders) -> Decision:
        headers = request.headers
        facts = DenyRequest(
            client_ip=request.client_ip,
            path=request.path,
            user_agent=(headers.get("user-agent") or [""])[0],
            headers={name: values[0] for name, values in headers.items() if values},
        )
        match = self.denylist.match(facts, time.time())
        if match is None:
            return _ALLOW
        self.blocked += 1
        audit = Audit(
            tags=("denylist", match.entry.kind),
            rule_ids=(f"denylist:{match.entry.kind}",),
            reason=match.explanation,
        )
        return block(self.settings.status, self.settings.body, audit=audit)

    # ---- run-time changes ------------------------------------------------------------------

    async def add(
        self, kind: str, value: str, *, ttl: float | None, reason: str = "", header: str = ""
    ) -> DenyEntry:
        """Add (or replace) an entry and save the list; raises `DenylistError`."""
        entry = self.denylist.add(
            kind, value, now=time.time(), ttl=ttl, reason=reason, header=header
        )
        log.info("entry added", extra={"entry": entry.describe(), "expires_at": entry.expires_at})
        self._changed.set()
        await self.save()
        return entry

    async def remove(self, kind: str, value: str, *, header: str = "") -> DenyEntry | None:
        """Remove an entry (any spelling that normalises the same) and save the list."""
        entry = self.denylist.remove(kind, value, header=header)
        if entry is not None:
            log.info("entry removed", extra={"entry": entry.describe()})
            self._changed.set()
            await self.save()
        return entry

    def entries(self) -> list[ListedEntry]:
        return self.denylist.entries(time.time())

    async def save(self) -> bool:
        """Write the live entries to the file; False (and logged) when that failed."""
        if self.file is None:
            return False
        path = self.file
        async with self._save_lock:
            now = time.time()
            # A copy, so the worker thread never iterates what the event loop changes.
            snapshot = Denylist()
            for listed in self.denylist.entries(now):
                snapshot.put(listed.entry)
            try:
                await trio.to_thread.run_sync(functools.partial(_save, path, snapshot, now))
            except OSError as error:
                self.save_error = f"cannot save {path}: {error.strerror or error}"
                log.error("denylist not saved", extra={"error": self.save_error})  # noqa: TRY400
                return False
        self.save_error = ""
        return True

    async def handle_control(self, request: ControlRequest) -> Any:
        """Answer one control-socket command."""
        try:
            if request.op == "list":
                return {"entries": [entry_json(e.entry, e.remaining_ttl) for e in self.entries()]}
            if not request.value:
                raise ControlError("invalid", f"{request.op}: give the value to {request.op}")
            if request.op == "add":
                ttl = None if request.ttl is None else parse_ttl(request.ttl)
                entry = await self.add(
                    request.kind,
                    request.value,
                    ttl=ttl,
                    reason=request.reason,
                    header=request.header,
                )
                return {"entry": entry_json(entry, ttl), "saved": not self.save_error}
            removed = await self.remove(request.kind, request.value, header=request.header)
            return {
                "removed": removed is not None,
                "entry": None if removed is None else entry_json(removed),
                "saved": not self.save_error,
            }
        except (DenylistError, ValueError, TypeError) as error:
            raise ControlError("invalid", str(error)) from None

    # ---- background ------------------------------------------------------------------------

    async def run_background(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._serve_control)
            nursery.start_soon(self._purge_expired)
            task_status.started()

    async def _serve_control(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        while True:
            assert self.control_path is not None
            with trio.CancelScope() as scope:
                self._control_scope = scope
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve_control, self.control_path, self.handle_control)
                    if not started:
                        started = True
                        task_status.started()

    async def _purge_expired(self) -> None:
        while True:
            self._changed = trio.Event()
            expiry = self.denylist.next_expiry()
            if expiry is None:
                await self._changed.wait()
                continue
            delay = expiry - time.time()
            if delay > 0:
                with trio.move_on_after(delay):
                    await self._changed.wait()
                continue
            gone = self.denylist.purge_expired(time.time())
            if gone:
                log.info("entries expired", extra={"entries": [e.describe() for e in gone]})
                await self.save()

    # ---- health ----------------------------------------------------------------------------

    def health(self) -> AgentHealth:
        detail = (
            f"{len(self.denylist)} entries in {self.file}; control socket {self.control_path}; "
            f"blocked {self.blocked}"
        )
        status: Literal["ok", "degraded"] = "ok"
        if self.save_error:
            status, detail = "degraded", f"{detail}; {self.save_error}"
        elif self.problems:
            status, detail = "degraded", f"{detail}; {len(self.problems)} unreadable lines"
        return self.background_health(AgentHealth(status, detail))


def _save(path: Path, denylist: Denylist, now: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    save_denylist(path, denylist, now=now)
