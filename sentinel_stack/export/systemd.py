"""The stack as systemd units: one service per child, agents socket-activated, one target.

What maps to what (docs/deploy.md has the table): readiness ``notify`` → ``Type=notify``
(other checks → ``ExecStartPost=`` running `healthcheck --wait`); the restart policy →
``Restart=``, ``RestartSec=`` and ``StartLimit*`` (and, from systemd 254, ``RestartSteps=``
and ``RestartMaxDelaySec=`` for the exponential backoff); ``depends_on`` →
``Requires=``/``After=`` (on the agent's .socket when it is socket-activated, so a restarting
agent never takes its dependents down and their connections queue meanwhile). Every
service is hardened; only the probe keeps capabilities, the ones bpftrace needs.

The detector serves the event hub (no launcher here): ``<base>-events.socket`` binds
``<run-dir>/events.sock`` and hands it to the detector as the descriptor named ``events``;
the proxy, probe and agents require that socket, so their events queue in the kernel while
the detector (re)starts. The socket is 0660, group ``sentinel``: the probe runs as root
without CAP_DAC_OVERRIDE, so it connects through its supplementary group (measured: a 0600
socket of another user refuses it with EACCES).
"""

from __future__ import annotations

import math
import re

from sentinel_stack.export.deployment import CONFIG_FILE, Deployment, ExportedChild

__all__ = ["SERVICE_USER", "export_systemd", "slice_cgroup", "socket_unit_name", "unit_name"]

SERVICE_USER = "sentinel"
# Measured with bpftrace 0.17 (docs/deploy.md): BPF+PERFMON load and attach; SYS_ADMIN for
# BTF lookups of tracepoint `args` and the probe's private-mount `unshare`; SYS_PTRACE and
# DAC_READ_SEARCH read /proc/PID/{exe,fd} of the stack's processes (another user) for lineage
# and the procfs fallback. The perf buffers need memlock: LimitMEMLOCK, not CAP_IPC_LOCK.
PROBE_CAPABILITIES = (
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_SYS_ADMIN",
    "CAP_SYS_PTRACE",
    "CAP_DAC_READ_SEARCH",
)
_HARDENING = (
    "NoNewPrivileges=yes",
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    "PrivateTmp=yes",
)
_SANDBOX = (  # for everything but the probe, which needs the kernel's views and namespaces
    "PrivateDevices=yes",
    "ProtectKernelTunables=yes",
    "ProtectKernelModules=yes",
    "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes",
    "ProtectClock=yes",
    "ProtectHostname=yes",
    "RestrictNamespaces=yes",
    "RestrictRealtime=yes",
    "RestrictSUIDSGID=yes",
    "LockPersonality=yes",
    "SystemCallArchitectures=native",
    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    "UMask=0077",
)
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_@+=:,./-]+$")
_RELOADS_ON_HUP = ("agent", "proxy", "detector")
# The descriptor name the detector serves the hub on (detect/standalone.py EVENTS_FD_NAME;
# not imported, to keep the exporter free of the detector's dependencies).
EVENTS_FD_NAME = "events"


def unit_name(deployment: Deployment, child: ExportedChild, suffix: str = "service") -> str:
    return f"{deployment.base_name}-{child.name}.{suffix}"


def socket_unit_name(deployment: Deployment, child: ExportedChild) -> str:
    """An agent's ``<base>-<agent>.socket``; the detector's is the hub's, ``<base>-events``."""
    if child.kind == "detector":
        return f"{deployment.base_name}-events.socket"
    return unit_name(deployment, child, "socket")


