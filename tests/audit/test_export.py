"""CEF and RFC 5424 output: escaping that a strict parser reads back to the original."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from sentinel_stack.audit.export import (
    cef_header,
    cef_value,
    parse_since,
    sd_name,
    sd_value,
    summary,
    to_cef,
    to_syslog,
)
from sentinel_stack.audit.record import AuditRecord, seal

NASTY = 'pipe | back\\slash = equals "quote" ]bracket\nnew line\rcr'


def record(type: str = "alert", **data: object) -> AuditRecord:
    return seal(seq=7, time=1_700_000_000.25, type=type, data=dict(data), prev="a" * 64)


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    """A strict reader: 7 header fields split on unescaped pipes, then key=value pairs."""
    header, rest, i, field = [], "", 0, ""
    while len(header) < 7:
        c = line[i]
        if c == "\\" and line[i + 1] in "\\|":
            field, i = field + line[i + 1], i + 2
            continue
        if c == "|":
            header.append(field)
            field, i = "", i + 1
            continue
        field, i = field + c, i + 1
    rest = line[i:]
    ext: dict[str, str] = {}
    for match in re.finditer(r"(\w+)=((?:\\.|[^\\=])*?)(?=\s\w+=|$)", rest):
        value = re.sub(
            r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), match[2]
        )
        ext[match[1]] = value
    return header, ext


def test_cef_header_escapes_pipes_and_backslashes_and_flattens_newlines() -> None:
    assert cef_header("a|b\\c\nd") == "a\\|b\\\\c d"


def test_cef_extension_escapes_backslash_equals_and_newlines_not_pipes() -> None:
    assert cef_value("a=b\\c|d\ne\rf") == "a\\=b\\\\c|d\\ne\\rf"


def test_cef_line_reads_back() -> None:
    line = to_cef(record(rule="r|1", severity="critical", summary=NASTY, client_ip="10.0.0.1"))
    header, ext = parse_cef(line)
    assert header[0] == "CEF:0" and header[1:3] == ["sentinel-stack", "sentinel-stack"]
    assert header[4] == "alert:r|1"
    assert header[5] == NASTY.replace("\n", " ").replace("\r", " ")
    assert header[6] == "10"
    assert ext["msg"] == NASTY
    assert ext["src"] == "10.0.0.1"
    assert ext["cs4Label"] == "rule" and ext["cs4"] == "r|1"
    assert ext["externalId"] == "7" and ext["rt"] == "1700000000250"
    assert "\n" not in line and "\r" not in line


SYSLOG = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) sentinel-stack - (?P<msgid>\S+) "
    r"\[(?P<sd>(?:[^\]\\]|\\.)*)\] (?P<msg>.*)$"
)


def parse_sd(sd: str) -> tuple[str, dict[str, str]]:
    sd_id, _, params = sd.partition(" ")
    values = {
        m[1]: re.sub(r"\\([\"\\\]])", r"\1", m[2])
        for m in re.finditer(r'([^ =\]"]+)="((?:[^"\\]|\\.)*)"', params)
    }
    return sd_id, values


def test_syslog_line_is_rfc5424_and_reads_back() -> None:
    line = to_syslog(record(severity="critical", summary=NASTY, rule="x"), "host-1")
    match = SYSLOG.match(line)
    assert match, line
    assert match["pri"] == str(13 * 8 + 2)  # facility log audit, severity critical
    assert datetime.strptime(match["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC
    ).timestamp() == pytest.approx(1_700_000_000.25)
    assert match["host"] == "host-1" and match["msgid"] == "alert"
    sd_id, values = parse_sd(match["sd"])
    assert sd_id == "audit@32473"
    assert values["seq"] == "7" and values["prev"] == "a" * 64 and values["rule"] == "x"
    assert match["msg"] == NASTY.replace("\n", "\\n").replace("\r", "\\r")
    assert "\n" not in line


def test_sd_value_escapes_exactly_quote_backslash_and_bracket() -> None:
    assert sd_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    assert sd_name('bad name="x"]') == "bad_name__x__"


def test_values_with_specials_survive_in_structured_data() -> None:
    line = to_syslog(record("block", path='/a"]\\b', client_ip="::1", method="GET"), "h")
    match = SYSLOG.match(line)
    assert match
    assert parse_sd(match["sd"])[1]["path"] == '/a"]\\b'


def test_summaries_say_what_happened() -> None:
    assert "denied" in summary(record("policy_decision", allowed=False, request_id="r1"))
    restart = record("process_restart", child="waf", state="starting", reason="crashed")
    assert summary(restart) == "waf starting (crashed)"
    assert "refused" in summary(record("config_reload", ok=False, error="bad key"))


def test_since_takes_epochs_iso_times_and_durations() -> None:
    assert parse_since("1700000000", 0) == 1_700_000_000
    assert parse_since("2023-11-14T22:13:20", 0) == 1_700_000_000  # UTC when unspecified
    assert parse_since("2023-11-14T23:13:20+01:00", 0) == 1_700_000_000
    assert parse_since("1h", 10_000) == 6_400
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday", 0)
