"""Splitting a request into the named values a rule inspects (the fallback engine's parsers).

Names follow ModSecurity's variables (``ARGS:q``, ``ARGS_NAMES``, ``REQUEST_COOKIES:sid``,
``REQUEST_HEADERS:User-Agent``, ``FILES_NAMES``, ``REQUEST_FILENAME``, ``REQUEST_BODY``) so that
exclusions written for one engine read the same for the other.

Every parser here is linear in its input and bounded: JSON is walked iteratively with a depth
limit, multipart is split on its boundary with ``bytes.find``, and a body that fails to parse
is reported (as ModSecurity's ``REQBODY_ERROR`` would be) and then inspected as raw text.
"""

from __future__ import annotations

import enum
import json
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote

from sentinel_agents.waf.model import HttpRequest

MAX_JSON_DEPTH = 64
MAX_ARGS = 1000


class Kind(enum.IntEnum):
    """Which family a value belongs to; rules say which families they look at.

    An ``IntEnum`` so that the per-value lookups hash in C.
    """

    PATH = enum.auto()
    ARG = enum.auto()
    ARG_NAME = enum.auto()
    COOKIE = enum.auto()
    COOKIE_NAME = enum.auto()
    HEADER = enum.auto()
    FILENAME = enum.auto()
    BODY = enum.auto()


class Target(NamedTuple):
    """One inspectable value and where it came from."""

    name: str
    kind: Kind
    value: str


class RequestParts(NamedTuple):
    """All values of one request, plus what went wrong while parsing the body."""

    targets: list[Target]
    body_error: str


def split_request(request: HttpRequest, body: bytes) -> RequestParts:
    """Every value of ``request`` a rule may look at; ``body`` is the part to inspect."""
    targets: list[Target] = [Target("REQUEST_FILENAME", Kind.PATH, _unquote(request.path))]
    if request.query:
        _add_args(targets, parse_qsl(request.query, keep_blank_values=True, max_num_fields=None))
    for name, value in request.cookies:
        targets.append(Target("REQUEST_COOKIES_NAMES", Kind.COOKIE_NAME, name))
        targets.append(Target(f"REQUEST_COOKIES:{name}", Kind.COOKIE, value))
    for name, value in request.header_items():
        if name.lower() != "cookie":
            targets.append(Target(f"REQUEST_HEADERS:{name}", Kind.HEADER, value))
    body_error = _add_body(targets, request, body) if body else ""
    del targets[MAX_ARGS * 2 :]
    return RequestParts(targets, body_error)


def _add_args(targets: list[Target], pairs: list[tuple[str, str]], prefix: str = "") -> None:
    for name, value in pairs:
        full = prefix + name
        targets.append(Target("ARGS_NAMES", Kind.ARG_NAME, full))
        targets.append(Target(f"ARGS:{full}", Kind.ARG, value))


def _add_body(targets: list[Target], request: HttpRequest, body: bytes) -> str:
    content_type = request.content_type
    text = body.decode("utf-8", "replace")
    if content_type == "application/x-www-form-urlencoded":
        _add_args(targets, parse_qsl(text, keep_blank_values=True, max_num_fields=None))
        return ""
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError) as exc:
            targets.append(Target("REQUEST_BODY", Kind.BODY, text))
            return f"JSON parsing error: {exc}"
        error = _add_json(targets, document)
        return error
    if content_type.startswith("multipart/"):
        boundary = _boundary(request.header("content-type")[0])
        if not boundary:
            targets.append(Target("REQUEST_BODY", Kind.BODY, text))
            return "multipart body without a boundary"
        return _add_multipart(targets, body, boundary)
    targets.append(Target("REQUEST_BODY", Kind.BODY, text))
    return ""


def _add_json(targets: list[Target], document: object) -> str:
    """Flatten JSON into ``ARGS:json.a.b`` values, iteratively and depth-bounded."""
    stack: list[tuple[str, object, int]] = [("json", document, 0)]
    while stack:
        path, node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return f"JSON nesting deeper than {MAX_JSON_DEPTH}"
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}"
                targets.append(Target("ARGS_NAMES", Kind.ARG_NAME, child))
                stack.append((child, value, depth + 1))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                stack.append((f"{path}.array_{index}", value, depth + 1))
        elif isinstance(node, str):
            targets.append(Target(f"ARGS:{path}", Kind.ARG, node))
        elif node is not None and not isinstance(node, bool):
            targets.append(Target(f"ARGS:{path}", Kind.ARG, str(node)))
    return ""


def _boundary(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            return value.strip().strip('"')
    return ""


def _add_multipart(targets: list[Target], body: bytes, boundary: str) -> str:
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    start = body.find(delimiter)
    if start < 0:
        targets.append(Target("REQUEST_BODY", Kind.BODY, body.decode("utf-8", "replace")))
        return "multipart boundary not found in body"
    error = "data before the first multipart boundary" if body[:start].strip() else ""
    position = start + len(delimiter)
    closed = False
    while position < len(body):
        if body.startswith(b"--", position):
            closed = True
            break
        end = body.find(delimiter, position)
        if end < 0:
            break
        _add_part(targets, body[position:end])
        position = end + len(delimiter)
    if not closed:
        error = error or "multipart body without a closing boundary"
    return error


def _add_part(targets: list[Target], part: bytes) -> None:
    head, sep, content = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
    if not sep:
        head, _, content = part.lstrip(b"\n").partition(b"\n\n")
    name, filename = "", None
    for raw_line in head.split(b"\n"):
        line = raw_line.decode("utf-8", "replace").strip()
        header, _, value = line.partition(":")
        if header.strip().lower() == "content-disposition":
            for param in value.split(";")[1:]:
                key, _, val = param.strip().partition("=")
                if key.lower() == "name":
                    name = val.strip('"')
                elif key.lower() == "filename":
                    filename = val.strip('"')
        elif header:
            targets.append(Target(f"MULTIPART_PART_HEADERS:{name}", Kind.HEADER, value.strip()))
    if content.endswith(b"\r\n"):
        content = content[:-2]
    targets.append(Target("ARGS_NAMES", Kind.ARG_NAME, name))
    if filename is not None:
        # File contents are the upstream's business (and binary); their names are ours.
        targets.append(Target("FILES_NAMES", Kind.FILENAME, filename))
    else:
        targets.append(Target(f"ARGS:{name}", Kind.ARG, content.decode("utf-8", "replace")))


def _unquote(text: str) -> str:
    return unquote(text, errors="replace") if "%" in text else text
