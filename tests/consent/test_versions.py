"""Each new consent version stamps the versions it replaces; the policy reads only the newest."""

from sqlalchemy import select

from portal.consent import services
from portal.consent.models import Category, Consent, ConsentStatus
from portal.consent.policy import current_consents, may_see
from portal.core.permissions import Role
from portal.extensions import db as _db
from tests import factories
from tests.consent.helpers import add_consent


def _versions(key):
    _db.session.expire_all()
    return {c.version: c.superseded_at for c in _db.session.scalars(select(Consent).where(Consent.consent_key == key))}


def test_revoking_stamps_the_replaced_version_and_hides_at_once(db, org_a):
    partner = factories.make_user(Role.PARTNER, org_a)
    staff = factories.make_user(Role.STAFF)
    referral = factories.make_referral(org_a, partner)
    first = add_consent(referral, categories=(Category.OUTCOME_SCORES,))
    assert may_see(partner, referral.patient_id, Category.OUTCOME_SCORES)
    revoked = services.revoke(staff, first, "Patient asked")
    assert first.superseded_at == revoked.recorded_at  # the loaded object is in step too, without a reload
    assert _versions(first.consent_key) == {1: revoked.recorded_at, 2: None}
    assert not may_see(partner, referral.patient_id, Category.OUTCOME_SCORES)
    assert [c.version for c in current_consents(referral.patient_id)] == [2]


def test_a_version_added_any_other_way_is_stamped_too(db, org_a):
    referral = factories.make_referral(org_a)
    first = add_consent(referral)
    add_consent(referral, key=first.consent_key, version=2, status=ConsentStatus.REVOKED)
    third = add_consent(referral, key=first.consent_key, version=3)
    versions = _versions(first.consent_key)
    assert versions[1] is not None and versions[2] == third.recorded_at and versions[3] is None
    other = add_consent(referral)  # another chain of the same patient is untouched
    assert _versions(other.consent_key) == {1: None}
