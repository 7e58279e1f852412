"""The Textual TUI: a client of the control API showing traffic, health and alerts."""