def slice_cgroup(slice_name: str) -> str:
    """``a-b.slice`` lives in ``a.slice/a-b.slice`` (a dash is a level, systemd.slice(5))."""
    stem = slice_name.removesuffix(".slice")
    parts = stem.split("-")
    return "/".join("-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def export_systemd(deployment: Deployment) -> dict[str, str]:
    """``units/``, ``config/`` (→ the config directory), ``sysusers.d/``, ``tmpfiles.d/``."""
    files: dict[str, str] = {}
    base = deployment.base_name
    for child in deployment.children:
        files[f"units/{unit_name(deployment, child)}"] = _service(deployment, child)
        if child.socket_activated:
            files[f"units/{socket_unit_name(deployment, child)}"] = _socket(deployment, child)
        if child.supplied:
            files[f"config/env/{child.name}.env.example"] = deployment.env_example(
                child, f"{deployment.config_dir}/env/{child.name}.env"
            )
    files[f"units/{base}.target"] = _target(deployment)
    files[f"units/{base}.slice"] = _unit_file(
        deployment,
        "the stack's slice (its cgroup, the probe's scope)",
        [("Unit", [f"Description=sentinel-stack {deployment.stack}: slice"])],
    )
    files[f"config/{CONFIG_FILE}"] = deployment.config_file_text()
    for asset in deployment.assets:
        if not asset.path.startswith("/"):
            files[f"config/{asset.path}"] = asset.text
    files["sysusers.d/sentinel-stack.conf"] = (
        f"# The user every sentinel-stack service but the probe runs as.\n"
        f'u {SERVICE_USER} - "sentinel-stack services" - -\n'
    )
    files[f"tmpfiles.d/{base}.conf"] = (
        f"# The run directory of stack `{deployment.stack}`: agent sockets, side files.\n"
        f"d {deployment.run_dir} 0750 {SERVICE_USER} {SERVICE_USER} -\n"
        f"d {deployment.agents_dir} 0750 {SERVICE_USER} {SERVICE_USER} -\n"
    )
    files["INSTALL.md"] = _install_notes(deployment)
    return files


def _service(deployment: Deployment, child: ExportedChild) -> str:
    spec = child.spec
    policy = spec.restart
    unit = [
        f"Description=sentinel-stack {deployment.stack}: {child.name} ({child.kind})",
        f"PartOf={deployment.base_name}.target",
    ]
    needs = []
    if child.socket_activated:
        needs.append(socket_unit_name(deployment, child))
    for dependency in spec.depends_on:
        other = deployment.child(dependency)
        activated = other.socket_activated
        needs.append(
            socket_unit_name(deployment, other) if activated else unit_name(deployment, other)
        )
    if needs:
        unit += [f"Requires={' '.join(needs)}", f"After={' '.join(needs)}"]
    if policy.mode != "never":
        unit += [
            f"StartLimitIntervalSec={_duration(policy.window)}",
            f"StartLimitBurst={policy.max_restarts + 1}",
        ]

    service = [f"Type={'notify' if spec.readiness.kind == 'notify' else 'exec'}"]
    service.append("ExecStart=" + _command(spec.argv, child.supplied))
    check = deployment.health_check(child)
    if spec.readiness.kind not in ("notify", "none") and check is not None:
        argv = deployment.healthcheck_argv(check, "--wait", f"{spec.readiness.timeout:g}")
        service.append("ExecStartPost=" + _command(argv, child.supplied))
    if child.kind in _RELOADS_ON_HUP:
        service.append("ExecReload=/bin/kill -HUP $MAINPID")
    service.append(f"WorkingDirectory={_escape(spec.cwd or deployment.config_dir)}")
    service += [f"Environment={_env_value(k, v)}" for k, v in spec.env.items()]
    if child.kind == "probe" and _flag(spec.argv, "--scope") == "stack":
        # The stack's cgroup is its slice: the probe watches every unit in it.
        cgroup = "/sys/fs/cgroup/" + slice_cgroup(f"{deployment.base_name}.slice")
        service.append(f"Environment={_env_value('SENTINEL_STACK_CGROUP', cgroup)}")
    if child.supplied:
        optional = "-" if set(child.supplied) <= child.optional else ""
        service.append(f"EnvironmentFile={optional}{deployment.config_dir}/env/{child.name}.env")
    service.append(f"Slice={deployment.base_name}.slice")
    service += _restart(deployment, child)
    if spec.readiness.kind != "none":
        service.append(f"TimeoutStartSec={_duration(spec.readiness.timeout)}")
    service += [f"TimeoutStopSec={_duration(spec.stop_timeout)}", f"KillSignal={spec.stop_signal}"]
    if spec.watchdog is not None:
        service.append(f"WatchdogSec={_duration(spec.watchdog)}")
    service += _privileges(deployment, child)
    return _unit_file(deployment, f"child `{child.name}`", [("Unit", unit), ("Service", service)])


def _restart(deployment: Deployment, child: ExportedChild) -> list[str]:
    policy = child.spec.restart
    if policy.mode == "never":
        return ["Restart=no"]
    lines = [f"Restart={policy.mode}", f"RestartSec={_duration(policy.initial)}"]
    if (
        deployment.options.systemd_version >= 254
        and policy.multiplier > 1
        and policy.maximum > policy.initial > 0
    ):
        steps = math.ceil(math.log(policy.maximum / policy.initial, policy.multiplier))
        lines += [f"RestartSteps={steps}", f"RestartMaxDelaySec={_duration(policy.maximum)}"]
    return lines


def _privileges(deployment: Deployment, child: ExportedChild) -> list[str]:
    lines = list(_HARDENING)
    lines.append(f"ReadWritePaths={_escape(deployment.run_dir)}")
    if child.kind == "probe":  # root, but bounded to what bpftrace and /proc need
        lines += [
            f"CapabilityBoundingSet={' '.join(PROBE_CAPABILITIES)}",
            "LimitMEMLOCK=infinity",
        ]
        if deployment.events_socket is not None:  # the hub's socket is 0660, group sentinel
            lines.append(f"SupplementaryGroups={SERVICE_USER}")
        return lines
    lines += [f"User={SERVICE_USER}", f"Group={SERVICE_USER}", *_SANDBOX]
    if any(port < 1024 for port in child.spec.ports):
        lines += [
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        ]
    else:
        lines.append("CapabilityBoundingSet=")
    return lines


def _socket(deployment: Deployment, child: ExportedChild) -> str:
    hub = child.kind == "detector"
    path = deployment.events_socket if hub else str(child.spec.socket)
    socket = [
        f"ListenStream={_escape(str(path))}",
        f"SocketMode={'0660' if hub else '0600'}",
        f"SocketUser={SERVICE_USER}",
        f"SocketGroup={SERVICE_USER}",
        "DirectoryMode=0750",
        f"FileDescriptorName={EVENTS_FD_NAME if hub else child.name}",
        f"Service={unit_name(deployment, child)}",
        "RemoveOnStop=yes",
    ]
    what = "the event hub (served by the detector)" if hub else f"agent `{child.name}`"
    unit = [
        f"Description=sentinel-stack {deployment.stack}: "
        + ("event hub socket" if hub else f"{child.name} agent socket"),
        f"PartOf={deployment.base_name}.target",
    ]
    return _unit_file(deployment, what, [("Unit", unit), ("Socket", socket)])


def _target(deployment: Deployment) -> str:
    wanted = []
    for child in deployment.children:
        if child.socket_activated:
            wanted.append(socket_unit_name(deployment, child))
        wanted.append(unit_name(deployment, child))
    unit = [f"Description=sentinel-stack {deployment.stack}: the whole stack"]
    if wanted:
        unit.append(f"Wants={' '.join(wanted)}")
    return _unit_file(
        deployment,
        "the stack: `systemctl enable --now` this",
        [("Unit", unit), ("Install", ["WantedBy=multi-user.target"])],
    )


def _unit_file(deployment: Deployment, what: str, sections: list[tuple[str, list[str]]]) -> str:
    head = (
        f"# {deployment.base_name}: {what}.\n"
        "# Generated by `sentinel-stack export systemd`: change the config and export again.\n"
    )
    body = "\n".join(
        f"[{name}]\n" + "".join(f"{line}\n" for line in lines) for name, lines in sections
    )
    return head + "\n" + body


def _install_notes(deployment: Deployment) -> str:
    base = deployment.base_name
    env_files = [c.name for c in deployment.children if c.supplied]
    lines = [
        f"# Installing stack `{deployment.stack}` as systemd units",
        "",
        "Generated by `sentinel-stack export systemd`; export again rather than editing.",
        f"Needs systemd >= {deployment.options.systemd_version} and sentinel-stack "
        f"installed in `{deployment.options.prefix}` (a virtualenv). As root:",
        "",
        f"    install -d -m 0755 {deployment.config_dir}",
        f"    cp -r config/. {deployment.config_dir}/",
        "    cp sysusers.d/sentinel-stack.conf /etc/sysusers.d/ && systemd-sysusers",
        f"    cp tmpfiles.d/{base}.conf /etc/tmpfiles.d/ && systemd-tmpfiles --create",
        "    cp units/* /etc/systemd/system/ && systemctl daemon-reload",
        f"    systemctl enable --now {base}.target",
        "",
    ]
    if env_files:
        lines += [
            "Before starting, fill in the env files (values the export never writes):",
            "",
            *(
                f"    {deployment.config_dir}/env/{name}.env  (from {name}.env.example)"
                for name in env_files
            ),
            "",
        ]
    lines += [
        f"Logs: `journalctl -u '{base}-*'`. Stop: `systemctl stop {base}.target`.",
        "",
    ]
    if deployment.detector is not None:
        lines += [
            f"Alerts: `journalctl -u {base}-detector.service -g ALERT`, and the alert file",
            "(`[detector.alert_file]`, by default `<run-dir>/detector/alerts.jsonl`). The",
            "detector serves the event hub itself; `crash_loop` cannot fire without the",
            f"launcher: watch `systemctl --failed '{base}-*'` instead (docs/deploy.md).",
            "",
        ]
    return "\n".join(lines)


# ---- quoting (systemd.syntax(7), systemd.service(5) "Command lines") ------------------------


def _command(argv: tuple[str, ...] | list[str], supplied: tuple[str, ...]) -> str:
    return " ".join(_word(arg, supplied) for arg in argv)


def _word(arg: str, supplied: tuple[str, ...]) -> str:
    """One argument: ``%`` and ``$`` escaped, except ``${VAR}`` of a supplied variable,
    which systemd expands from the unit's environment (the env file)."""
    if arg == ";":
        return "\\;"
    escaped = _escape(arg)
    pieces = re.split(r"(\$\{[A-Za-z_][A-Za-z0-9_]*\})", escaped)
    text = "".join(
        piece if piece.startswith("${") and piece[2:-1] in supplied else piece.replace("$", "$$")
        for piece in pieces
    )
    if _SAFE_WORD.match(arg) and text == arg:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _flag(argv: tuple[str, ...], flag: str) -> str | None:
    index = argv.index(flag) if flag in argv else -1
    return argv[index + 1] if 0 <= index < len(argv) - 1 else None


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def _env_value(key: str, value: str) -> str:
    body = f"{key}={_escape(value)}"
    return '"' + body.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _duration(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"
