"""The consent form's safe defaults (issue 15): the referring organization preselected, only its
clinicians offered, today's date, and a consent for an organization that never referred the patient
only with an explicit confirmation."""

import re

import pytest
from sqlalchemy import select

from portal.consent.models import Consent
from portal.core.permissions import Role
from tests import factories
from tests.clock import practice_today


@pytest.fixture
def referred(db, login_as, org_a, org_b):
    staff = login_as(Role.STAFF)
    # A prospect sorting first alphabetically, with nobody in it: the old default.
    prospect = factories.make_organization("Aaa Prospect Clinic")
    referrer = factories.make_user(Role.PARTNER, org_b, full_name="Rita Referrer")
    factories.make_user(Role.PARTNER, org_a, full_name="Otto Otherorg")
    referral = factories.make_referral(org_b, clinician=referrer)
    return staff, referral, prospect, referrer


def _selected(html: str, name: str) -> str | None:
    select_html = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    found = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"|<option[^>]*value="([^"]*)"[^>]*selected', select_html)
    return (found.group(1) or found.group(2)) if found else None


def _options(html: str, name: str) -> str:
    return re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)


def test_the_consent_form_preselects_the_referring_organization_and_offers_only_its_clinicians(
    client, referred, org_a, org_b
):
    _, referral, prospect, referrer = referred
    html = client.get(f"/staff/patients/{referral.patient.public_id}").text
    assert _selected(html, "organization") == str(org_b.public_id)
    clinicians = _options(html, "clinician")
    assert "Rita Referrer" in clinicians and "Otto Otherorg" not in clinicians
    assert re.search(rf'name="effective_on"[^>]*value="{practice_today().isoformat()}"', html) or re.search(
        rf'value="{practice_today().isoformat()}"[^>]*name="effective_on"', html
    )
    # The other organizations stay choosable (after the referring one).
    organizations = _options(html, "organization")
    assert organizations.index(str(org_b.public_id)) < organizations.index(str(prospect.public_id))


def _post(client, referral, organization, **extra):
    return client.post(
        f"/staff/patients/{referral.patient.public_id}/consents",
        data={
            "organization": str(organization.public_id),
            "clinician": "",
            "categories": ["progress_notes"],
            "effective_on": practice_today().isoformat(),
            "method": "verbal_witnessed",
            "witness": "Sam Intake",
            **extra,
        },
    )


def test_a_consent_for_an_organization_that_never_referred_the_patient_needs_confirmation(client, db, referred, org_a):
    _, referral, prospect, _ = referred
    for stranger in (prospect, org_a):
        response = _post(client, referral, stranger)
        assert response.status_code == 422
        assert "never referred this patient" in response.text and 'class="error-summary"' in response.text
        assert db.session.scalar(select(Consent).where(Consent.grantee_organization_id == stranger.id)) is None
    response = _post(client, referral, org_a, confirm_organization="y")
    assert response.status_code == 302
    assert db.session.scalar(select(Consent).where(Consent.grantee_organization_id == org_a.id)) is not None


def test_the_referring_organization_needs_no_confirmation(client, db, referred, org_b):
    _, referral, _, referrer = referred
    assert _post(client, referral, org_b, clinician=str(referrer.public_id)).status_code == 302
    consent = db.session.scalar(select(Consent).where(Consent.grantee_organization_id == org_b.id))
    assert consent.grantee_user_id == referrer.id


def test_a_clinician_of_another_organization_is_refused_not_shared(client, db, referred, org_b):
    _, referral, _, _ = referred
    stranger = factories.make_user(Role.PARTNER, factories.make_organization("Elsewhere"), full_name="Ed Elsewhere")
    response = _post(client, referral, org_b, clinician=str(stranger.public_id))
    assert response.status_code == 422
    assert db.session.scalar(select(Consent)) is None


def test_a_damaged_organization_is_a_clear_422(client, db, referred):
    _, referral, _, _ = referred
    response = client.post(
        f"/staff/patients/{referral.patient.public_id}/consents",
        data={"organization": "not-an-id", "categories": ["progress_notes"], "effective_on": "2026-13-45"},
    )
    assert response.status_code == 422 and 'class="error-summary"' in response.text
