# ruff: noqa: E501  (payloads are kept verbatim, one per line)
"""Shared pieces of the WAF corpus builders: realistic clients, headers and request records.

The corpora are written by hand (payload lists, traffic templates) and expanded
deterministically, so ``python tests/data/waf/build_corpus.py`` always rebuilds the same files.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, urlencode

UA = {
    "chrome_win": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    ),
    "chrome_mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/121.0.0.0 Safari/537.36"
    ),
    "firefox_linux": "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0",
    "firefox_win": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "safari_mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.2 Safari/605.1.15"
    ),
    "safari_ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
    ),
    "chrome_android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36"
    ),
    "edge": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
    ),
    "curl": "curl/8.5.0",
    "requests": "python-requests/2.31.0",
    "httpx": "python-httpx/0.26.0",
    "go": "Go-http-client/1.1",
    "okhttp": "okhttp/4.12.0",
    "axios": "axios/1.6.5",
    "node": "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "dart": "Dart/3.2 (dart:io)",
    "ios_app": "ShopApp/5.12.1 (iPhone; iOS 17.2; Scale/3.00) CFNetwork/1490.0.4 Darwin/23.2.0",
    "java": "Java/17.0.9",
    "googlebot": ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    "bingbot": ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    "kube": "kube-probe/1.29",
    "prometheus": "Prometheus/2.48.1",
    "stripe": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    "github": "GitHub-Hookshot/a1b2c3d",
}
BROWSERS = [
    "chrome_win",
    "chrome_mac",
    "firefox_linux",
    "firefox_win",
    "safari_mac",
    "safari_ios",
    "chrome_android",
    "edge",
]
CLIENTS = ["curl", "requests", "httpx", "go", "okhttp", "axios", "node", "dart", "ios_app", "java"]

HTML_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
)
LANGS = [
    "en-US,en;q=0.9",
    "de-DE,de;q=0.9,en;q=0.8",
    "fr-FR,fr;q=0.9",
    "ja-JP,ja;q=0.9",
    "es-ES,es;q=0.9,en;q=0.7",
    "en-GB,en;q=0.8",
    "pt-BR,pt;q=0.9,en-US;q=0.7",
]
HOSTS = [
    "shop.example.com",
    "www.example.com",
    "api.example.com",
    "app.example.com",
    "blog.example.org",
    "portal.example.net",
]

Header = tuple[str, str]


def browser_headers(
    host: str,
    ua_key: str,
    index: int,
    *,
    referer: str | None = None,
    cookie: str | None = None,
    accept: str = HTML_ACCEPT,
) -> list[Header]:
    headers = [
        ("Host", host),
        ("User-Agent", UA[ua_key]),
        ("Accept", accept),
        ("Accept-Language", LANGS[index % len(LANGS)]),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Connection", "keep-alive"),
    ]
    if referer:
        headers.append(("Referer", referer))
    if cookie:
        headers.append(("Cookie", cookie))
    if ua_key.startswith("chrome") or ua_key == "edge":
        headers.append(("Sec-Fetch-Site", "same-origin" if referer else "none"))
        headers.append(("Sec-Fetch-Mode", "navigate"))
        headers.append(("Upgrade-Insecure-Requests", "1"))
    return headers


def api_headers(
    host: str, ua_key: str, *, token: str | None = None, accept: str = "application/json"
) -> list[Header]:
    headers = [("Host", host), ("User-Agent", UA[ua_key]), ("Accept", accept)]
    if token:
        headers.append(("Authorization", f"Bearer {token}"))
    return headers


def record(
    rid: str,
    label: str,
    category: str,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: list[Header],
    body: bytes | str = b"",
    content_type: str | None = None,
    note: str = "",
    client_ip: str = "198.51.100.10",
    http_version: str = "1.1",
    add_length: bool = True,
) -> dict[str, Any]:
    raw = body.encode() if isinstance(body, str) else body
    headers = list(headers)
    if content_type:
        headers.append(("Content-Type", content_type))
    if raw and add_length and not any(k.lower() == "content-length" for k, _ in headers):
        headers.append(("Content-Length", str(len(raw))))
    rec: dict[str, Any] = {
        "id": rid,
        "label": label,
        "category": category,
        "note": note,
        "method": method,
        "path": path,
        "query": query,
        "http_version": http_version,
        "headers": [list(h) for h in headers],
        "client_ip": client_ip,
    }
    if raw:
        try:
            rec["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            rec["body_base64"] = base64.b64encode(raw).decode()
    return rec


def qs(pairs: list[tuple[str, str]]) -> str:
    """A query string as a browser would encode it (space as %20, UTF-8)."""
    return urlencode(pairs, quote_via=quote, safe="")


def form(pairs: list[tuple[str, str]]) -> str:
    """An application/x-www-form-urlencoded body as a browser sends it (space as +)."""
    return urlencode(pairs)


def jdump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def multipart(fields: list[tuple[str, str | None, str, bytes]], boundary: str) -> bytes:
    """(name, filename, content type, data) parts as a browser's multipart/form-data body."""
    out = b""
    for name, filename, ctype, data in fields:
        out += f"--{boundary}\r\n".encode()
        disp = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            disp += f'; filename="{filename}"'
        out += disp.encode() + b"\r\n"
        if filename is not None:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out


def client_ip(index: int, attack: bool) -> str:
    if attack:
        return f"203.0.113.{(index * 37) % 250 + 1}"
    return f"198.51.100.{(index * 13) % 250 + 1}"
