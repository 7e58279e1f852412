"""merge_decisions: first terminal action in agent order wins, the rest accumulates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from protocol_strategies import decisions, names

from sentinel_stack.protocol import (
    Allow,
    Audit,
    Block,
    Challenge,
    Decision,
    HeaderOps,
    NeedsMore,
    Redirect,
    allow,
    block,
    challenge,
    merge_decisions,
    merge_header_ops,
    needs_more,
    redirect,
)

pipelines = st.lists(st.tuples(names, decisions), max_size=6)


def test_nobody_objects_means_allow_decided_by_nobody() -> None:
    merged = merge_decisions([("waf", allow()), ("ratelimit", allow())])
    assert merged.action == Allow()
    assert merged.decided_by is None
    assert not merged.is_terminal
    assert merge_decisions([]).action == Allow()


def test_first_terminal_in_agent_order_wins() -> None:
    merged = merge_decisions(
        [
            ("ratelimit", allow()),
            ("waf", block(403, "sqli")),
            ("denylist", block(451)),
            ("policy", redirect("/login")),
        ]
    )
    assert merged.action == Block(403, "sqli")
    assert merged.decided_by == "waf"
    assert merged.is_terminal
    merged = merge_decisions([("bot", challenge("captcha")), ("waf", block())])
    assert merged.action == Challenge("captcha") and merged.decided_by == "bot"


def test_needs_more_is_pending_and_does_not_decide() -> None:
    merged = merge_decisions([("waf", needs_more()), ("dlp", needs_more()), ("rl", allow())])
    assert merged.pending == ("waf", "dlp")
    assert merged.decided_by is None
    merged = merge_decisions([("waf", needs_more()), ("denylist", block())])
    assert merged.pending == ("waf",) and merged.decided_by == "denylist"


def test_header_ops_merge_with_earlier_agent_winning_a_set() -> None:
    merged = merge_header_ops(
        [
            HeaderOps(remove=("Server",), set=(("x-frame-options", "DENY"),), add=(("via", "a"),)),
            HeaderOps(
                remove=("server", "x-powered-by"),
                set=(("X-Frame-Options", "SAMEORIGIN"), ("x-agent", "b")),
                add=(("via", "b"),),
            ),
        ]
    )
    assert merged == HeaderOps(
        remove=("Server", "x-powered-by"),
        set=(("x-frame-options", "DENY"), ("x-agent", "b")),
        add=(("via", "a"), ("via", "b")),
    )


def test_audit_tags_accumulate_and_notes_are_kept_per_agent() -> None:
    waf = Audit(tags=("sqli", "owasp"), rule_ids=("942100",), reason="union select")
    rl = Audit(tags=("owasp", "burst"), rule_ids=("RL-1",), confidence=0.5)
    merged = merge_decisions([("waf", block(audit=waf)), ("rl", allow(audit=rl))])
    assert merged.tags == ("sqli", "owasp", "burst")
    assert merged.rule_ids == ("942100", "RL-1")
    assert [(a.agent, a.audit) for a in merged.audits] == [("waf", waf), ("rl", rl)]


@given(pipeline=pipelines)
def test_merge_properties(pipeline: list[tuple[str, Decision]]) -> None:
    merged = merge_decisions(pipeline)
    terminal = [
        (name, d.action)
        for name, d in pipeline
        if isinstance(d.action, Block | Redirect | Challenge)
    ]
    if terminal:
        assert (merged.decided_by, merged.action) == terminal[0]
    else:
        assert (merged.decided_by, merged.action) == (None, Allow())
    assert merged.pending == tuple(n for n, d in pipeline if isinstance(d.action, NeedsMore))
    every_tag = [t for _, d in pipeline if d.audit for t in d.audit.tags]
    assert set(merged.tags) == set(every_tag) and len(merged.tags) == len(set(every_tag))
    adds = [a for _, d in pipeline for a in d.request_headers.add]
    assert list(merged.request_headers.add) == adds
    for name, value in merged.response_headers.set:
        first = next(
            v for _, d in pipeline for n, v in d.response_headers.set if n.lower() == name.lower()
        )
        assert value == first
