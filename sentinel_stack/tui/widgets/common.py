"""Small helpers shared by the panels."""

from __future__ import annotations

from textual.content import Content
from textual.css.scalar import Unit
from textual.widgets import Static


def _rows(text: str, width: int) -> int:
    """How many rows ``text`` takes when wrapped at ``width`` (an estimate: one cell a char)."""
    width = max(width, 1)
    return sum(max(1, -(-len(line) // width)) for line in text.split("\n"))


def _fitted_rows(widget: Static, text: str) -> int:
    """The content rows ``widget`` should have for ``text``, within its max-height."""
    rows = _rows(text, widget.content_region.width)
    limit = widget.styles.max_height
    if limit is not None and limit.unit == Unit.CELLS:
        gutter = widget.region.height - widget.content_region.height
        rows = min(rows, int(limit.value) - gutter)
    return rows


def show_text(widget: Static, content: Content) -> None:
    """Update ``widget`` only if its text changed, and re-layout only if its height must
    change: a layout pass is most of the cost of a frame."""
    previous = widget.content
    if isinstance(previous, Content) and (previous.plain, previous.spans) == (
        content.plain,
        content.spans,
    ):
        return
    if widget.content_region.width <= 0:  # not laid out yet
        widget.update(content)
        return
    # compare with the height it has, not the one it should have had: self-correcting
    widget.update(
        content, layout=_fitted_rows(widget, content.plain) != widget.content_region.height
    )
