"""Request builders and skips for the WAF tests (named uniquely: conftest is not importable)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sentinel_agents.waf import HttpRequest
from sentinel_agents.waf.modsec_ffi import ModSecurityLibrary, ModSecurityUnavailable

CORPUS_DIR = Path(__file__).resolve().parents[2] / "data" / "waf"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:122.0) Gecko/20100101 Firefox/122.0"


def get(path: str, query: str = "", **headers: str) -> HttpRequest:
    """A browser-like GET; keyword headers use underscores for dashes."""
    base = {"Host": ["shop.example.com"], "User-Agent": [BROWSER_UA], "Accept": ["text/html"]}
    for name, value in headers.items():
        base[name.replace("_", "-")] = [value]
    return HttpRequest(method="GET", path=path, query=query, headers=base)


def post(
    path: str, body: bytes, content_type: str, *, route: str | None = None, method: str = "POST"
) -> HttpRequest:
    headers = {
        "Host": ["api.example.com"],
        "User-Agent": ["okhttp/4.12.0"],
        "Accept": ["application/json"],
        "Content-Type": [content_type],
        "Content-Length": [str(len(body))],
    }
    return HttpRequest(method=method, path=path, headers=headers, body=body, route=route)


def multipart_body(boundary: str, fields: list[tuple[str, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def modsecurity_or_skip() -> None:
    """Skip, saying why, when libmodsecurity is not installed on this host."""
    try:
        ModSecurityLibrary()
    except ModSecurityUnavailable as exc:
        pytest.skip(f"libmodsecurity not available: {exc}")
