"""Path normalisation: what is rewritten, what is refused, and that routing agrees with the
way decoding upstreams (WSGI/ASGI servers, servlet containers) will read the same raw path."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from sentinel_stack.proxy.routing import PathReason, PathRejection, normalize_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("//", "/"),
        ("/a//b///c", "/a/b/c"),
        ("/a/b/", "/a/b/"),
        ("/a/./b", "/a/b"),
        ("/a/.", "/a/"),
        ("/a/b/../c", "/a/c"),
        ("/a/..", "/"),
        ("/a/b/../../", "/"),
        ("/%61%62%63", "/abc"),
        ("/%7e%2D%5f%2E", "/~-_."),
        ("/a/%2e%2E/b", "/b"),
        ("/a/.%2e/b", "/b"),
        ("/%3f%20x", "/%3F%20x"),
        ("/%25%32%65", "/%252e"),  # one layer only: %25 stays, %32 and %65 are unreserved
        ("/.well-known/x", "/.well-known/x"),
        ("/..a/b..", "/..a/b.."),
        ("/a;v=1/b", "/a;v=1/b"),
        ("/a;x/../b", "/b"),
        ("/caf%C3%A9", "/caf%C3%A9"),
        ("/x?not-a-query", "/x?not-a-query"),
    ],
)
def test_normalised(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", PathReason.NOT_ORIGIN_FORM),
        ("*", PathReason.NOT_ORIGIN_FORM),
        ("http://h/x", PathReason.NOT_ORIGIN_FORM),
        ("/a%2", PathReason.BAD_PERCENT_ENCODING),
        ("/a%zz", PathReason.BAD_PERCENT_ENCODING),
        ("/a%%41", PathReason.BAD_PERCENT_ENCODING),
        ("/a\x00b", PathReason.NUL_BYTE),
        ("/a%00b", PathReason.NUL_BYTE),
        ("/a b", PathReason.INVALID_CHARACTER),
        ("/a\tb", PathReason.INVALID_CHARACTER),
        ("/a\x7f", PathReason.INVALID_CHARACTER),
        ("/caf\xe9", PathReason.INVALID_CHARACTER),
        ("/a%41\n", PathReason.INVALID_CHARACTER),
        ("/..", PathReason.ESCAPES_ROOT),
        ("/a/../..", PathReason.ESCAPES_ROOT),
        ("/%2e%2e/etc/passwd", PathReason.ESCAPES_ROOT),
        ("/a/../../b/c", PathReason.ESCAPES_ROOT),
        ("/a%2Fb", PathReason.ENCODED_SEPARATOR),
        ("/a%2fb", PathReason.ENCODED_SEPARATOR),
        ("/a%5cb", PathReason.ENCODED_SEPARATOR),
        ("/a\\b", PathReason.ENCODED_SEPARATOR),
        ("/api/..;/admin", PathReason.DOT_SEGMENT_PARAMS),
        ("/api/.;x/admin/..", PathReason.DOT_SEGMENT_PARAMS),
        ("/a/;x/../b", PathReason.DOT_SEGMENT_PARAMS),
        ("/a/..%3bx/b/.", PathReason.DOT_SEGMENT_PARAMS),
    ],
)
def test_refused(raw: str, reason: PathReason) -> None:
    result = normalize_path(raw)
    assert isinstance(result, PathRejection)
    assert result.reason is reason
    assert result.path == raw
    assert result.status == 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/a%2fb", "/a%2Fb"),
        ("/a%2Fb//c/d", "/a%2Fb/c/d"),
        ("/a%2Fb/./c", PathReason.AMBIGUOUS_SEGMENT),  # dot segments and %2F: refuse to guess
        ("/a\\b", "/a\\b"),
        ("/a%2F..%2Fb", PathReason.AMBIGUOUS_SEGMENT),
        ("/a%2F.%2Fb", PathReason.AMBIGUOUS_SEGMENT),
        ("/a\\..\\b", PathReason.AMBIGUOUS_SEGMENT),
        ("/a%5C..;x", PathReason.AMBIGUOUS_SEGMENT),
    ],
)
def test_encoded_separators_kept_unless_they_hide_dot_segments(
    raw: str, expected: str | PathReason
) -> None:
    result = normalize_path(raw, encoded_separators="keep")
    if isinstance(expected, PathReason):
        assert isinstance(result, PathRejection)
        assert result.reason is expected
    else:
        assert result == expected


# --- properties ------------------------------------------------------------------------------

TOKENS = [
    "a", "b", "c;p", "..a", "~", "", ".", "..", "%2e", "%2E%2e", ".%2e", ";x", "..;x", ".;",
    "%3B", "%3b..", "a%2Fb", "%2f..", "%5C", "\\", "..\\", "%41", "%7e", "%25", "%252e", "%20",
]  # fmt: skip
tricky_paths = st.lists(st.sampled_from(TOKENS), max_size=10).map(lambda t: "/" + "/".join(t))
any_paths = st.lists(
    st.sampled_from([*"/.%;\\~aA09", "%2e", "%2f", "%3b", "%00", " ", "\x00", "é"]),
    max_size=30,
).map("".join)
paths = st.one_of(tricky_paths, any_paths, any_paths.map(lambda p: "/" + p))


def _resolve(segments: list[str]) -> str:
    """RFC 3986 dot-segment removal (clamping at the root) plus empty-segment collapse."""
    kept: list[str] = []
    trailing = False
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment in ("", ".", ".."):
            if segment == ".." and kept:
                kept.pop()
            trailing = last
        else:
            kept.append(segment)
            trailing = False
    return "/" + "/".join(kept) + ("/" if trailing and kept else "")


def wsgi_view(path: str) -> str:
    """What a WSGI/ASGI app routes on: every escape decoded, then dots resolved."""
    return _resolve(unquote(path).split("/")[1:])


def servlet_view(path: str) -> str:
    """A servlet container, pessimistically: decode, backslash is a separator, `;params` cut."""
    decoded = unquote(path).replace("\\", "/")
    return _resolve([s.split(";", 1)[0] for s in decoded.split("/")[1:]])


def climbs_above_root(path: str) -> bool:
    depth = 0
    for segment in unquote(path).split("/")[1:]:
        if segment == "..":
            if depth == 0:
                return True
            depth -= 1
        elif segment not in ("", "."):
            depth += 1
    return False


@given(paths)
@example("/a/b/../../..")
def test_result_is_canonical_and_idempotent(raw: str) -> None:
    modes: tuple[Literal["reject", "keep"], ...] = ("reject", "keep")
    for mode in modes:
        result = normalize_path(raw, encoded_separators=mode)
        if isinstance(result, PathRejection):
            continue
        assert result.startswith("/")
        assert "//" not in result
        segments = result.split("/")[1:]
        assert "." not in segments
        assert ".." not in segments
        assert result.isascii()
        assert result.isprintable()
        assert normalize_path(result, encoded_separators=mode) == result


@given(paths)
def test_a_path_climbing_above_the_root_is_always_refused(raw: str) -> None:
    if raw.startswith("/") and climbs_above_root(raw):
        assert isinstance(normalize_path(raw), PathRejection)


@given(paths)
@example("/admin%2Fsecret/../public/")
@example("/a/;x/../b")
@example("/api/..;/admin")
def test_decoding_upstreams_resolve_the_raw_path_like_the_routed_one(raw: str) -> None:
    result = normalize_path(raw)
    if isinstance(result, PathRejection):
        return
    # The route was chosen for `result`; an upstream sent `raw` must land on the same path.
    assert wsgi_view(raw) == unquote(result)
    assert servlet_view(raw) == servlet_view(result)


@given(paths)
def test_kept_encoded_separators_still_agree_with_a_decoding_upstream(raw: str) -> None:
    result = normalize_path(raw, encoded_separators="keep")
    if not isinstance(result, PathRejection):
        assert wsgi_view(raw) == wsgi_view(result)
