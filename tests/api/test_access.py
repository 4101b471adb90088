"""Organization A's client gets 404 for anything of organization B; B's own client sees it (the control)."""

from datetime import date

import pytest

from portal.consent.models import Category
from portal.core.permissions import Role
from portal.extensions import db
from portal.outcomes.models import Instrument, OutcomeScore, Phase
from tests import factories
from tests.api.helpers import bearer
from tests.consent.helpers import add_consent, add_update


@pytest.fixture
def world_b(org_b):
    """Organization B's referral with a score, a released update and a consent granting B everything."""
    staff = factories.make_user(Role.STAFF)
    referral = factories.make_referral(org_b)
    instrument = db.session.scalar(db.select(Instrument).where(Instrument.code == "ODI"))
    score = OutcomeScore(
        referral_id=referral.id,
        instrument_id=instrument.id,
        phase=Phase.DISCHARGE,
        measured_on=date(2026, 2, 1),
        score=12,
        recorded_by_id=staff.id,
    )
    db.session.add(score)
    consent = add_consent(
        referral, categories=(Category.OUTCOME_SCORES, Category.PROGRESS_NOTES, Category.DISCHARGE_SUMMARY)
    )
    update = add_update(referral, staff, category=Category.DISCHARGE_SUMMARY)
    db.session.flush()
    return {
        "Task": referral.public_id,
        "ServiceRequest": referral.public_id,
        "Observation": score.public_id,
        "DocumentReference": update.public_id,
        "Consent": consent.public_id,
        "Patient": referral.patient.public_id,
        "Organization": org_b.public_id,
        "Practitioner": referral.clinician.public_id,
        "PractitionerRole": referral.clinician.public_id,
    }


@pytest.mark.parametrize(
    "kind",
    [
        "Task",
        "ServiceRequest",
        "Observation",
        "DocumentReference",
        "Consent",
        "Patient",
        "Organization",
        "Practitioner",
        "PractitionerRole",
    ],
)
def test_other_organizations_resources_are_404(client, client_a, client_b, world_b, kind):
    theirs = bearer(client, client_b)
    assert client.get(f"/fhir/{kind}/{world_b[kind]}", headers=theirs).status_code == 200
    response = client.get(f"/fhir/{kind}/{world_b[kind]}", headers=bearer(client, client_a))
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize("kind", ["Task", "Observation", "DocumentReference", "Consent", "Patient"])
def test_other_organizations_resources_never_listed(client, client_a, client_b, world_b, kind):
    assert client.get(f"/fhir/{kind}", headers=bearer(client, client_b)).get_json()["total"] == 1
    assert client.get(f"/fhir/{kind}", headers=bearer(client, client_a)).get_json()["total"] == 0


def test_consent_granted_to_a_does_not_open_b_episode(client, client_a, org_a, world_b):
    """Even a consent naming organization A does not expose organization B's referral or its scores."""
    from portal.referrals.models import Referral

    referral = db.session.scalar(db.select(Referral).where(Referral.public_id == world_b["Task"]))
    add_consent(referral, categories=(Category.OUTCOME_SCORES,), organization_id=org_a.id)
    headers = bearer(client, client_a)
    assert client.get(f"/fhir/Observation/{world_b['Observation']}", headers=headers).status_code == 404
    assert client.get(f"/fhir/Task/{world_b['Task']}", headers=headers).status_code == 404


def test_unknown_and_malformed_ids_are_404(client, client_a):
    headers = bearer(client, client_a)
    for path in ("/fhir/Task/00000000-0000-4000-8000-000000000000", "/fhir/Task/not-a-uuid"):
        assert client.get(path, headers=headers).status_code == 404
