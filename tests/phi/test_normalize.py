"""Blind-index normalisation: spellings a person calls equal must normalise equal."""

from datetime import date, datetime

import pytest

from portal.core.phi import normalize


@pytest.mark.parametrize(
    "spelling",
    [
        "Muñoz",
        "MUÑOZ",
        "munoz",
        "  Mun\u0303oz ",
        "Mu\u00f1oz",
        "ＭＵÑＯＺ",
    ],
)
def test_names_fold_case_accents_width_and_space(spelling):
    assert normalize.name(spelling) == "munoz"


def test_names_collapse_inner_whitespace_and_punctuation_variants():
    assert normalize.name("De  la\tCruz") == normalize.name("de la cruz")
    assert normalize.name("O’Callaghan") == normalize.name("o'callaghan")
    assert normalize.name("Asante‐Boateng") == normalize.name("asante-boateng")
    assert normalize.name("Straße") == normalize.name("STRASSE")
    assert normalize.name("Smith") != normalize.name("Smyth")


@pytest.mark.parametrize(
    "spelling",
    [
        "(608) 555-0142",
        "608-555-0142",
        "608.555.0142",
        "6085550142",
        "+1 608 555 0142",
        "1-608-555-0142",
        "+16085550142",
        " 608 555 0142 ext. 12",
        "608-555-0142 x3",
        "０６０８５５５０１４２"[1:],
    ],
)
def test_us_phones_become_e164(spelling):
    assert normalize.us_phone(spelling) == "+16085550142"


def test_non_us_and_short_phones_stay_distinct():
    assert normalize.us_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize.us_phone("011 44 20 7946 0958") == "+442079460958"
    assert normalize.us_phone("555-0142") == "5550142"


def test_email_trimmed_and_lowercased():
    assert normalize.email("  Rosalind.Munoz@Example.ORG ") == "rosalind.munoz@example.org"


def test_dates_are_iso():
    assert normalize.iso_date(date(1980, 4, 2)) == "1980-04-02"
    assert normalize.iso_date(datetime(1980, 4, 2, 13, 5)) == "1980-04-02"
    assert normalize.iso_date("1980-4-2") == "1980-04-02"


def test_bad_date_error_does_not_quote_input():
    with pytest.raises(ValueError) as caught:
        normalize.iso_date("Okonkwo-1980")
    assert "Okonkwo" not in str(caught.value)
