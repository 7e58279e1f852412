"""Protocol and client checks of the fallback engine: the CRS 911/913/920/921 ideas in code.

These look at the request's shape (method, version, framing headers, content type, file
extension, client identity) rather than at values, so plain comparisons do the work: no
pattern ever runs here. Pure: a request and the config in, findings out.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote

from sentinel_agents.waf.config import WafConfig
from sentinel_agents.waf.model import Finding, HttpRequest, Severity

ALLOWED_VERSIONS = frozenset({"1.0", "1.1", "2", "2.0", "3", "3.0"})
ALLOWED_CONTENT_TYPES = frozenset(
    {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/related",
        "text/xml",
        "application/xml",
        "application/soap+xml",
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "text/plain",
        "application/octet-stream",
        "application/graphql",
        "application/x-ndjson",
        "application/csp-report",
    }
)
# The CRS tx.restricted_extensions list.
_RESTRICTED_EXTENSIONS_TEXT = (
    ".asa .asax .ascx .axd .backup .bak .bat .cdx .cer .cfg .cmd .config .conf .cs .csproj "
    ".csr .dat .db .dbf .dll .dos .htr .htw .ida .idc .idq .inc .ini .key .licx .lnk .log "
    ".mdb .old .pass .pdb .pol .printer .pwd .rdb .resources .resx .sql .swp .sys .vb .vbs "
    ".vbproj .vsdisco .webinfo .xsd .xsx"
)
RESTRICTED_EXTENSIONS = frozenset(_RESTRICTED_EXTENSIONS_TEXT.split())
RESTRICTED_HEADERS = frozenset(
    {"proxy", "lock-token", "content-range", "if", "accept-charset", "content-encoding"}
)
# Substrings of User-Agent values sent by attack tools (lower-case).
# fmt: off
SCANNER_AGENTS = (
    "sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "acunetix", "netsparker", "nessus",
    "openvas", "w3af", "wpscan", "dirbuster", "gobuster", "dirb/", "fuzz faster u fool", "wfuzz",
    "havij", "arachni", "skipfish", "mozilla/5.0 sf/", "whatweb", "jorgee", "zmeu", "morfeus",
    "fimap", "commix", "xsstrike", "joomscan", "nasl", "paros", "webinspect", "appscan",
    "burpsuite", "grabber", "brutus", "hydra", "medusa", "bsqlbf", "mysqloit", "pangolin",
    "webshag", "vega/", "metis", "x-scan", "internet ninja", "feroxbuster", "dirsearch",
    "interactsh", "zap/", "qualys", "detectify", "censys", "l9explore", "l9tcpid", "cgichk",
    "absinthe", "blackwidow", "crimscanner", "nsauditor", "netlab360", "python-nmap", "bbot",
    "struts-pwn", "log4j-scan",
)
SCANNER_HEADERS = (
    "acunetix-product", "acunetix-scanning-agreement", "acunetix-user-agreement", "x-scanner",
    "x-wipp", "x-request-memo", "x-scan-memo", "bxss-id",
)
SCANNER_PATHS = (
    "/nessustest", "/acunetix-wvs-test", "/nice ports,/trinity", "/_vti_bin/",
    "/cgi-bin/test-cgi", "/w00tw00t", "/hnap1", "/xmlrpc.php?rsd",
    "/phpmyadmin/scripts/setup.php", "/.well-known/security.txt.bak",
)
# Parameter names that carry a session id: setting one from a link is session fixation.
SESSION_PARAMS = frozenset(
    {"jsessionid", "phpsessid", "aspsessionid", "sessionid", "session_id", "sid", "cfid", "cftoken"}
)
MAX_RANGES = 5
# fmt: on


def _finding(
    rule_id: int,
    message: str,
    tag: str,
    data: str,
    target: str,
    severity: Severity = Severity.CRITICAL,
) -> Finding:
    return Finding(
        rule_id=rule_id,
        message=message,
        severity=severity,
        tags=(tag, "sentinel-fallback"),
        matched_data=data[:200],
        target=target,
    )


def protocol_findings(request: HttpRequest, config: WafConfig, paranoia: int) -> list[Finding]:
    """Findings about the request's framing, method, version, types and client identity."""
    found: list[Finding] = []
    method = request.method.upper()
    if method not in config.allowed_methods:
        found.append(
            _finding(
                1911100,
                "Method is not allowed by policy",
                "attack-generic",
                request.method,
                "REQUEST_METHOD",
            )
        )
    if request.http_version not in ALLOWED_VERSIONS:
        found.append(
            _finding(
                1920430,
                "HTTP protocol version is not allowed by policy",
                "attack-protocol",
                request.http_version,
                "REQUEST_PROTOCOL",
            )
        )
    found += _framing(request, method)
    found += _headers(request, paranoia)
    found += _ranges(request)
    found += _path(request)
    found += _session_fixation(request)
    return found


