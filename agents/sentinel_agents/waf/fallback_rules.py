# ruff: noqa: E501  (a pattern reads better on one line than cut into fragments)
"""The fallback engine's rule set: a compact, CRS-shaped list of RE2 patterns.

Behaviour as data: each rule is one :class:`PatternRule` row; adding a rule needs no code.
Patterns use RE2 syntax (no backreferences, no look-around) and are matched by RE2, whose
running time is linear in the input, so no request can make a rule backtrack.

Ids are the CRS id with a leading ``1`` (``1942xxx`` is the fallback's SQL-injection family),
and ``aliases`` names the CRS rules a pattern stands in for, so a route exclusion written
against the CRS (``remove_rule_ids = [942100]``) also silences the fallback's counterpart.

Each rule runs on one *view* of a value:

- ``lower``: URL-decoded once more (double encoding), NULs dropped, lower-cased, backslashes
  turned into slashes, SQL comments turned into spaces, whitespace collapsed;
- ``html``: ``lower`` plus HTML entities decoded (for XSS);
- ``cmd``: the decoded value, lower-cased, with the shell's quoting tricks removed
  (``c''at``, ``c\\at``, ``^``) and newlines turned into ``;``;
- ``path``: the same text as ``lower``, where backslashes are already slashes;
- ``raw``: the value as received (for encodings that decoding would erase).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from sentinel_agents.waf.model import Severity
from sentinel_agents.waf.request_parts import Kind

View = Literal["lower", "html", "cmd", "path", "raw"]

_VALUES = frozenset({Kind.ARG, Kind.ARG_NAME, Kind.COOKIE, Kind.COOKIE_NAME, Kind.BODY})
_VALUES_PATH = _VALUES | {Kind.PATH, Kind.FILENAME}
_ALL = _VALUES_PATH | {Kind.HEADER}


class PatternRule(msgspec.Struct, frozen=True, kw_only=True):
    """One RE2 pattern, the values it looks at and what a match means."""

    rule_id: int
    message: str
    tag: str
    pattern: str
    view: View = "lower"
    kinds: frozenset[Kind] = _VALUES
    severity: Severity = Severity.CRITICAL
    paranoia: int = 1
    aliases: tuple[int, ...] = ()


def _rule(
    rule_id: int,
    message: str,
    tag: str,
    pattern: str,
    *,
    view: View = "lower",
    kinds: frozenset[Kind] = _VALUES,
    severity: Severity = Severity.CRITICAL,
    paranoia: int = 1,
    aliases: tuple[int, ...] = (),
) -> PatternRule:
    return PatternRule(
        rule_id=rule_id,
        message=message,
        tag=tag,
        pattern=pattern,
        view=view,
        kinds=kinds,
        severity=severity,
        paranoia=paranoia,
        aliases=aliases,
    )


_UNIX_CMDS = (
    "whoami|uname|wget|curl|ncat|netcat|nc|bash|zsh|dash|ksh|sh|python[23]?|perl|ruby|php|lua|"
    "nslookup|ifconfig|mkfifo|telnet|busybox|chmod|chown|base64|useradd|crontab|tftp|printenv|"
    "passwd|nohup|xterm|socat|gcc|wmic|certutil|bitsadmin|powershell|pwsh|systeminfo|tasklist|"
    "net\\.exe|net\\s+(?:user|localgroup|group|share|view|use)|cmd\\.exe|cmd|getent|"
    "ps\\s+(?:aux|axu|-[a-z]+)"
)
# Shell commands that are also English words: only count when they look like commands.
_WORD_CMDS = (
    "cat|id|ls|echo|ping|rm|sleep|head|tail|find|touch|kill|type|dir|env|awk|sed|more|w|timeout"
)
_SEP = r"(?:[;|&`\n]|\$\(|\|\||&&)\s*"
_HDR = _VALUES | {Kind.HEADER}

# fmt: off
RULES: tuple[PatternRule, ...] = (
    # --- SQL injection (attack-sqli) ---------------------------------------------------------
    _rule(1942001, "SQL injection: UNION SELECT", "attack-sqli",
          r"\bunion\s+(?:all\s+|distinct\s+)?\(?\s*select\b", aliases=(942190,)),
    _rule(1942002, "SQL injection: quote followed by a boolean tautology", "attack-sqli",
          r"['\"`)]\s*(?:or|and|xor|\|\||&&)\s*\(?\s*['\"`]?[\w-]*['\"`]?\s*(?:=|<|>|!=|<>|\blike\b|\bis\b|\bin\b)",
          aliases=(942130, 942180)),
    _rule(1942003, "SQL injection: numeric tautology", "attack-sqli",
          r"(?:^|[\s(])(?:or|and|xor)\s+(\d+)\s*(?:=|<=|>=)\s*\d+\b", aliases=(942130,)),
    _rule(1942004, "SQL injection: time-based blind probe", "attack-sqli",
          r"\b(?:sleep\s*\(\s*\d|pg_sleep\s*\(|benchmark\s*\(\s*\d+\s*,|waitfor\s+delay\s+['\"]|dbms_pipe\.receive_message)",
          aliases=(942160,)),
    _rule(1942005, "SQL injection: stacked query", "attack-sqli",
          r"['\"`)\d]\s*;\s*(?:drop|insert|update|delete|create|alter|truncate|exec|execute|shutdown|declare|select)\s",
          aliases=(942350,)),
    _rule(1942006, "SQL injection: schema or system object probe", "attack-sqli",
          r"\b(?:information_schema|sysobjects|syscolumns|sys\.tables|pg_catalog|pg_shadow|sqlite_master|mysql\.user|all_tables|user_tables|xp_cmdshell|sp_executesql|load_file\s*\(|into\s+(?:out|dump)file)\b",
          aliases=(942140,)),
    _rule(1942007, "SQL injection: quote closed then comment", "attack-sqli",
          r"['\"`]\s*\)*\s*(?:--|#|/\*|;\s*--)", aliases=(942440,)),
    _rule(1942008, "SQL injection: error-based function", "attack-sqli",
          r"\b(?:extractvalue|updatexml|exp\s*\(\s*~|geometrycollection|multipoint|polygon)\s*\(|\bconvert\s*\(\s*int\s*,",
          aliases=(942151,)),
    _rule(1942009, "SQL injection: column enumeration", "attack-sqli",
          r"\border\s+by\s+\d+\s*(?:--|#|$)|\bgroup\s+by\s+[\w,\s]+having\s+\d|\bhaving\s+\d+\s*=\s*\d+",
          aliases=(942230,)),
    _rule(1942010, "SQL injection: fingerprinting function", "attack-sqli",
          r"@@(?:version|datadir|hostname)|\b(?:version|user|database|current_user|system_user|schema)\s*\(\s*\)",
          aliases=(942150,)),
    _rule(1942011, "SQL injection: string building", "attack-sqli",
          r"\b(?:char|chr|nchar|concat|concat_ws|group_concat|ascii|substring|mid|hex|unhex)\s*\(.{0,80}(?:select|0x[0-9a-f]|\d+\s*,\s*\d+)",
          aliases=(942151,)),
    _rule(1942012, "SQL injection: SELECT … FROM in a parameter", "attack-sqli",
          r"\bselect\b[\s\w,*().`'\"]{1,120}\bfrom\b", paranoia=2, aliases=(942360,)),
    _rule(1942013, "SQL injection: hex literal", "attack-sqli",
          r"\b0x[0-9a-f]{8,}\b", paranoia=2, severity=Severity.WARNING),
    _rule(1942014, "NoSQL injection: query operator in a parameter", "attack-sqli",
          r"(?:^|[.\[{\s\"'])\$(?:ne|eq|gt|gte|lt|lte|in|nin|regex|where|exists|expr|elemmatch|or|and|not|nor)\b",
          kinds=frozenset({Kind.ARG_NAME, Kind.ARG}), aliases=(942290,)),
    # --- cross-site scripting (attack-xss) ---------------------------------------------------
    _rule(1941001, "XSS: script tag", "attack-xss", r"<\s*/?\s*script\b", view="html",
          kinds=_VALUES_PATH | {Kind.HEADER}, aliases=(941110,)),
    _rule(1941002, "XSS: event handler attribute", "attack-xss",
          r"(?:<[^>]*|['\"`/\s])on(?:error|load|click|dblclick|mouse\w{2,5}|focus\w{0,3}|blur|submit|change|key\w{2,4}|input|toggle|begin|end|animation\w{3,9}|transition\w{3,6}|pointer\w{2,6}|touch\w{3,6}|drag\w{0,5}|drop|wheel|scroll|resize|pageshow|hashchange|message|show|copy|cut|paste|play|search|select|start|unload|beforeunload|readystatechange)\s*=",
          view="html", kinds=_VALUES_PATH | {Kind.HEADER}, aliases=(941120,)),
    _rule(1941003, "XSS: javascript: or vbscript: URI", "attack-xss",
          r"(?:javascript|vbscript|livescript)\s*:", view="html", aliases=(941170,)),
    _rule(1941004, "XSS: dangerous HTML element", "attack-xss",
          r"<\s*(?:iframe|frame|frameset|object|embed|applet|base|meta|svg|math|isindex|xss|marquee|link\s[^>]*rel\s*=\s*['\"]?import)\b",
          view="html", kinds=_VALUES_PATH, aliases=(941160,)),
    _rule(1941005, "XSS: script-capable attribute or data URI", "attack-xss",
          r"\b(?:srcdoc|formaction|xlink:href|background)\s*=|data:\s*text/html|data:\s*image/svg\+xml|style\s*=[^>]*(?:expression\s*\(|javascript)",
          view="html", aliases=(941180,)),
    _rule(1941006, "XSS: DOM sink or JavaScript call", "attack-xss",
          r"document\s*\.\s*(?:cookie|domain|write|location)|window\s*\.\s*(?:location|name)|\b(?:alert|prompt|confirm|eval|settimeout|setinterval|atob)\s*(?:\(|`)|fromcharcode|\.innerhtml\s*=",
          view="html", aliases=(941390,)),
    _rule(1941007, "XSS: tag with an attribute in a parameter", "attack-xss",
          r"<\s*[a-z][a-z0-9]*\s+[^>]*\b(?:src|href|action|data)\s*=", view="html",
          paranoia=2, severity=Severity.ERROR),
    # --- template, expression and JavaScript injection (attack-injection-generic) ------------
    _rule(1934001, "Template injection: expression probe", "attack-injection-generic",
          r"\{\{.{0,60}(?:\d+\s*[*+]\s*\d+|constructor|__|\bconfig\b|\bself\b|request\.|\bclass\b|\|attr).{0,60}\}\}|\$\{\s*\d+\s*[*+]\s*\d+\s*\}|<%=.{0,80}%>|#\{.{0,60}\}|\{\{=.*\}\}|<#assign\b|\?new\s*\(\s*\)|freemarker\.template",
          aliases=(934100,)),
    _rule(1934002, "Python object traversal (SSTI/deserialization)", "attack-injection-generic",
          r"__(?:class|mro|subclasses|globals|builtins|import|init|base|dict)__"),
    _rule(1934003, "Node.js injection: child_process or prototype pollution", "attack-injection-generic",
          r"require\s*\(\s*['\"`](?:child_process|fs|net|vm)['\"`]|process\s*\.\s*(?:mainmodule|binding|env\b)|__proto__|constructor\s*(?:\.\s*prototype|\[)",
          kinds=_HDR, aliases=(934100, 934130)),
    # --- local file inclusion and path traversal (attack-lfi) --------------------------------
    _rule(1930001, "Path traversal: ../ sequence", "attack-lfi",
          r"(?:^|/)\.\.+(?:/|$|;)", view="path", kinds=_VALUES_PATH | {Kind.HEADER},
          aliases=(930100, 930110)),
    _rule(1930002, "Path traversal: encoded dot-dot-slash", "attack-lfi",
          r"(?i)(?:%(?:25)*2e|%(?:25)*c0%(?:25)*ae|%(?:25)*e0%(?:25)*80%(?:25)*ae|%u002e|%uff0e|\.)(?:%(?:25)*2e|%(?:25)*c0%(?:25)*ae|%u002e|%uff0e|\.)(?:%(?:25)*2f|%(?:25)*5c|%(?:25)*c0%(?:25)*af|%(?:25)*c1%(?:25)*9c|%u2215|%u2216|%uefc8|%uf025)",
          view="raw", kinds=_ALL, aliases=(930100,)),
    _rule(1930003, "OS file access attempt", "attack-lfi",
          r"(?:etc/(?:passwd|shadow|group|hosts|issue|crontab|sudoers|hostname|fstab|mtab|profile|resolv\.conf|ssh/)|proc/(?:self|\d+)/(?:environ|cmdline|fd|maps|status)|(?:win|system)\.ini|boot\.ini|windows/(?:system32|win\.ini)|\.ssh/(?:id_[a-z0-9]+|authorized_keys|known_hosts)|\.aws/credentials|\.bash_history|/var/log/|/var/www/|\.htpasswd|(?:^|/)\.env(?:\.\w+)?$|wp-config\.php|web\.config)",
          view="path", kinds=_VALUES_PATH, aliases=(930120,)),
    _rule(1930004, "Restricted file access attempt", "attack-lfi",
          r"(?:^|/)(?:\.git/|\.git$|\.svn/|\.hg/|\.bzr/|\.ds_store|\.htaccess|\.htpasswd|\.env(?:\.\w+)?$|\.npmrc|\.dockerenv|\.aws/|\.ssh/|\.idea/|\.vscode/|web\.config|wp-config\.php|config\.php\.|\.bash_history|\.mysql_history|id_rsa)",
          view="path", kinds=frozenset({Kind.PATH}), aliases=(930130,)),
    _rule(1930005, "PHP/stream wrapper in a parameter", "attack-lfi",
          r"\b(?:php|phar|zip|expect|glob|file|compress\.zlib|input)://", view="path",
          aliases=(931130, 933200)),
    _rule(1930006, "Windows path in a parameter", "attack-lfi",
          r"\b[a-z]:/(?:windows|winnt|boot\.ini|inetpub|users/[^/]+/)", view="path"),
    # --- remote file inclusion and SSRF (attack-rfi) -----------------------------------------
    _rule(1931001, "RFI/SSRF: URL with an IP address", "attack-rfi",
          r"^(?:https?|ftp|gopher|dict|ldap|tftp)://(?:[^/@]*@)?\[?(?:\d{1,3}\.){3}\d{1,3}", aliases=(931100,)),
    _rule(1931002, "SSRF: internal or metadata endpoint", "attack-rfi",
          r"(?:^|[^\w.])(?:169\.254\.169\.254|metadata\.google\.internal|metadata\.azure\.com|100\.100\.100\.200)|://(?:[^/@]*@)?(?:localhost|127(?:\.\d{1,3}){1,3}|0\.0\.0\.0|\[::1?\]|0x7f[0-9a-f]{6}|2130706433)(?:[:/?#]|$)",
          aliases=(931100, 934110)),
    _rule(1931003, "RFI/SSRF: non-HTTP URL scheme", "attack-rfi",
          r"^\s*(?:gopher|dict|ldap|ldaps|tftp|jar|netdoc|sftp)://", aliases=(931110,)),
    _rule(1931004, "RFI: URL ending in question marks", "attack-rfi",
          r"^(?:https?|ftp)://.*\?+$", aliases=(931120,)),
    # --- remote command execution (attack-rce) -----------------------------------------------
    _rule(1932001, "Command injection: chained Unix or Windows command", "attack-rce",
          rf"{_SEP}(?:/(?:usr/)?(?:s?bin)/)?(?:{_UNIX_CMDS})\b",
          view="cmd", kinds=_HDR, aliases=(932100, 932105, 932110)),
    _rule(1932002, "Command injection: chained shell builtin", "attack-rce",
          rf"{_SEP}(?:/(?:usr/)?bin/)?(?:{_WORD_CMDS})(?:\s+[-/~$.{{\d]|\s*$|\s*[;|&`)])",
          view="cmd", aliases=(932100,)),
    _rule(1932003, "Command injection: command substitution", "attack-rce",
          r"\$\(\s*[a-z/]|`\s*[a-z/][^`]{0,100}`|\$\{ifs\}|\$ifs\b|\{[a-z]+,[^}]*/[^}]*\}",
          view="cmd", aliases=(932130,)),
    _rule(1932004, "Command injection: shell, reverse shell or interpreter", "attack-rce",
          r"/bin/(?:ba|z|da|k)?sh\b|/dev/(?:tcp|udp)/|\bbash\s+-[ic]|\bnc(?:at)?\s+(?:-[a-z]*e|-[a-z]*c)|\bsh\s+-c|\bpython[23]?\s+-c|\bperl\s+-e|\bruby\s+-e|\bphp\s+-r|\bexec\s+\d*<>",
          view="cmd", kinds=_HDR, aliases=(932160,)),
    _rule(1932005, "Command injection: Windows command shell or PowerShell", "attack-rce",
          r"\bcmd(?:\.exe)?\s*/[ck]\b|\bpowershell(?:\.exe)?\s+(?:-|/)|invoke-(?:webrequest|expression|restmethod)|\biex\s*\(|downloadstring\s*\(|new-object\s+net\.webclient",
          view="cmd", aliases=(932120,)),
    _rule(1932006, "Shellshock function definition", "attack-rce",
          r"\(\s*\)\s*\{\s*(?::\s*;|[a-zA-Z_]+\s*;)", view="raw", kinds=_ALL, aliases=(932170,)),
    _rule(1932007, "Unix shell file or command path", "attack-rce",
          r"(?:^|[\s;|&`(])/(?:usr/)?(?:s?bin)/[a-z]{2,}|\b(?:wget|curl)\s+(?:-\S+\s+)*(?:https?|ftp)://",
          view="cmd", aliases=(932160,)),
    _rule(1932008, "Server-side include directive", "attack-rce",
          r"<!--\s*#\s*(?:exec|include|echo|config|printenv)\b", aliases=(932100,)),
    # --- PHP injection and script uploads (attack-injection-php) -----------------------------
    _rule(1933001, "PHP injection: opening tag", "attack-injection-php",
          r"<\?(?:php\b|=|\s)", aliases=(933100,)),
    _rule(1933002, "PHP injection: dangerous function call", "attack-injection-php",
          r"\b(?:system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec|assert|create_function|call_user_func(?:_array)?|base64_decode|gzinflate|gzuncompress|str_rot13|phpinfo|file_get_contents|file_put_contents|fwrite|fopen|readfile|highlight_file|show_source|move_uploaded_file|preg_replace|unserialize|var_dump|print_r)\s*\(",
          aliases=(933150, 933160)),
    _rule(1933003, "PHP injection: superglobal or serialized object", "attack-injection-php",
          r"\$_(?:get|post|request|cookie|server|files|env|session)\b|\bo:\d+:\"[a-z_\\/]+\":\d+:\{|\ba:\d+:\{[si]:",
          aliases=(933130,)),
    _rule(1933110, "Script file upload", "attack-injection-php",
          r"\.(?:php\d?|phtml|phar|pht|jsp|jspx|asp|aspx|ashx|asmx|cer|cgi|pl|war)\s*$",
          kinds=frozenset({Kind.FILENAME}), aliases=(933110,)),
    # --- Java / expression-language injection (attack-injection-java) ------------------------
    _rule(1944001, "Log4Shell JNDI lookup", "attack-injection-java",
          r"(?i)\$\{[^\n]{0,120}?j[^\n]{0,40}?n[^\n]{0,40}?d[^\n]{0,40}?i[^\n]{0,40}?:|\$\{(?:jndi|env|sys|java|lower|upper|date|ctx|main|bundle|k8s|docker|spring|base64|::-)",
          view="raw", kinds=_ALL, aliases=(944150, 944151)),
    _rule(1944002, "Java code injection", "attack-injection-java",
          r"java\.lang\.(?:runtime|processbuilder|system|class|reflect)|\bgetruntime\s*\(|\.exec\s*\(|javax\.script|java\.io\.file|java\.net\.url|classloader|class\.module\.|ognl\.|#_memberaccess|@java\.lang|\bxwork\.|\bt\(java\.|new\s+java\.",
          kinds=_HDR, aliases=(944100, 944110, 944130)),
    _rule(1944003, "Expression language / OGNL payload", "attack-injection-java",
          r"(?i)%\{\s*\(?#|\$\{\s*(?:#|@|t\()|#\{\s*(?:t\(|''\.|\"\"\.)|\(#[a-z_]+\s*=", view="raw",
          kinds=_ALL, aliases=(944110,)),
    _rule(1944004, "Java serialized object", "attack-injection-java",
          r"\brO0AB|\baced0005", view="raw", kinds=_ALL, aliases=(944210,)),
    # --- XXE and LDAP (attack-xxe, attack-ldap) ----------------------------------------------
    _rule(1930101, "XML external entity declaration", "attack-xxe",
          r"<!(?:doctype[^>]*\[|entity\s)|\bsystem\s+['\"](?:file|https?|ftp|php|expect|jar|netdoc)?:?",
          kinds=frozenset({Kind.BODY, Kind.ARG})),
    _rule(1921200, "LDAP injection", "attack-ldap",
          r"\)\s*\(\s*[|&!]|\*\)\s*\(|\)\s*\(\s*[\w-]+\s*[~<>]?=", aliases=(921200,)),
    # --- protocol: header injection and response splitting (attack-protocol) ---------------
    _rule(1921001, "HTTP header injection via CR/LF", "attack-protocol",
          r"(?i)[\r\n]\s*(?:set-cookie|location|content-(?:type|length)|x-[\w-]+|refresh|host|cc|bcc)\s*:|[\r\n]http/\d",
          view="raw", kinds=_VALUES_PATH | {Kind.HEADER}, aliases=(921120, 921130, 921150)),
    _rule(1921002, "Encoded CR/LF in a parameter", "attack-protocol",
          r"(?i)%0[da]|%u000[da]", view="raw", kinds=_VALUES_PATH, paranoia=2,
          severity=Severity.WARNING),
    _rule(1943001, "Session fixation: cookie set from a parameter", "attack-fixation",
          r"\.cookie\b.{0,40}\b(?:sess|jsessionid|phpsessid|sid)\b|<meta[^>]*http-equiv\s*=\s*['\"]?set-cookie|set-cookie\s*:",
          view="html", aliases=(943100,)),
)
# fmt: on
