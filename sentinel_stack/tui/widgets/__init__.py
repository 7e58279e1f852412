"""The TUI's widgets: each renders a snapshot it is given and says what the user asked for."""
