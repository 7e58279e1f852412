"""sentinel-stack: a local all-in-one security stack under one supervisor."""

__version__ = "0.1.0"
