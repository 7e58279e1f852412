"""Supervision: a pure lifecycle state machine per child, and the Trio code that drives it."""
