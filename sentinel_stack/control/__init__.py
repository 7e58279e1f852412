"""The control API on `control.sock`: newline-delimited JSON requests, responses and streams."""
