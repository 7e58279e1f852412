"""The condition language's syntax: tokens, the tree, and a recursive-descent parser.

Hand-written rather than generated (lark was the alternative): the grammar is a dozen
productions, every error needs a precise column and a hint in our words, and the parser
runs once per rule load, so neither speed nor grammar size argues for a dependency.

    expr       := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | "(" expr ")" | predicate | MACRO
    predicate  := FIELD [["not"] OP value | "exists"]        (a bare FIELD must be boolean)
    OP         := = == != < <= > >= in intersects contains icontains startswith endswith glob
    value      := STRING | NUMBER | true | false | FIELD | WORD | "(" [item ("," item)*] ")"
    item       := STRING | NUMBER | WORD                       (a WORD naming a list splices it)

A FIELD is a dotted word whose first part is a field namespace (``proc.name``); any other
WORD on the right-hand side is a bare string (``evt.kind = kernel.exec``,
``fd.name startswith /etc/cron``) unless it names a list. Strings take "double" (with
backslash escapes) or 'single' quotes (no escapes but \\' ).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as TypingLiteral

from sentinel_stack.detect.expr.errors import NOWHERE, ExprError, Origin, Pos

__all__ = [
    "COMPARE_OPS",
    "NAMESPACES",
    "And",
    "Compare",
    "Exists",
    "FieldRef",
    "ListLiteral",
    "ListRef",
    "Literal",
    "MacroRef",
    "Node",
    "Not",
    "Or",
    "Truthy",
    "Value",
    "parse",
]

NAMESPACES = frozenset(
    {
        "evt",
        "proc",
        "user",
        "group",
        "fd",
        "file",
        "net",
        "exec",
        "exit",
        "tcp",
        "priv",
        "cap",
        "ptrace",
        "memfd",
        "dup",
        "req",
        "client",
        "alert",
        "probe",
        "child",
        "match",
    }
)
WORD_OPS = frozenset(
    {"in", "intersects", "contains", "icontains", "startswith", "endswith", "glob"}
)
SYMBOL_OPS = frozenset({"=", "==", "!=", "<", "<=", ">", ">="})
COMPARE_OPS = WORD_OPS | SYMBOL_OPS
KEYWORDS = frozenset({"and", "or", "not", "exists", "true", "false"}) | WORD_OPS

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class FieldRef:
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Literal:
    value: Scalar
    pos: Pos
    bare: bool = False  # an unquoted word: may turn out to name a list


@dataclass(frozen=True, slots=True)
class ListRef:
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class ListLiteral:
    items: tuple[Literal | ListRef, ...]
    pos: Pos


Value = FieldRef | Literal | ListRef | ListLiteral


@dataclass(frozen=True, slots=True)
class Compare:
    field: FieldRef
    op: str
    value: Value
    pos: Pos  # of the operator


@dataclass(frozen=True, slots=True)
class Exists:
    field: FieldRef
    pos: Pos


@dataclass(frozen=True, slots=True)
class Truthy:
    field: FieldRef
    pos: Pos


@dataclass(frozen=True, slots=True)
class MacroRef:
    name: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class Not:
    item: Node
    pos: Pos


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]
    pos: Pos


Node = Or | And | Not | Compare | Exists | Truthy | MacroRef

TokenKind = TypingLiteral["word", "string", "number", "symbol", "(", ")", ",", "end"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    value: Scalar
    pos: Pos


_STOP = frozenset(" \t\r\n(),=!<>\"'")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def is_field_word(word: str) -> bool:
    head, dot, _ = word.partition(".")
    return bool(dot) and head in NAMESPACES


def _number(word: str) -> int | float | None:
    try:
        return int(word, 0)
    except ValueError:
        pass
    if any(c.isdigit() for c in word) and word.lstrip("+-")[:1].isdigit():
        try:
            return float(word)
        except ValueError:
            return None
    return None


def tokenize(text: str, origin: Origin = NOWHERE) -> list[Token]:
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            i, line, line_start = i + 1, line + 1, i + 1
            continue
        if c in " \t\r":
            i += 1
            continue
        pos = Pos(line, i - line_start + 1, origin)
        if c in "(),":
            tokens.append(Token(c, c, c, pos))  # type: ignore[arg-type]
            i += 1
        elif c in "=!<>":
            two = text[i : i + 2]
            op = two if two in ("==", "!=", "<=", ">=") else c
            if op == "!":
                raise ExprError("`!` is not an operator", pos, "write `!=` or `not`")
            tokens.append(Token("symbol", op, op, pos))
            i += len(op)
        elif c in "\"'":
            value, i = _string(text, i, pos)
            tokens.append(Token("string", text[pos.col - 1 + line_start : i], value, pos))
        else:
            start = i
            while i < n and text[i] not in _STOP:
                i += 1
            word = text[start:i]
            number = _number(word)
            if number is not None:
                tokens.append(Token("number", word, number, pos))
            else:
                tokens.append(Token("word", word, word, pos))
    tokens.append(Token("end", "", "", Pos(line, n - line_start + 1, origin)))
    return tokens


def _string(text: str, start: int, pos: Pos) -> tuple[str, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == quote:
            return "".join(out), i + 1
        if c == "\n":
            break
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if quote == '"' and nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
            if quote == "'" and nxt in "'\\":
                out.append(nxt)
                i += 2
                continue
        out.append(c)
        i += 1
    raise ExprError("unterminated string", pos, f"close it with {quote}")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def at(self, kind: TokenKind) -> bool:
        """Whether the current token is of `kind` (a call, so mypy does not narrow across
        `advance()`)."""
        return self.tokens[self.i].kind == kind

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def is_word(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text in words

    def expect(self, kind: TokenKind, what: str) -> Token:
        if self.tok.kind != kind:
            raise ExprError(f"expected {what}, found {_describe(self.tok)}", self.tok.pos)
        return self.advance()

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise ExprError("the condition is empty", self.tok.pos, "write e.g. proc.name = bash")
        node = self.or_()
        if not self.at("end"):
            hint = ""
            if self.tok.kind == "word" and self.tok.text not in KEYWORDS:
                hint = "join conditions with `and` or `or`; quote strings that contain spaces"
            elif self.tok.kind == ")":
                hint = "this `)` has no matching `(`"
            raise ExprError(f"unexpected {_describe(self.tok)}", self.tok.pos, hint)
        return node

    def or_(self) -> Node:
        first = self.tok.pos
        items = [self.and_()]
        while self.is_word("or"):
            self.advance()
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items), first)

    def and_(self) -> Node:
        first = self.tok.pos
        items = [self.unary()]
        while self.is_word("and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items), first)

    def unary(self) -> Node:
        tok = self.tok
        if self.is_word("not"):
            self.advance()
            return Not(self.unary(), tok.pos)
        if tok.kind == "(":
            self.advance()
            node = self.or_()
            if self.tok.kind != ")":
                raise ExprError(
                    f"expected `)`, found {_describe(self.tok)}",
                    self.tok.pos,
                    f"the `(` at column {tok.pos.col} is not closed",
                )
            self.advance()
            return node
        if tok.kind != "word" or tok.text in KEYWORDS:
            raise ExprError(
                f"expected a condition, found {_describe(tok)}",
                tok.pos,
                "a condition is a field test (proc.name = bash), a macro name, or (…)",
            )
        nxt = self.peek()
        after = self.peek(2)
        starts_comparison = (
            nxt.kind == "symbol"
            or (nxt.kind == "word" and nxt.text in (*WORD_OPS, "exists"))
            or (nxt.text == "not" and (after.kind == "symbol" or after.text in WORD_OPS))
        )
        if is_field_word(tok.text) or starts_comparison:
            return self.predicate()
        self.advance()
        return MacroRef(tok.text, tok.pos)

    def predicate(self) -> Node:
        tok = self.advance()
        field = FieldRef(tok.text, tok.pos)
        if self.is_word("exists"):
            self.advance()
            return Exists(field, tok.pos)
        negate = None
        if self.is_word("not") and (self.peek().kind == "symbol" or self.peek().text in WORD_OPS):
            negate = self.advance().pos
        op_tok = self.tok
        if not (op_tok.kind == "symbol" or (op_tok.kind == "word" and op_tok.text in WORD_OPS)):
            if negate is not None:
                raise ExprError("expected an operator after `not`", op_tok.pos)
            return Truthy(field, tok.pos)
        self.advance()
        op = "=" if op_tok.text == "==" else op_tok.text
        node: Node = Compare(field, op, self.value(op), op_tok.pos)
        return Not(node, negate) if negate is not None else node

    def value(self, op: str) -> Value:
        tok = self.tok
        if tok.kind == "(":
            return self.list_literal()
        if tok.kind in ("string", "number"):
            self.advance()
            return Literal(tok.value, tok.pos)
        if tok.kind == "word" and tok.text not in KEYWORDS - {"true", "false"}:
            self.advance()
            if tok.text in ("true", "false"):
                return Literal(tok.text == "true", tok.pos)
            if is_field_word(tok.text):
                return FieldRef(tok.text, tok.pos)
            if op in ("in", "intersects"):
                return ListRef(tok.text, tok.pos)
            return Literal(tok.text, tok.pos, bare=True)
        raise ExprError(
            f"expected a value after `{op}`, found {_describe(tok)}",
            tok.pos,
            "values are strings, numbers, (lists, of, values), list names or fields",
        )

    def list_literal(self) -> ListLiteral:
        start = self.advance()
        items: list[Literal | ListRef] = []
        while self.tok.kind != ")":
            tok = self.tok
            if tok.kind in ("string", "number"):
                items.append(Literal(tok.value, tok.pos))
            elif tok.kind == "word" and tok.text not in ("and", "or", "not"):
                items.append(Literal(tok.text, tok.pos, bare=True))
            else:
                raise ExprError(
                    f"expected a list item or `)`, found {_describe(tok)}",
                    tok.pos,
                    f"the list opened at column {start.pos.col} needs a closing `)`",
                )
            self.advance()
            if self.tok.kind == ",":
                self.advance()
            elif not self.at(")"):
                raise ExprError(
                    f"expected `,` or `)` in the list, found {_describe(self.tok)}",
                    self.tok.pos,
                    "separate list items with commas",
                )
        self.advance()
        return ListLiteral(tuple(items), start.pos)


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the condition"
    if tok.kind == "string":
        return f"string {tok.text}"
    return f"`{tok.text}`"


def parse(text: str, origin: Origin = NOWHERE) -> Node:
    """The tree for a condition; ExprError with the position of the first problem."""
    return _Parser(tokenize(text, origin)).parse()
