"""What an agent answers about one request: an action, header operations and an audit note.

These are plain values, independent of framing and correlation ids: an agent handler returns
a `Decision`, the wire message `AgentDecision` carries it, and `merge_decisions` combines the
decisions of several agents. Header names are compared case-insensitively and are sent in
lower case by the proxy.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

__all__ = [
    "Action",
    "Allow",
    "Audit",
    "Block",
    "Challenge",
    "Decision",
    "HeaderOps",
    "NeedsMore",
    "Redirect",
    "allow",
    "block",
    "challenge",
    "needs_more",
    "redirect",
]

HttpStatus = Annotated[int, msgspec.Meta(ge=100, le=599)]
HeaderField = tuple[str, str]


class Allow(msgspec.Struct, frozen=True, tag="allow"):
    """Let the request (or response) through, with this decision's header operations."""


class Block(msgspec.Struct, frozen=True, tag="block", omit_defaults=True):
    """Answer the client directly with this response; the upstream never sees the request."""

    status: HttpStatus = 403
    body: str = ""
    headers: tuple[HeaderField, ...] = ()


class Redirect(msgspec.Struct, frozen=True, tag="redirect", omit_defaults=True):
    """Send the client elsewhere (a login page, a canonical host)."""

    url: str
    status: Annotated[int, msgspec.Meta(ge=300, le=399)] = 302


class Challenge(msgspec.Struct, frozen=True, tag="challenge", omit_defaults=True):
    """Make the client prove something before it may pass (JavaScript, captcha, auth).

    ``kind`` is a label the proxy uses to pick a challenge page; a non-empty ``body`` is served
    as the challenge page instead.
    """

    kind: str = "js"
    status: HttpStatus = 403
    body: str = ""
    headers: tuple[HeaderField, ...] = ()


class NeedsMore(msgspec.Struct, frozen=True, tag="needs_more"):
    """Not decided yet: send me the next body chunk of this request (or response)."""


Action = Allow | Block | Redirect | Challenge | NeedsMore


class HeaderOps(msgspec.Struct, frozen=True, omit_defaults=True):
    """Edits to a header list, applied remove → set → add.

    ``set`` replaces every value of a name with one value; ``add`` appends a value and keeps
    the existing ones. The fixed order makes a decision's effect independent of how the
    operations were listed.
    """

    remove: tuple[str, ...] = ()
    set: tuple[HeaderField, ...] = ()
    add: tuple[HeaderField, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.remove or self.set or self.add)


class Audit(msgspec.Struct, frozen=True, omit_defaults=True):
    """Why the agent decided as it did, for access records, alerts and the audit log."""

    tags: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    reason: str = ""
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 1.0


_NO_HEADERS = HeaderOps()


class Decision(msgspec.Struct, frozen=True, omit_defaults=True):
    """One agent's answer to one event. The default value means "allow, change nothing"."""

    action: Action = Allow()
    request_headers: HeaderOps = _NO_HEADERS
    response_headers: HeaderOps = _NO_HEADERS
    audit: Audit | None = None

    @property
    def is_final(self) -> bool:
        """True unless the agent still waits for body chunks."""
        return not isinstance(self.action, NeedsMore)


def allow(
    *,
    request_headers: HeaderOps = _NO_HEADERS,
    response_headers: HeaderOps = _NO_HEADERS,
    audit: Audit | None = None,
) -> Decision:
    """Let the request through, optionally editing headers and leaving an audit note."""
    return Decision(Allow(), request_headers, response_headers, audit)


def block(
    status: int = 403,
    body: str = "",
    *,
    headers: tuple[HeaderField, ...] = (),
    response_headers: HeaderOps = _NO_HEADERS,
    audit: Audit | None = None,
) -> Decision:
    """Refuse the request with ``status`` and ``body``."""
    return Decision(Block(status, body, headers), _NO_HEADERS, response_headers, audit)


def redirect(url: str, status: int = 302, *, audit: Audit | None = None) -> Decision:
    """Send the client to ``url``."""
    return Decision(Redirect(url, status), audit=audit)


def challenge(
    kind: str = "js",
    *,
    status: int = 403,
    body: str = "",
    headers: tuple[HeaderField, ...] = (),
    audit: Audit | None = None,
) -> Decision:
    """Ask the client to pass a challenge of ``kind`` first."""
    return Decision(Challenge(kind, status, body, headers), audit=audit)


_NEEDS_MORE = Decision(NeedsMore())


def needs_more(*, audit: Audit | None = None) -> Decision:
    """Ask for the next body chunk before deciding."""
    return _NEEDS_MORE if audit is None else Decision(NeedsMore(), audit=audit)
