"""The consent policy, exhaustively and by property: nothing reaches a partner without consent."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.consent.models import Category, ConsentStatus
from portal.consent.policy import may_see
from portal.extensions import db as _db
from portal.progress.models import UPDATE_CATEGORIES, UpdateState
from portal.progress.queries import visible_updates
from tests import factories
from tests.clock import practice_today
from tests.consent.helpers import add_consent, add_update

TODAY = practice_today()
STATES = {
    "active": dict(start=TODAY - timedelta(days=10), end=TODAY + timedelta(days=10)),
    "open_ended": dict(start=TODAY - timedelta(days=10), end=None),
    "expires_today": dict(start=TODAY - timedelta(days=10), end=TODAY),
    "expired": dict(start=TODAY - timedelta(days=40), end=TODAY - timedelta(days=1)),
    "future": dict(start=TODAY + timedelta(days=1), end=None),
    "revoked": dict(start=TODAY - timedelta(days=10), end=None),
}
IN_EFFECT = {"active", "open_ended", "expires_today"}
GRANTEES = ("organization", "this_clinician", "colleague", "other_organization")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    granted=st.sets(st.sampled_from(list(Category)), min_size=1),
    grantee=st.sampled_from(GRANTEES),
    state=st.sampled_from(sorted(STATES)),
    update_state=st.sampled_from(list(UpdateState)),
    update_category=st.sampled_from(UPDATE_CATEGORIES),
)
def test_policy_property(db, granted, grantee, state, update_state, update_category):
    nested = _db.session.begin_nested()  # each example starts clean
    try:
        org, other = factories.make_organization(), factories.make_organization()
        viewer = factories.make_user("partner", org)
        colleague = factories.make_user("partner", org)
        referral = factories.make_referral(org, viewer)
        kwargs = dict(STATES[state], categories=granted)
        if grantee == "this_clinician":
            kwargs["clinician"] = viewer
        elif grantee == "colleague":
            kwargs["clinician"] = colleague
        elif grantee == "other_organization":
            kwargs["organization_id"] = other.id
        consent = add_consent(referral, **kwargs)
        if state == "revoked":
            add_consent(referral, **dict(kwargs, status=ConsentStatus.REVOKED), key=consent.consent_key, version=2)
        staff = factories.make_user("staff")
        item = add_update(referral, staff, state=update_state, category=update_category)

        expected = (
            update_state is UpdateState.RELEASED
            and update_category in granted
            and state in IN_EFFECT
            and grantee in ("organization", "this_clinician")
        )
        seen = _db.session.scalars(visible_updates(viewer).where(type(item).id == item.id)).all()
        assert (seen == [item]) is expected
        assert may_see(viewer, referral.patient_id, update_category) is (
            update_category in granted and state in IN_EFFECT and grantee in ("organization", "this_clinician")
        )
    finally:
        nested.rollback()


def test_staff_are_never_answered_by_the_partner_policy(db):
    org = factories.make_organization()
    referral = factories.make_referral(org)
    add_consent(referral)
    assert may_see(factories.make_user("staff"), referral.patient_id, Category.PROGRESS_NOTES) is False


def test_a_new_version_replaces_the_old_one(db):
    org = factories.make_organization()
    viewer = factories.make_user("partner", org)
    referral = factories.make_referral(org, viewer)
    first = add_consent(referral, categories=(Category.PROGRESS_NOTES,))
    assert may_see(viewer, referral.patient_id, Category.PROGRESS_NOTES)
    add_consent(referral, categories=(Category.OUTCOME_SCORES,), key=first.consent_key, version=2)
    assert not may_see(viewer, referral.patient_id, Category.PROGRESS_NOTES)
    assert may_see(viewer, referral.patient_id, Category.OUTCOME_SCORES)


def test_visible_updates_never_cross_organizations(db):
    org_a, org_b = factories.make_organization(), factories.make_organization()
    viewer = factories.make_user("partner", org_a)
    patient = factories.make_patient()
    theirs = factories.make_referral(org_b, patient=patient)
    add_consent(theirs, organization_id=org_a.id)  # consent names A, but B referred this episode
    add_update(theirs, factories.make_user("staff"))
    assert _db.session.scalars(visible_updates(viewer)).all() == []