def _ranges(request: HttpRequest) -> list[Finding]:
    """Many ranges, or a range that ends before it starts: the Apache Killer shape."""
    for value in request.header("range") + request.header("request-range"):
        _, _, spec = value.partition("=")
        parts = [p.strip() for p in spec.split(",")]
        if len(parts) > MAX_RANGES:
            return [
                _finding(
                    1920200,
                    "Range: too many fields",
                    "attack-protocol",
                    f"{len(parts)} ranges",
                    "REQUEST_HEADERS:Range",
                )
            ]
        for part in parts:
            first, _, last = part.partition("-")
            if first.isdigit() and last.isdigit() and int(last) < int(first):
                return [
                    _finding(
                        1920190,
                        "Range: invalid last byte value",
                        "attack-protocol",
                        part,
                        "REQUEST_HEADERS:Range",
                    )
                ]
    return []


def _session_fixation(request: HttpRequest) -> list[Finding]:
    """A session id handed over in the query string, by a link rather than the site itself."""
    if request.header("referer") or not request.query:
        return []
    for name, _ in parse_qsl(request.query, keep_blank_values=True):
        if name.lower() in SESSION_PARAMS:
            return [
                _finding(
                    1943120,
                    "Possible session fixation: session id parameter without a referer",
                    "attack-fixation",
                    name,
                    f"ARGS:{name}",
                )
            ]
    return []


def _framing(request: HttpRequest, method: str) -> list[Finding]:
    found: list[Finding] = []
    lengths = request.header("content-length")
    encodings = request.header("transfer-encoding")
    if lengths and encodings:
        found.append(
            _finding(
                1921110,
                "Request smuggling: both Content-Length and Transfer-Encoding",
                "attack-protocol",
                f"CL={lengths} TE={encodings}",
                "REQUEST_HEADERS",
            )
        )
    if len(set(lengths)) > 1 or any(not v.strip().isdigit() for v in lengths):
        found.append(
            _finding(
                1920160,
                "Content-Length header is not a single number",
                "attack-protocol",
                ",".join(lengths),
                "REQUEST_HEADERS:Content-Length",
            )
        )
    if encodings and [e.strip().lower() for e in encodings] != ["chunked"]:
        found.append(
            _finding(
                1920171,
                "Transfer-Encoding other than a single 'chunked'",
                "attack-protocol",
                ",".join(encodings),
                "REQUEST_HEADERS:Transfer-Encoding",
            )
        )
    if method in ("GET", "HEAD") and (
        request.body or any(v.strip() not in ("", "0") for v in lengths)
    ):
        found.append(
            _finding(
                1920170,
                "GET or HEAD request with a body",
                "attack-protocol",
                str(len(request.body)),
                "REQUEST_BODY",
            )
        )
    content_type = request.content_type
    if request.body and content_type and content_type not in ALLOWED_CONTENT_TYPES:
        found.append(
            _finding(
                1920420,
                "Request content type is not allowed by policy",
                "attack-protocol",
                content_type,
                "REQUEST_HEADERS:Content-Type",
            )
        )
    return found


