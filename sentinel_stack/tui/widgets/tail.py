"""A live tail: the newest lines that fit, bottom-aligned, redrawn in place.

Textual's `Log` keeps a scrollable history, which costs a thread and a whole-screen repaint
per write as its virtual size grows; a tail that shows what fits needs neither: a write
refreshes this widget's own region only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from textual.strip import Strip
from textual.widget import Widget


class TailView(Widget, can_focus=True):
    DEFAULT_CSS = """
    TailView {
        height: 1fr;
    }
    """

    def __init__(self, capacity: int = 200, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.lines: deque[str] = deque(maxlen=capacity)

    def write_lines(self, lines: Iterable[str]) -> None:
        """Add lines (printable text: no control characters, tabs included)."""
        self.lines.extend(lines)
        self.refresh()

    def clear(self) -> None:
        self.lines.clear()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        height = self.size.height
        shown = min(height, len(self.lines))
        index = len(self.lines) - shown + y - (height - shown)
        if not 0 <= index < len(self.lines):
            return Strip.blank(self.size.width, self.rich_style)
        text = self.lines[index].expandtabs()
        return Strip([Segment(text, self.rich_style)]).crop_extend(
            0, self.size.width, self.rich_style
        )
