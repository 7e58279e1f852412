"""The vulnerable demo routes: absent unless enabled, loopback only, and vulnerable when on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sentinel_stack.config.profiles import PROFILES, render_profile
from sentinel_stack.demo import upstream
from sentinel_stack.demo.vulnerable import ENABLE_FLAG, VulnerableRoutes, refusal

LOOPBACK = ("127.0.0.1", 50000)


async def call(
    app: Any,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    body: bytes = b"",
    client: tuple[str, int] | None = LOOPBACK,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list(headers),
        "client": client,
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def scope(client: tuple[str, int] | None, *xff: str) -> dict[str, Any]:
    return {"client": client, "headers": [(b"x-forwarded-for", x.encode()) for x in xff]}


def test_refusal_rules() -> None:
    assert refusal(False, scope(LOOPBACK)) == (404, "not found")
    assert refusal(True, scope(LOOPBACK)) is None
    assert refusal(True, scope(("::1", 1))) is None
    assert refusal(True, scope(LOOPBACK, "127.0.0.1, 127.0.0.5")) is None
    assert refusal(True, scope(("192.0.2.10", 1)))[0] == 403  # type: ignore[index]
    assert refusal(True, scope(None))[0] == 403  # type: ignore[index]
    assert refusal(True, scope(LOOPBACK, "203.0.113.9, 127.0.0.1"))[0] == 403  # type: ignore[index]


async def test_off_by_default_every_route_is_a_plain_404() -> None:
    app = upstream.make_app()  # what the upstream serves without the flag
    body = json.dumps({"argv": ["/bin/sh", "-c", "touch /tmp/should-not-exist"]}).encode()
    for method, path, query in [
        ("POST", "/_vuln/exec", b""),
        ("GET", "/_vuln/file", b"path=../../../../etc/passwd"),
        ("GET", "/_vuln/fetch", b"url=http://127.0.0.1:1/"),
        ("GET", "/_vuln/status", b""),
    ]:
        status, answer = await call(app, method, path, query=query, body=body)
        assert status == 404, path
        assert json.loads(answer)["error"] == "not found"
    assert (await call(app, "GET", "/api/items"))[0] == 200  # the shop itself is untouched


async def test_enabled_refuses_non_loopback_clients(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    app = upstream.make_app(VulnerableRoutes(enabled=True))
    body = json.dumps({"argv": ["/usr/bin/touch", str(marker)]}).encode()
    status, _ = await call(app, "POST", "/_vuln/exec", body=body, client=("198.51.100.7", 4000))
    assert status == 403
    forwarded = ((b"x-forwarded-for", b"198.51.100.7"),)
    status, _ = await call(app, "POST", "/_vuln/exec", body=body, headers=forwarded)
    assert status == 403
    assert not marker.exists()


async def test_enabled_web_shell_runs_argv_without_the_stack_wiring(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/some/notify.sock")
    monkeypatch.setenv("SENTINEL_DEMO_TEST", "inherited")
    app = upstream.make_app(VulnerableRoutes(enabled=True))
    body = json.dumps({"argv": ["/usr/bin/env"]}).encode()
    status, answer = await call(app, "POST", "/_vuln/exec", body=body)
    result = json.loads(answer)
    assert status == 200 and result["returncode"] == 0 and result["pid"] > 0
    assert "SENTINEL_DEMO_TEST=inherited" in result["stdout"]
    assert "NOTIFY_SOCKET" not in result["stdout"]


async def test_web_shell_rejects_malformed_requests_and_times_out() -> None:
    app = upstream.make_app(VulnerableRoutes(enabled=True, exec_timeout=0.3))
    assert (await call(app, "POST", "/_vuln/exec", body=b"not json"))[0] == 400
    assert (await call(app, "POST", "/_vuln/exec", body=b'{"argv": "sh"}'))[0] == 400
    body = json.dumps({"argv": ["/bin/sleep", "5"]}).encode()
    status, answer = await call(app, "POST", "/_vuln/exec", body=body)
    assert status == 200 and json.loads(answer)["timed_out"] is True


async def test_file_route_follows_a_traversal(tmp_path: Path) -> None:
    root = tmp_path / "static" / "docs"
    root.mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("top secret")
    app = upstream.make_app(VulnerableRoutes(enabled=True, file_root=root))
    status, body = await call(app, "GET", "/_vuln/file", query=b"path=../../secret.txt")
    assert (status, body) == (200, b"top secret")
    assert (await call(app, "GET", "/_vuln/file", query=b"path=nope"))[0] == 404


async def test_fetch_only_reaches_loopback() -> None:
    app = upstream.make_app(VulnerableRoutes(enabled=True))
    for url in (b"http://192.0.2.1/", b"http://example.com/", b"file:///etc/passwd"):
        status, body = await call(app, "GET", "/_vuln/fetch", query=b"url=" + url)
        assert status == 400, url
        assert b"loopback" in body or b"only http" in body


def test_the_upstream_refuses_the_flag_on_a_public_bind(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        upstream.cli(["--bind", "0.0.0.0:18999", ENABLE_FLAG])
    assert exit_info.value.code == 2
    assert "needs a loopback --bind" in capsys.readouterr().err


def test_no_starter_profile_enables_the_vulnerable_routes() -> None:
    for profile in PROFILES:
        assert ENABLE_FLAG not in render_profile(profile), profile
