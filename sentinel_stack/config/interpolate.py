"""`${VAR}` and `${VAR:-default}` in config strings; `$${` writes a literal `${`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sentinel_stack.config.locate import KeyPath

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}?")


class InterpolationError(ValueError):
    def __init__(self, path: KeyPath, message: str, hint: str) -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


def interpolate(
    data: object, environ: Mapping[str, str], path: KeyPath = ()
) -> tuple[object, list[InterpolationError]]:
    """Return ``data`` with every string expanded, and the errors found on the way."""
    errors: list[InterpolationError] = []
    if isinstance(data, dict):
        result: dict[str, object] = {}
        for key, value in data.items():
            result[key], found = interpolate(value, environ, (*path, key))
            errors.extend(found)
        return result, errors
    if isinstance(data, list):
        items: list[object] = []
        for index, value in enumerate(data):
            item, found = interpolate(value, environ, (*path, index))
            items.append(item)
            errors.extend(found)
        return items, errors
    if isinstance(data, str) and "$" in data:
        return _expand(data, environ, path, errors), errors
    return data, errors


def _expand(
    text: str, environ: Mapping[str, str], path: KeyPath, errors: list[InterpolationError]
) -> str:
    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name is None:
            errors.append(
                InterpolationError(
                    path,
                    f"malformed variable reference {whole!r}",
                    "write ${NAME} or ${NAME:-default}; $${ gives a literal ${",
                )
            )
            return whole
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        errors.append(
            InterpolationError(
                path,
                f"environment variable {name} is not set",
                f"export {name}=..., or give a default: ${{{name}:-value}}",
            )
        )
        return whole

    return _REFERENCE.sub(replace, text)