def _headers(request: HttpRequest, paranoia: int) -> list[Finding]:
    found: list[Finding] = []
    if request.http_version in ("1.0", "1.1") and not request.header("host"):
        found.append(
            _finding(
                1920280,
                "Request missing a Host header",
                "attack-protocol",
                "",
                "REQUEST_HEADERS:Host",
                Severity.WARNING,
            )
        )
    agents = request.header("user-agent")
    if agents and not any(a.strip() for a in agents):
        found.append(
            _finding(
                1920330,
                "Empty User Agent header",
                "attack-protocol",
                "",
                "REQUEST_HEADERS:User-Agent",
                Severity.NOTICE,
            )
        )
    for agent in agents:
        lowered = agent.lower()
        hit = next((s for s in SCANNER_AGENTS if s in lowered), "")
        if hit:
            found.append(
                _finding(
                    1913100,
                    "Found User-Agent associated with security scanner",
                    "attack-reputation-scanner",
                    hit,
                    "REQUEST_HEADERS:User-Agent",
                )
            )
            break
    for name, value in request.header_items():
        lowered = name.lower()
        if lowered in SCANNER_HEADERS:
            found.append(
                _finding(
                    1913110,
                    "Found request header associated with security scanner",
                    "attack-reputation-scanner",
                    name,
                    f"REQUEST_HEADERS:{name}",
                )
            )
        elif lowered in RESTRICTED_HEADERS:
            found.append(
                _finding(
                    1920450,
                    "HTTP header is restricted by policy",
                    "attack-protocol",
                    name,
                    f"REQUEST_HEADERS:{name}",
                )
            )
        if "\x00" in value or (paranoia >= 2 and any(ord(c) < 32 and c != "\t" for c in value)):
            found.append(
                _finding(
                    1920274,
                    "Invalid character in request headers",
                    "attack-protocol",
                    repr(value[:60]),
                    f"REQUEST_HEADERS:{name}",
                )
            )
    return found


def _path(request: HttpRequest) -> list[Finding]:
    found: list[Finding] = []
    lowered = unquote(request.path, errors="replace").lower()
    basename = lowered.rsplit("/", 1)[-1]
    dot = basename.rfind(".")
    if dot > 0 and basename[dot:] in RESTRICTED_EXTENSIONS:
        found.append(
            _finding(
                1920440,
                "URL file extension is restricted by policy",
                "attack-protocol",
                basename[dot:],
                "REQUEST_FILENAME",
            )
        )
    if any(lowered.startswith(p) for p in SCANNER_PATHS):
        found.append(
            _finding(
                1913120,
                "Found request filename/argument associated with security scanner",
                "attack-reputation-scanner",
                request.path,
                "REQUEST_FILENAME",
            )
        )
    for where, text in (("REQUEST_URI", request.uri),):
        if "%00" in text or "\x00" in text:
            found.append(
                _finding(
                    1920270,
                    "Invalid character in request (null character)",
                    "attack-protocol",
                    "%00",
                    where,
                )
            )
        if _bad_percent(text):
            found.append(
                _finding(
                    1920220,
                    "URL encoding abuse attack attempt",
                    "attack-protocol",
                    text[:80],
                    where,
                    Severity.WARNING,
                )
            )
    return found


def _bad_percent(text: str) -> bool:
    """True when a ``%`` is not followed by two hex digits (or ``u`` and four)."""
    hexdigits = "0123456789abcdefABCDEF"
    at = text.find("%")
    while at >= 0:
        pair = text[at + 1 : at + 3]
        if not (len(pair) == 2 and pair[0] in hexdigits and pair[1] in hexdigits):
            unicode = text[at + 1 : at + 6]
            if not (
                unicode[:1] in "uU"
                and len(unicode) == 5
                and all(c in hexdigits for c in unicode[1:])
            ):
                return True
        at = text.find("%", at + 1)
    return False
