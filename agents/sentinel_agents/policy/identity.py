"""Who is asking: claims from a bearer JWT, but only once its signature and times check out.

The policy sees ``input.identity.claims`` and will grant on them, so an unverified token
must never produce claims: a bad signature, a wrong algorithm, an expired token or a
missing key all give ``authenticated: false`` with empty claims, and the reason is kept for
the decision log. The algorithm list comes from config, never from the token header
(the "alg: none" / HS-with-public-key confusions).

Times are judged against the ``now`` passed in (epoch seconds); PyJWT's own clock checks
are switched off so that tests and the core stay clock-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

SUPPORTED_ALGORITHMS = frozenset({"HS256", "RS256"})


class IdentityConfigError(ValueError):
    """An identity config that cannot verify anything; ``key`` names the offending field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """How to verify bearer tokens: one algorithm and its key (HS256 secret or RS256 PEM)."""

    algorithm: str
    key: str = field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    leeway: float = 30.0
    require_exp: bool = True
    header: str = "authorization"


@dataclass(frozen=True, slots=True)
class Identity:
    """What the policy input carries about the caller."""

    authenticated: bool
    claims: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_input(self) -> dict[str, Any]:
        """The ``input.identity`` object (the verification error stays out of policy input)."""
        return {"authenticated": self.authenticated, "claims": dict(self.claims)}


ANONYMOUS = Identity(authenticated=False)


def parse_identity_config(
    raw: Mapping[str, object], base_dir: Path | None = None
) -> IdentityConfig:
    """Build from a TOML table: ``algorithm``, ``key`` or ``key_file``, optional
    ``issuer``, ``audience``, ``leeway`` (seconds), ``require_exp``, ``header``."""
    allowed = {
        "algorithm",
        "key",
        "key_file",
        "issuer",
        "audience",
        "leeway",
        "require_exp",
        "header",
    }
    for name in raw:
        if name not in allowed:
            raise IdentityConfigError(
                name, f"unknown key; expected one of {', '.join(sorted(allowed))}"
            )
    algorithm = raw.get("algorithm")
    if algorithm not in SUPPORTED_ALGORITHMS:
        raise IdentityConfigError("algorithm", f"must be HS256 or RS256, got {algorithm!r}")
    key = raw.get("key")
    key_file = raw.get("key_file")
    if (key is None) == (key_file is None):
        raise IdentityConfigError("key", "give exactly one of key and key_file")
    if key_file is not None:
        if not isinstance(key_file, str):
            raise IdentityConfigError("key_file", "must be a path string")
        path = Path(key_file) if base_dir is None else base_dir / key_file
        try:
            key = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise IdentityConfigError("key_file", f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(key, str) or not key.strip():
        raise IdentityConfigError("key", "must be a non-empty string")
    if algorithm == "RS256" and "-----BEGIN" not in key:
        raise IdentityConfigError(
            "key", "RS256 needs a PEM public key (-----BEGIN PUBLIC KEY-----)"
        )
    leeway = raw.get("leeway", 30.0)
    if isinstance(leeway, bool) or not isinstance(leeway, int | float) or leeway < 0:
        raise IdentityConfigError(
            "leeway", f"must be a non-negative number of seconds, got {leeway!r}"
        )
    strings = {}
    for name in ("issuer", "audience", "header"):
        value = raw.get(name)
        if value is not None and not isinstance(value, str):
            raise IdentityConfigError(name, f"must be a string, got {value!r}")
        strings[name] = value
    require_exp = raw.get("require_exp", True)
    if not isinstance(require_exp, bool):
        raise IdentityConfigError("require_exp", "must be true or false")
    return IdentityConfig(
        algorithm=str(algorithm),
        key=key,
        issuer=strings["issuer"],
        audience=strings["audience"],
        leeway=float(leeway),
        require_exp=require_exp,
        header=(strings["header"] or "authorization").lower(),
    )


def identify(headers: Mapping[str, str], config: IdentityConfig | None, now: float) -> Identity:
    """Verify the bearer token in ``headers`` (lower-case names) at ``now``.

    No config or no token: anonymous. Any verification failure: anonymous with ``error``.
    """
    if config is None:
        return ANONYMOUS
    raw = headers.get(config.header)
    if not raw:
        return ANONYMOUS
    scheme, _, token = raw.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Identity(False, error="authorization header is not a bearer token")
    return verify_token(token.strip(), config, now)


def verify_token(token: str, config: IdentityConfig, now: float) -> Identity:
    """Claims of ``token`` if its signature, issuer, audience, ``exp`` and ``nbf`` hold."""
    try:
        claims = jwt.decode(
            token,
            config.key,
            algorithms=[config.algorithm],
            audience=config.audience,
            issuer=config.issuer,
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": config.audience is not None,
                "verify_iss": config.issuer is not None,
                "require": ["exp"] if config.require_exp else [],
            },
        )
    except jwt.PyJWTError as exc:
        return Identity(False, error=f"token rejected: {exc}")
    problem = _time_problem(claims, now, config.leeway)
    if problem:
        return Identity(False, error=f"token rejected: {problem}")
    return Identity(True, claims=claims)


def _time_problem(claims: Mapping[str, Any], now: float, leeway: float) -> str | None:
    for name in ("exp", "nbf", "iat"):
        value = claims.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return f"{name} is not a number"
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is not None and now >= exp + leeway:
        return "token has expired"
    if nbf is not None and now < nbf - leeway:
        return "token is not yet valid (nbf)"
    return None
