"""The tamper-evident audit log: hash-chained JSON lines with signed checkpoints.

Pure core: `record` (format, hashing), `chain` (the chain state machine), `resume` (how a
writer continues a log), `verify` (the checker), `export` (CEF, syslog). Shells: `writer`
(blocking file I/O), `service` (the launcher's Trio task), `sources` (verify's inputs).
docs/audit.md describes the format and what verification can and cannot prove.
"""
