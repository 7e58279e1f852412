"""The kernel probe: eBPF (bpftrace) programs from bpf/, normalized into typed events.

Run it with ``python -m sentinel_stack.probe run|record FILE|replay FILE``; see docs/probe.md.
The pure parts (program composition, record parsing, lineage, scope, health) have no I/O;
`service.run_probe` wires them to a backend, the event hub and sd_notify.
"""
