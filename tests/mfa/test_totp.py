"""RFC 6238 arithmetic, the skew window, the key URI and the locally drawn QR code."""

import base64
import urllib.parse

import pytest

from portal.mfa import totp
from portal.mfa.qr import svg_data_uri

RFC_SECRET = b"12345678901234567890"


@pytest.mark.parametrize(
    "t,expected",
    [  # RFC 6238 Appendix B, HMAC-SHA1
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ],
)
def test_rfc_6238_vectors(t, expected):
    assert totp.hotp(RFC_SECRET, t // 30, digits=8) == expected


def test_six_digit_codes_match_within_one_step_either_side():
    now = 1_700_000_000
    step = totp.time_step(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(RFC_SECRET, totp.code_at(RFC_SECRET, step + offset), now) == step + offset
    for offset in (-2, 2):
        assert totp.matching_step(RFC_SECRET, totp.code_at(RFC_SECRET, step + offset), now) is None


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "12 456"])
def test_malformed_codes_never_match(code):
    assert totp.matching_step(RFC_SECRET, code) is None


def test_secret_is_160_random_bits_and_base32_for_manual_entry():
    a, b = totp.new_secret(), totp.new_secret()
    assert len(a) == 20 and a != b
    assert base64.b32decode(totp.to_base32(a)) == a  # 32 characters, no padding


def test_provisioning_uri_names_issuer_account_and_parameters():
    uri = totp.provisioning_uri(RFC_SECRET, "dr.lee+ortho@clinic.example", "Riverbend Physical Therapy")
    parts = urllib.parse.urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert urllib.parse.unquote(parts.path) == "/Riverbend Physical Therapy:dr.lee+ortho@clinic.example"
    query = dict(urllib.parse.parse_qsl(parts.query))
    assert query == {
        "secret": totp.to_base32(RFC_SECRET),
        "issuer": "Riverbend Physical Therapy",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }


def test_qr_code_is_an_svg_data_uri_without_inline_style():
    uri = svg_data_uri("otpauth://totp/x?secret=ABC")
    assert uri.startswith("data:image/svg+xml")
    svg = urllib.parse.unquote(uri.split(",", 1)[1])
    assert svg.startswith("<svg") and "style" not in svg and "<script" not in svg
