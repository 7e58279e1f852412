"""The stack's configuration: one TOML file, one typed schema, errors that point at lines."""

from sentinel_stack.config.loader import ConfigError, ConfigIssue, load_config, load_config_text
from sentinel_stack.config.schema import StackConfig

__all__ = ["ConfigError", "ConfigIssue", "StackConfig", "load_config", "load_config_text"]
