"""Charts on the patient pages: staff always, partners only under an outcome-scores consent; disclosures audited."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.consent.models import Category, ConsentStatus
from portal.core.permissions import Role
from portal.outcomes.models import Phase
from portal.referrals.lifecycle import Status
from tests import factories
from tests.clock import practice_today
from tests.consent.helpers import add_consent
from tests.outcomes.helpers import add_score


@pytest.fixture
def scored(db, org_a):
    referral = factories.make_referral(org_a, status=Status.IN_CARE)
    start = practice_today() - timedelta(days=40)
    for days, value, phase in ((0, 46, Phase.INTAKE), (20, 34, Phase.INTERIM), (40, 18, Phase.DISCHARGE)):
        add_score(referral, "ODI", phase, value, start + timedelta(days=days))
    return referral


def test_staff_page_shows_chart_with_mcid_and_table(client, login_as, scored):
    login_as("staff")
    page = client.get(f"/staff/patients/{scored.patient.public_id}").text
    assert '<svg class="chart line-chart"' in page and "MCID target: 36 or lower" in page
    assert f"ODI over time, referral {scored.reference}" in page
    assert "target reached" in page and "Show the numbers as a table" in page
    assert '<td class="num">46</td>' in page


@pytest.mark.parametrize(
    "categories,visible", [((Category.OUTCOME_SCORES,), True), ((Category.PROGRESS_NOTES,), False)]
)
def test_partner_sees_chart_only_with_outcome_consent(client, login_as, scored, db, categories, visible):
    partner = login_as("partner")
    add_consent(scored, categories=categories)
    page = client.get(f"/partner/patients/{scored.patient.public_id}").text
    assert ("MCID target: 36 or lower" in page) is visible
    disclosures = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "phi.disclosed", AuditEvent.actor_id == partner.id)
    ).all()
    assert len(disclosures) == (3 if visible else 0)
    assert all(e.detail["category"] == "outcome_scores" and e.object_type == "OutcomeScore" for e in disclosures)


def test_consent_to_a_colleague_or_another_org_does_not_show(client, login_as, scored, org_a, db):
    login_as("partner")
    add_consent(scored, categories=(Category.OUTCOME_SCORES,), clinician=factories.make_user(Role.PARTNER, org_a))
    add_consent(scored, categories=(Category.OUTCOME_SCORES,), organization_id=factories.make_organization().id)
    assert "MCID target" not in client.get(f"/partner/patients/{scored.patient.public_id}").text


def test_revocation_hides_at_once(client, login_as, scored):
    login_as("partner")
    consent = add_consent(scored, categories=(Category.OUTCOME_SCORES,))
    url = f"/partner/patients/{scored.patient.public_id}"
    assert "MCID target" in client.get(url).text
    add_consent(
        scored, categories=(Category.OUTCOME_SCORES,), key=consent.consent_key, version=2, status=ConsentStatus.REVOKED
    )
    assert "MCID target" not in client.get(url).text


def test_partner_sees_only_own_organizations_episodes(client, login_as, scored, org_b):
    """The same patient referred by org B too: org B's partner sees org B's episode only."""
    other = factories.make_referral(org_b, patient=scored.patient, status=Status.IN_CARE)
    add_score(other, "NPRS", Phase.INTAKE, 7)
    add_consent(scored, categories=(Category.OUTCOME_SCORES,), organization_id=org_b.id)
    add_consent(other, categories=(Category.OUTCOME_SCORES,))
    login_as("partner", organization=org_b)
    page = client.get(f"/partner/patients/{scored.patient.public_id}").text
    assert f"NPRS over time, referral {other.reference}" in page and "ODI over time" not in page
