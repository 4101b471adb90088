"""Telehealth eligibility follows the practice's licensure data."""

from datetime import date, timedelta

import pytest

from portal.extensions import db as _db
from portal.referrals.models import LicenseKind, PracticeLicense
from portal.referrals.telehealth import telehealth_eligibility

TODAY = date(2026, 11, 26)


@pytest.fixture
def licenses(db):
    _db.session.add_all(
        [
            PracticeLicense(us_state="WI", kind=LicenseKind.HOME, effective_on=date(2015, 1, 1)),
            PracticeLicense(
                us_state="IA",
                kind=LicenseKind.COMPACT,
                effective_on=date(2022, 1, 1),
                expires_on=TODAY + timedelta(days=10),
            ),
            PracticeLicense(
                us_state="MN",
                kind=LicenseKind.COMPACT,
                effective_on=date(2021, 1, 1),
                expires_on=TODAY - timedelta(days=1),
            ),
            PracticeLicense(us_state="IL", kind=LicenseKind.COMPACT, effective_on=TODAY + timedelta(days=5)),
        ]
    )
    _db.session.flush()


@pytest.mark.parametrize(
    "state,possible,why",
    [
        ("WI", True, "home state license"),
        ("IA", True, "pt compact privilege until"),
        ("MN", False, "not in effect"),
        ("IL", False, "not in effect"),
        ("CA", False, "no license or pt compact privilege in ca"),
        (None, False, "not known"),
    ],
)
def test_eligibility_and_reason(licenses, state, possible, why):
    result = telehealth_eligibility(state, on=TODAY)
    assert result.possible is possible and why in result.reason.lower()


def test_admin_edits_licensure(client, login_as, db):
    login_as("admin")
    response = client.post(
        "/admin/licensure/",
        data={"us_state": "CO", "kind": "compact_privilege", "effective_on": "2026-01-01", "expires_on": "2025-01-01"},
    )
    assert response.status_code == 422 and b"after the effective date" in response.data
    assert (
        client.post(
            "/admin/licensure/", data={"us_state": "CO", "kind": "compact_privilege", "effective_on": "2026-01-01"}
        ).status_code
        == 302
    )
    assert telehealth_eligibility("CO", on=TODAY).possible
