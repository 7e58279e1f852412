"""YAML out for the container tiers: PyYAML, block style, keys in the order we built them.

Multi-line strings (a config file inside a ConfigMap) are written as literal blocks so a
person can read them; nothing is ever anchored or aliased, since tools that read these
files (kubectl, compose) handle aliases unevenly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

__all__ = ["dump_documents", "dump_yaml"]


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return text


def dump_documents(documents: Iterable[Any]) -> str:
    return "---\n".join(dump_yaml(document) for document in documents)
