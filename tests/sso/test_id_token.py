"""ID token validation on tokens signed here: every claim and the signature must check out."""

import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey, RSAKey

from portal.sso import oidc
from portal.sso.oidc import OidcError, used_mfa, validate_id_token

ISSUER = "https://login.hospital.test"
CLIENT = "portal-client"
NONCE = "n-0S6_WzA2Mj"
WANTED = ("email", "email_verified", "name")

PROVIDER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider-1", "alg": "RS256", "use": "sig"})
PUBLISHED = KeySet.import_key_set({"keys": [PROVIDER_KEY.as_dict(private=False)]})


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "email": "dr.reyes@hospital.test",
        "email_verified": True,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict, key=PROVIDER_KEY, header=None) -> str:
    return jwt.encode(header or {"alg": "RS256", "kid": "provider-1"}, payload, key)


def check(token: str, **kwargs) -> dict:
    return validate_id_token(
        token,
        issuer=kwargs.get("issuer", ISSUER),
        client_id=CLIENT,
        nonce=kwargs.get("nonce", NONCE),
        keys=kwargs.get("keys", PUBLISHED),
    )


def reason(token: str, **kwargs) -> str:
    with pytest.raises(OidcError) as exc:
        check(token, **kwargs)
    return exc.value.reason


def test_a_good_token_passes():
    assert check(sign(claims()))["email"] == "dr.reyes@hospital.test"


def test_an_ec_signed_token_passes_too():
    key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    keys = KeySet.import_key_set({"keys": [key.as_dict(private=False)]})
    assert check(sign(claims(), key, {"alg": "ES256", "kid": "ec-1"}), keys=keys)["sub"]


@pytest.mark.parametrize(
    "change,expected",
    [
        ({"iss": "https://evil.example"}, "invalid_iss"),
        ({"aud": "someone-else"}, "invalid_aud"),
        ({"nonce": "replayed-or-forged"}, "invalid_nonce"),
        ({"nonce": None}, "missing_claim"),
        ({"sub": None}, "missing_claim"),
        ({"exp": int(time.time()) - 3600}, "expired_token"),
        ({"iat": int(time.time()) + 3600}, "invalid_iat"),
        ({"nbf": int(time.time()) + 3600}, "invalid_nbf"),
        ({"aud": [CLIENT, "other-client"]}, "invalid_azp"),
    ],
)
def test_bad_claims_are_refused(change, expected):
    assert reason(sign(claims(**change))) == expected


def test_several_audiences_need_azp_naming_us():
    assert check(sign(claims(aud=[CLIENT, "other"], azp=CLIENT)))["sub"]


def test_small_clock_skew_is_tolerated():
    assert check(sign(claims(exp=int(time.time()) - 30)))["sub"]


def test_signature_by_another_key_with_the_providers_kid_is_refused():
    impostor = RSAKey.generate_key(2048)
    assert reason(sign(claims(), impostor)) == "bad_signature"


def test_tampered_payload_is_refused():
    header, payload, signature = sign(claims()).split(".")
    forged = sign(claims(email="chief@hospital.test")).split(".")[1]
    assert reason(".".join([header, forged, signature[:-4] + "AAAA"])) == "bad_signature"
    assert reason(".".join([header, forged, signature])) == "bad_signature"


def test_unknown_key_id_is_reported_for_a_key_refresh():
    other = RSAKey.generate_key(2048, parameters={"kid": "provider-2"})
    assert reason(sign(claims(), other, {"alg": "RS256", "kid": "provider-2"})) == "unknown_key"


def test_symmetric_and_unsigned_tokens_are_refused():
    hs = sign(claims(), OctKey.import_key(b"the-client-secret-used-as-hmac-key"), {"alg": "HS256", "kid": "provider-1"})
    assert reason(hs) == "malformed_token"
    unsigned = ".".join(sign(claims()).split(".")[:2]) + "."
    assert reason(unsigned.replace(unsigned.split(".")[0], "eyJhbGciOiJub25lIn0")) == "malformed_token"


def test_garbage_is_refused():
    assert reason("not-a-token") == "malformed_token"


@pytest.mark.parametrize(
    "amr,expected", [(["pwd", "mfa"], True), (["otp"], True), (["pwd"], False), (None, False), ("mfa", False)]
)
def test_provider_mfa_is_read_from_amr(amr, expected):
    assert used_mfa(claims(amr=amr)) is expected


def test_userinfo_fills_in_email_only_for_the_same_subject(monkeypatch):
    meta = oidc.ProviderMetadata(
        issuer=ISSUER,
        authorization_endpoint="",
        token_endpoint="",
        jwks_uri="",
        userinfo_endpoint=ISSUER + "/me",
        token_auth_methods=(),
        keys=PUBLISHED,
    )
    answers = {"sub": "248289761001", "email": "dr.reyes@hospital.test", "email_verified": True}
    monkeypatch.setattr(oidc, "_get_json", lambda url, token=None: dict(answers))
    bare = claims(email=None, email_verified=None)
    assert oidc.with_userinfo(bare, meta, "access-token", WANTED)["email_verified"] is True
    answers["sub"] = "someone-else"
    with pytest.raises(OidcError, match="userinfo_sub_mismatch"):
        oidc.with_userinfo(bare, meta, "access-token", WANTED)
    from_token = claims(email="from.token@hospital.test", name="Dr From Token")
    assert oidc.with_userinfo(from_token, meta, "access-token", WANTED)["email"] == "from.token@hospital.test"
