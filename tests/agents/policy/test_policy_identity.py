"""JWT identity: only verified tokens give claims; times judged against the passed-in clock."""

from __future__ import annotations

from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sentinel_agents.policy import (
    IdentityConfig,
    IdentityConfigError,
    PolicyEngine,
    PolicyRequest,
    Reloaded,
    identify,
    load_policy_source,
    parse_identity_config,
)

T0 = 1_700_000_000
SECRET = "s3cret-that-is-long-enough-for-hs256!"
EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "policies"


def hs_config(**extra: object) -> IdentityConfig:
    return parse_identity_config({"algorithm": "HS256", "key": SECRET, **extra})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_valid_hs256_token_gives_claims() -> None:
    token = jwt.encode({"sub": "alice", "roles": ["admin"], "exp": T0 + 60}, SECRET, "HS256")
    identity = identify(bearer(token), hs_config(), T0)
    assert identity.authenticated
    assert identity.claims["sub"] == "alice"
    assert identity.as_input() == {
        "authenticated": True,
        "claims": {"sub": "alice", "roles": ["admin"], "exp": T0 + 60},
    }


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (
            jwt.encode({"sub": "a", "exp": T0 + 60}, "wrong-secret-wrong-secret-wrong!!", "HS256"),
            "Signature",
        ),
        (jwt.encode({"sub": "a", "exp": T0 - 100}, SECRET, "HS256"), "expired"),
        (
            jwt.encode({"sub": "a", "exp": T0 + 600, "nbf": T0 + 300}, SECRET, "HS256"),
            "not yet valid",
        ),
        (jwt.encode({"sub": "a"}, SECRET, "HS256"), "exp"),
        (jwt.encode({"sub": "a", "exp": T0 + 60}, "", "none"), "alg"),
        ("not.a.jwt", "token rejected"),
    ],
)
def test_unverified_tokens_never_give_claims(token: str, fragment: str) -> None:
    identity = identify(bearer(token), hs_config(), T0)
    assert not identity.authenticated
    assert identity.claims == {}
    assert identity.error is not None and fragment.lower() in identity.error.lower()


def test_leeway_and_injected_clock() -> None:
    token = jwt.encode({"sub": "a", "exp": T0}, SECRET, "HS256")
    assert identify(bearer(token), hs_config(leeway=10), T0 + 9).authenticated
    assert not identify(bearer(token), hs_config(leeway=10), T0 + 10).authenticated


def test_issuer_and_audience() -> None:
    config = hs_config(issuer="https://idp", audience="sentinel")
    good = jwt.encode({"exp": T0 + 60, "iss": "https://idp", "aud": "sentinel"}, SECRET, "HS256")
    bad = jwt.encode({"exp": T0 + 60, "iss": "https://evil", "aud": "sentinel"}, SECRET, "HS256")
    assert identify(bearer(good), config, T0).authenticated
    assert not identify(bearer(bad), config, T0).authenticated


def test_rs256_with_key_file_and_hs_confusion_refused(tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "pub.pem").write_bytes(public_pem)
    config = parse_identity_config({"algorithm": "RS256", "key_file": "pub.pem"}, tmp_path)
    token = jwt.encode({"sub": "svc", "exp": T0 + 60}, private, "RS256")
    assert identify(bearer(token), config, T0).claims["sub"] == "svc"
    # An HS256 token "signed" with the public key must not pass as RS256.
    forged = jwt.encode({"sub": "x", "exp": T0 + 60}, SECRET, "HS256")
    assert not identify(bearer(forged), config, T0).authenticated


def test_no_config_or_no_token_is_anonymous() -> None:
    token = jwt.encode({"sub": "a", "exp": T0 + 60}, SECRET, "HS256")
    assert not identify(bearer(token), None, T0).authenticated
    anonymous = identify({}, hs_config(), T0)
    assert not anonymous.authenticated and anonymous.error is None
    basic = identify({"authorization": "Basic abc"}, hs_config(), T0)
    assert basic.error is not None and "bearer" in basic.error


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"algorithm": "none", "key": "k"}, "algorithm"),
        ({"algorithm": "HS256"}, "key"),
        ({"algorithm": "HS256", "key": "k", "key_file": "f"}, "key"),
        ({"algorithm": "RS256", "key": "not a pem"}, "key"),
        ({"algorithm": "HS256", "key": "k", "leeway": -1}, "leeway"),
        ({"algorithm": "HS256", "key": "k", "audiance": "x"}, "audiance"),
        ({"algorithm": "HS256", "key_file": "/nonexistent/key"}, "key_file"),
    ],
)
def test_config_errors_name_the_key(raw: dict[str, object], key: str) -> None:
    with pytest.raises(IdentityConfigError) as caught:
        parse_identity_config(raw)
    assert caught.value.key == key


def test_policy_sees_verified_claims_only() -> None:
    engine = PolicyEngine(identity=hs_config())
    assert isinstance(engine.load(load_policy_source(EXAMPLE)), Reloaded)
    good = jwt.encode({"sub": "alice", "roles": ["admin"], "exp": T0 + 60}, SECRET, "HS256")
    forged = jwt.encode({"sub": "mallory", "roles": ["admin"], "exp": T0 + 60}, "x" * 32, "HS256")
    ok = engine.evaluate(PolicyRequest("GET", "/admin/x", headers=bearer(good), route="api"), T0)
    assert ok.decision.allow
    assert ok.decision.headers["x-sentinel-subject"] == "alice"
    bad = engine.evaluate(PolicyRequest("GET", "/admin/x", headers=bearer(forged), route="api"), T0)
    assert not bad.decision.allow and bad.decision.status == 401
    assert bad.input["identity"] == {"authenticated": False, "claims": {}}
    assert bad.identity_error is not None
