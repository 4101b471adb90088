"""NIST SP 800-63B password rules."""

import pytest

from portal.accounts.passwords import password_problems


@pytest.mark.parametrize(
    "password",
    [
        "short one",  # under 12
        "qwerty123456",  # common list
        "Password1234",  # common list, case-insensitively
        "passwordpassword",  # a common password repeated
        "aaaaaaaaaaaaaaa",  # repeated
        "123456789012",  # sequential
        "abcdefghijklmnop",  # sequential letters
        "x" * 257,  # beyond the bound
    ],
)
def test_refused(password):
    assert password_problems(password)


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "lowercase only is fine here",  # no composition rules
        "ÜnïcødΣ pässphrase ok",
        ("long passphrase words " * 12)[:256],
    ],
)
def test_accepted(password):
    assert password_problems(password) == []


def test_context_words_refused():
    assert password_problems("jordan.reed-secure-pass", context=("jordan.reed", "Jordan Reed"))
