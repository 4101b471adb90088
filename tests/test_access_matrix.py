"""Every route x every role, with the status each must get.

A route missing from MATRIX fails test_every_route_is_in_the_matrix: new work must
add its routes here. Object routes use organization B's objects, so a partner of
organization A must get 404 (not 403: the object does not exist for them).
"""

import pytest

from portal.core.permissions import Role
from portal.core.time import now_utc
from portal.extensions import db
from tests import factories
from tests.conftest import sign_in

ROLES = ["anonymous", "partner_a", "partner_b", "partner_admin_a", "staff", "admin"]
LOGIN = "login"  # a redirect to the sign-in page

PARTNER_B_ONLY = {"anonymous": LOGIN, "partner_b": 200, "partner_a": 404, "partner_admin_a": 404, "*": 403}
STAFF_ONLY = {"anonymous": LOGIN, "staff": 200, "admin": 200, "*": 403}
STAFF_FORM = {**STAFF_ONLY, "staff": 422, "admin": 422}  # an empty POST: refused with messages
PARTNERS_ONLY = {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 200}
BEARER = {"*": 401}  # FHIR resources: a bearer token or nothing, whoever is signed in

# endpoint: (method, path template, {role: expected}); "*" is the default for other roles.
MATRIX = {
    "static": ("GET", "/static/css/portal.css", {"*": 200}),
    "home.index": ("GET", "/", {"*": 302}),
    "home.health": ("GET", "/healthz", {"*": 200}),
    # Operations (issue 19): readiness is public like liveness; metrics exist only once a token or an
    # address is configured (tests/ops/test_metrics.py), and no session ever opens them.
    "ops.ready": ("GET", "/readyz", {"*": 200}),
    "ops.scrape": ("GET", "/metrics", {"*": 404}),
    "home.staff": ("GET", "/staff/", {"anonymous": LOGIN, "staff": 200, "admin": 200, "*": 403}),
    "auth.login": ("GET", "/auth/login", {"anonymous": 200, "*": 302}),
    "auth.logout": ("POST", "/auth/logout", {"anonymous": LOGIN, "*": 302}),
    "auth.forgot_password": ("GET", "/auth/forgot", {"*": 200}),
    "auth.redeem": ("GET", "/auth/link/invite?t=forged", {"*": 400}),
    "auth.set_password": ("GET", "/auth/set-password", {"*": 400}),
    "auth.account": ("GET", "/auth/account", {"anonymous": LOGIN, "*": 200}),
    # Sign-in security (issue 8). Someone else's (or no) session or browser is a 404.
    "auth.end_session": (
        "POST",
        "/auth/sessions/00000000-0000-4000-8000-000000000000/end",
        {"anonymous": LOGIN, "*": 404},
    ),
    "auth.end_other_sessions": ("POST", "/auth/sessions/end-others", {"anonymous": LOGIN, "*": 302}),
    "mfa.verify": ("GET", "/auth/mfa/verify", {"*": LOGIN}),  # only half-way through signing in
    "mfa.setup": ("GET", "/auth/mfa/setup", {"*": LOGIN}),
    "mfa.enrol": ("GET", "/auth/mfa/enrol", {"anonymous": LOGIN, "*": 200}),
    "mfa.recovery_codes": ("POST", "/auth/mfa/recovery-codes", {"anonymous": LOGIN, "*": 302}),
    "mfa.disable": ("POST", "/auth/mfa/disable", {"anonymous": LOGIN, "*": 302}),
    "mfa.revoke_device": (
        "POST",
        "/auth/mfa/devices/00000000-0000-4000-8000-000000000000/revoke",
        {"anonymous": LOGIN, "*": 404},
    ),
    # Passkeys (issue 17). The sign-in and set-up ceremonies answer JSON: 401 without a half-finished sign-in.
    "mfa.passkey_options": ("POST", "/auth/mfa/passkey/options", {"*": 401}),
    "mfa.passkey_verify": ("POST", "/auth/mfa/passkey/verify", {"*": 401}),
    "mfa.passkey_setup_options": ("POST", "/auth/mfa/setup/passkey/options", {"*": 401}),
    "mfa.passkey_setup": ("POST", "/auth/mfa/setup/passkey", {"*": 401}),
    "mfa.passkey_register_options": ("POST", "/auth/mfa/passkeys/options", {"anonymous": LOGIN, "*": 400}),  # no JSON
    "mfa.passkey_register": ("POST", "/auth/mfa/passkeys", {"anonymous": LOGIN, "*": 400}),
    "mfa.passkey": ("GET", "/auth/mfa/passkeys/00000000-0000-4000-8000-000000000000", {"anonymous": LOGIN, "*": 404}),
    "mfa.rename_passkey": (
        "POST",
        "/auth/mfa/passkeys/00000000-0000-4000-8000-000000000000/rename",
        {"anonymous": LOGIN, "*": 404},
    ),
    "mfa.remove_passkey": (
        "POST",
        "/auth/mfa/passkeys/00000000-0000-4000-8000-000000000000/remove",
        {"anonymous": LOGIN, "*": 404},
    ),
    "mfa.practice_policy": ("GET", "/admin/sign-in-policy", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "mfa.admin_reset": ("POST", "/admin/users/{user_b}/reset-mfa", {"anonymous": LOGIN, "admin": 302, "*": 403}),
    "mfa.organization_policy": (
        "POST",
        "/admin/organizations/{org_b}/sign-in-policy",
        {"anonymous": LOGIN, "admin": 302, "*": 403},
    ),
    "sso.start": ("GET", "/auth/sso", {"anonymous": 200, "*": 302}),
    "sso.callback": ("GET", "/auth/sso/callback?code=x&state=forged", {"*": 400}),
    "sso.configure": ("GET", "/admin/organizations/{org_b}/sso", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    # Single sign-on (issue 18). Organization B has no provider: its tests and bindings are a 404 to an
    # admin; a partner admin's pages are their own organization's only (tests/sso/test_settings.py).
    "sso.signed_out": ("GET", "/auth/sso/signed-out", {"*": 200}),
    "sso.backchannel_logout": ("POST", "/auth/sso/backchannel-logout", {"*": 400}),  # no logout token
    "sso.test_connection": (
        "POST",
        "/admin/organizations/{org_b}/sso/test",
        {"anonymous": LOGIN, "admin": 404, "*": 403},
    ),
    "sso.test_sign_in": (
        "POST",
        "/admin/organizations/{org_b}/sso/test-sign-in",
        {"anonymous": LOGIN, "admin": 404, "*": 403},
    ),
    "sso.confirm_domain": (
        "POST",
        "/admin/organizations/{org_b}/sso/domains/b.example/confirm",
        {"anonymous": LOGIN, "admin": 422, "*": 403},  # not one of its domains
    ),
    "sso.users": ("GET", "/admin/organizations/{org_b}/sso/users", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "sso.unlink": (
        "POST",
        "/admin/organizations/{org_b}/sso/users/{user_b}/unlink",
        {"anonymous": LOGIN, "admin": 404, "*": 403},
    ),
    "sso.partner_settings": ("GET", "/partner/sso", {"anonymous": LOGIN, "partner_admin_a": 200, "*": 403}),
    "sso.partner_test_connection": (
        "POST",
        "/partner/sso/test",
        {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403},
    ),
    "sso.partner_test_sign_in": (
        "POST",
        "/partner/sso/test-sign-in",
        {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403},
    ),
    "sso.partner_users": ("GET", "/partner/sso/users", {"anonymous": LOGIN, "partner_admin_a": 200, "*": 403}),
    "sso.partner_unlink": (
        "POST",
        "/partner/sso/users/{user_b}/unlink",
        {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403},  # another organization's account
    ),
    "referrals.home": ("GET", "/partner/", {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 200}),
    "partners.users": ("GET", "/partner/users", {"anonymous": LOGIN, "partner_admin_a": 200, "*": 403}),
    "partners.deactivate_user": (
        "POST",
        "/partner/users/{user_b}/deactivate",
        {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403},
    ),
    "partners.reactivate_user": (
        "POST",
        "/partner/users/{user_b}/reactivate",
        {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403},
    ),
    "admin.home": ("GET", "/admin/", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.organizations": ("GET", "/admin/organizations", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.organization": ("GET", "/admin/organizations/{org_b}", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.users": ("GET", "/admin/users", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    # The design system's component page (issue 15): debug and test runs only, for administrators.
    "design.components": ("GET", "/admin/design/", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "admin.deactivate_user": ("POST", "/admin/users/{user_b}/deactivate", {"anonymous": LOGIN, "admin": 302, "*": 403}),
    "admin.reactivate_user": ("POST", "/admin/users/{user_b}/reactivate", {"anonymous": LOGIN, "admin": 302, "*": 403}),
    # Resending an invitation (issue 15): someone who already has a password is told so (302 with a message).
    "admin.resend_invitation": ("POST", "/admin/users/{user_b}/resend", {"anonymous": LOGIN, "admin": 302, "*": 403}),
    "partners.resend_invitation": (
        "POST",
        "/partner/users/{user_b}/resend",
        {"anonymous": LOGIN, "partner_admin_a": 404, "*": 403},
    ),
    "notifications.preferences": ("GET", "/account/notifications", {"anonymous": LOGIN, "*": 200}),
    "notifications.outbox": ("GET", "/admin/outbox", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    # One-click unsubscribe (issue 15): public, the signed token is the authority; a forged one is a 404.
    "notifications.unsubscribe": ("GET", "/unsubscribe/forged", {"*": 404}),
    "notifications.retry": (
        "POST",
        "/admin/outbox/00000000-0000-4000-8000-000000000000/retry",
        {"anonymous": LOGIN, "admin": 404, "*": 403},
    ),
    # Relationship workspace: staff only; partners see published events and resources.
    "relationships.organizations": ("GET", "/relationships/", STAFF_ONLY),
    "relationships.export_prospects": ("GET", "/relationships/prospects.csv", STAFF_ONLY),
    "relationships.import_prospects": (
        "POST",
        "/relationships/prospects/import",
        {**STAFF_ONLY, "staff": 302, "admin": 302},
    ),
    "relationships.organization": ("GET", "/relationships/organizations/{org_b}", STAFF_ONLY),
    "relationships.update_relationship": ("POST", "/relationships/organizations/{org_b}/relationship", STAFF_FORM),
    "relationships.log_touchpoint": ("POST", "/relationships/organizations/{org_b}/touchpoints", STAFF_FORM),
    "relationships.add_contact": ("POST", "/relationships/organizations/{org_b}/contacts", STAFF_FORM),
    "relationships.events": ("GET", "/relationships/events", STAFF_ONLY),
    "relationships.event": ("GET", "/relationships/events/{event}", STAFF_ONLY),
    "relationships.mark_attended": (
        "POST",
        "/relationships/events/{event}/rsvps/{rsvp_b}/attended",
        {**STAFF_ONLY, "staff": 302, "admin": 302},
    ),
    "relationships.resources": ("GET", "/relationships/resources", STAFF_ONLY),
    "relationships.download_resource": ("GET", "/relationships/resources/{resource}", STAFF_ONLY),
    "learning.index": ("GET", "/partner/learning/", {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 200}),
    "learning.rsvp": (
        "POST",
        "/partner/learning/events/{event}/rsvp",
        {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 302},
    ),
    "learning.download": (
        "GET",
        "/partner/learning/resources/{resource}",
        {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 200},
    ),
    # Referrals, partner side: organization B's referral is a 404 for organization A.
    "referrals.new": ("GET", "/partner/referrals/new", {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 200}),
    "referrals.submitted": ("GET", "/partner/referrals/{referral_b}/submitted", PARTNER_B_ONLY),
    "referrals.detail": ("GET", "/partner/referrals/{referral_b}", PARTNER_B_ONLY),
    "referrals.attachment": ("GET", "/partner/referrals/{referral_b}/attachments/{attachment_b}", PARTNER_B_ONLY),
    "referrals.add_note": ("POST", "/partner/referrals/{referral_b}/notes", {**PARTNER_B_ONLY, "partner_b": 422}),
    "referrals.cancel": ("POST", "/partner/referrals/{referral_b}/cancel", {**PARTNER_B_ONLY, "partner_b": 422}),
    "referrals.lookup": (
        "POST",
        "/partner/referrals/lookup",
        {"anonymous": LOGIN, "staff": 403, "admin": 403, "*": 422},
    ),
    # Referrals, practice side.
    "intake.queue": ("GET", "/staff/referrals/", STAFF_ONLY),
    "intake.detail": ("GET", "/staff/referrals/{referral_b}", STAFF_ONLY),
    "intake.attachment": ("GET", "/staff/referrals/{referral_b}/attachments/{attachment_b}", STAFF_ONLY),
    "intake.change_status": (
        "POST",
        "/staff/referrals/{referral_b}/status",
        {**STAFF_ONLY, "staff": 422, "admin": 422},
    ),
    "intake.add_note": ("POST", "/staff/referrals/{referral_b}/notes", {**STAFF_ONLY, "staff": 422, "admin": 422}),
    "intake.resolve_duplicate": (
        "POST",
        "/staff/referrals/{referral_b}/duplicate",
        {**STAFF_ONLY, "staff": 422, "admin": 422},
    ),
    "intake.lookup": ("POST", "/staff/referrals/lookup", {**STAFF_ONLY, "staff": 422, "admin": 422}),
    # Patients, consents, progress updates.
    "chart.staff_view": ("GET", "/staff/patients/{patient_b}", STAFF_ONLY),
    "consent.record_consent": ("POST", "/staff/patients/{patient_b}/consents", STAFF_FORM),
    "consent.revoke_consent": ("POST", "/staff/patients/{patient_b}/consents/{consent_b}/revoke", STAFF_FORM),
    "consent.consent_document": ("GET", "/staff/patients/{patient_b}/consents/{consent_b}/document", STAFF_ONLY),
    "progress.write_update": ("POST", "/staff/patients/{patient_b}/updates", STAFF_FORM),
    "progress.revise_update": ("POST", "/staff/updates/{update_b}/revise", STAFF_FORM),
    "progress.approvals": ("GET", "/staff/approvals", STAFF_ONLY),
    "progress.approve_update": (
        "POST",
        "/staff/updates/{update_b}/approve",
        {**STAFF_ONLY, "staff": 409, "admin": 409},
    ),
    "progress.return_update": ("POST", "/staff/updates/{update_b}/return", STAFF_FORM),
    "consent.expiring": ("GET", "/staff/consents/expiring", STAFF_ONLY),
    "chart.partner_view": ("GET", "/partner/patients/{patient_b}", PARTNER_B_ONLY),
    "admin.audit": ("GET", "/admin/audit", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "chart.disclosures": ("GET", "/staff/patients/{patient_b}/disclosures", STAFF_ONLY),
    "licensure.index": ("GET", "/admin/licensure/", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "licensure.delete": ("POST", "/admin/licensure/{license}/delete", {"anonymous": LOGIN, "admin": 302, "*": 403}),
    # Outcomes (issue 6): scores, instruments, reports. A partner's report is always their own organization's.
    "outcomes.episode_scores": ("GET", "/staff/episodes/{referral_b}/scores", STAFF_ONLY),
    "outcomes.delete_score": ("POST", "/staff/scores/{score_b}/delete", {**STAFF_ONLY, "staff": 302, "admin": 302}),
    # Removing a score asks first, and can be undone for a while (issue 15); an unknown removal is a 404.
    "outcomes.confirm_delete_score": ("GET", "/staff/scores/{score_b}/delete", STAFF_ONLY),
    "outcomes.undo_score_removal": (
        "POST",
        "/staff/episodes/{referral_b}/removals/00000000-0000-4000-8000-000000000000/undo",
        {**STAFF_ONLY, "staff": 404, "admin": 404},
    ),
    "outcomes.instruments": ("GET", "/admin/instruments", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "outcomes.instrument": ("GET", "/admin/instruments/{instrument}", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "outcomes.partner_report_page": ("GET", "/partner/report", PARTNERS_ONLY),
    "outcomes.partner_report_csv": ("GET", "/partner/report.csv", PARTNERS_ONLY),
    "outcomes.partner_report_pdf": ("GET", "/partner/report.pdf", PARTNERS_ONLY),
    "outcomes.organization_report": ("GET", "/staff/reports/organizations/{org_b}", STAFF_ONLY),
    "outcomes.organization_report_csv": ("GET", "/staff/reports/organizations/{org_b}.csv", STAFF_ONLY),
    "outcomes.organization_report_pdf": ("GET", "/staff/reports/organizations/{org_b}.pdf", STAFF_ONLY),
    "outcomes.analytics_page": ("GET", "/staff/analytics", STAFF_ONLY),
    "outcomes.analytics_csv": ("GET", "/staff/analytics.csv", STAFF_ONLY),
    # Success stories: staff write; every partner reads a published story whose consent is in effect.
    "stories.index": ("GET", "/staff/stories", STAFF_ONLY),
    "stories.new": ("GET", "/staff/patients/{patient_b}/stories/new", STAFF_ONLY),
    "stories.edit": ("GET", "/staff/stories/{story_b}", STAFF_ONLY),
    "stories.publish": ("POST", "/staff/stories/{story_b}/publish", {**STAFF_ONLY, "staff": 302, "admin": 302}),
    "stories.withdraw": ("POST", "/staff/stories/{story_b}/withdraw", STAFF_FORM),  # a draft: nothing to withdraw
    "stories.browse": ("GET", "/partner/stories", PARTNERS_ONLY),
    "stories.read": ("GET", "/partner/stories/{published_story}", PARTNERS_ONLY),
    # FHIR API (issue 9): discovery is public; resources need a bearer token, so a session (any role) is a 401.
    # Organization A's client getting 404 for organization B's resources: tests/api/test_access.py.
    "api_clients.index": ("GET", "/admin/api-clients", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "api_clients.detail": ("GET", "/admin/api-clients/{api_client_b}", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "fhir.smart_configuration": ("GET", "/.well-known/smart-configuration", {"*": 200}),
    "fhir.metadata": ("GET", "/fhir/metadata", {"*": 200}),
    "fhir.openapi": ("GET", "/fhir/openapi.json", {"*": 200}),
    "fhir.token": ("POST", "/fhir/auth/token", {"*": 400}),  # no grant: an OAuth 2 error, sessions count for nothing
    "fhir.transaction": ("POST", "/fhir", BEARER),
    "fhir.read_task": ("GET", "/fhir/Task/{referral_b}", BEARER),
    "fhir.read_service_request": ("GET", "/fhir/ServiceRequest/{referral_b}", BEARER),
    "fhir.read_observation": ("GET", "/fhir/Observation/{score_b}", BEARER),
    "fhir.read_document_reference": ("GET", "/fhir/DocumentReference/{update_b}", BEARER),
    "fhir.read_consent": ("GET", "/fhir/Consent/{consent_b}", BEARER),
    "fhir.search_tasks": ("GET", "/fhir/Task", BEARER),
    "fhir.search_observations": ("GET", "/fhir/Observation", BEARER),
    "fhir.search_document_references": ("GET", "/fhir/DocumentReference", BEARER),
    "fhir.search_consents": ("GET", "/fhir/Consent", BEARER),
    # FHIR API (issue 16): patients and the parties of a referral, subscriptions. Organization B's ids for
    # organization A's client are 404s: tests/api/test_access.py.
    "fhir.read_patient": ("GET", "/fhir/Patient/{patient_b}", BEARER),
    "fhir.search_patients": ("GET", "/fhir/Patient", BEARER),
    "fhir.read_organization": ("GET", "/fhir/Organization/{org_b}", BEARER),
    "fhir.read_practitioner": ("GET", "/fhir/Practitioner/{user_b}", BEARER),
    "fhir.read_practitioner_role": ("GET", "/fhir/PractitionerRole/{user_b}", BEARER),
    "fhir.create_subscription": ("POST", "/fhir/Subscription", BEARER),
    "fhir.search_subscriptions": ("GET", "/fhir/Subscription", BEARER),
    "fhir.read_subscription": ("GET", "/fhir/Subscription/00000000-0000-4000-8000-000000000000", BEARER),
    "fhir.delete_subscription": ("DELETE", "/fhir/Subscription/00000000-0000-4000-8000-000000000000", BEARER),
    "fhir.subscription_status": ("GET", "/fhir/Subscription/00000000-0000-4000-8000-000000000000/$status", BEARER),
    # Patients give their own consent (issue 20). Staff ask and follow; admins edit the wording.
    "econsent.new_request": ("GET", "/staff/patients/{patient_b}/consent-requests/new", STAFF_ONLY),
    "econsent.open_requests": ("GET", "/staff/consent-requests", STAFF_ONLY),
    "econsent.detail": ("GET", "/staff/consent-requests/{consent_request_b}", STAFF_ONLY),
    "econsent.resend": ("POST", "/staff/consent-requests/{consent_request_b}/resend", STAFF_FORM),
    "econsent.kiosk": ("POST", "/staff/consent-requests/{consent_request_b}/kiosk", STAFF_FORM),  # not ticked
    "econsent.cancel": (
        "POST",
        "/staff/consent-requests/{consent_request_b}/cancel",
        {**STAFF_ONLY, "staff": 302, "admin": 302},
    ),
    "econsent.copy": (
        "GET",
        "/staff/consent-requests/{consent_request_b}/copy",
        {**STAFF_ONLY, "staff": 404, "admin": 404},  # not signed yet: no copy
    ),
    "econsent.texts": ("GET", "/admin/consent-texts", {"anonymous": LOGIN, "admin": 200, "*": 403}),
    "econsent.edit_text": (
        "GET",
        "/admin/consent-texts/progress_updates/es",
        {"anonymous": LOGIN, "admin": 200, "*": 403},
    ),
    # The patient's pages: public, reached only through a link held in the session. Without one (or with a
    # forged token) every page is a 404, whoever is signed in; tests/econsent/test_links.py walks a real link
    # and checks that it never opens another request.
    "patient_consent.open_link": ("GET", "/my-consent/open?t=forged", {"*": 404}),
    "patient_consent.identity": ("GET", "/my-consent/confirm", {"*": 404}),
    "patient_consent.sign": ("GET", "/my-consent/sign", {"*": 404}),
    "patient_consent.done": ("GET", "/my-consent/done", {"*": 404}),
    "patient_consent.copy": ("GET", "/my-consent/copy.pdf", {"*": 404}),
    "patient_consent.manage": ("GET", "/my-consent/manage", {"*": 404}),
    "patient_consent.language": ("POST", "/my-consent/language", {"*": 404}),
    "patient_consent.finish": ("POST", "/my-consent/finish", {"*": 200}),
}


def test_every_route_is_in_the_matrix(app):
    assert sorted(set(app.view_functions) - set(MATRIX)) == [], "add new routes to MATRIX"
    assert sorted(set(MATRIX) - set(app.view_functions)) == [], "MATRIX names a route that is gone"


@pytest.fixture
def world(db, org_a, org_b):
    """Objects of both organizations, and one user per role."""
    users = {
        "partner_a": factories.make_user(Role.PARTNER, org_a),
        "partner_b": factories.make_user(Role.PARTNER, org_b),
        "partner_admin_a": factories.make_user(Role.PARTNER_ADMIN, org_a),
        "staff": factories.make_user(Role.STAFF),
        "admin": factories.make_user(Role.ADMIN),
    }
    referral_b = factories.make_referral(org_b, users["partner_b"])
    ids = {
        "org_b": org_b.public_id,
        "user_b": factories.make_user(Role.PARTNER, org_b).public_id,
        "referral_b": referral_b.public_id,
        "attachment_b": factories.make_attachment(referral_b).public_id,
        "license": _license().public_id,
        "patient_b": referral_b.patient.public_id,
        "consent_b": _consent(referral_b).public_id,
        "update_b": _update(referral_b).public_id,
        **_learning(users["partner_b"]),
        **_outcomes(referral_b, users["staff"]),
        "api_client_b": _api_client(org_b, users["admin"]).public_id,
        "consent_request_b": _consent_request(referral_b, users["staff"]).public_id,
    }
    return users, ids


def _consent(referral):
    from datetime import date

    from portal.consent.models import Method
    from tests.consent.helpers import add_consent

    return add_consent(referral, method=Method.SIGNED_FORM, start=date(2020, 1, 1), document=factories.PDF_BYTES)


def _consent_request(referral, staff):
    from portal.econsent import services
    from portal.econsent.models import Channel, Language, Topic
    from portal.partners.models import Organization

    request, _ = services.create_request(
        staff,
        referral.patient,
        organization=db.session.get(Organization, referral.organization_id),
        clinician=None,
        topics=[Topic.PROGRESS_UPDATES],
        consent_expires_on=None,
        channel=Channel.QR,
        language=Language.ENGLISH,
    )
    return request


def _update(referral):
    from datetime import date

    from portal.progress.models import UpdateState
    from tests.consent.helpers import add_update

    return add_update(
        referral, referral.clinician, UpdateState.PENDING, body="Walking without a cane.", visit_date=date(2026, 1, 5)
    )


def _outcomes(referral, staff):
    """A score on organization B's episode; a draft and a published story of its patient (publication consented)."""
    from datetime import date

    from portal.consent.models import Category
    from portal.outcomes.models import Phase
    from portal.stories.models import Condition, Story, StoryState
    from tests.consent.helpers import add_consent
    from tests.outcomes.helpers import add_score, instrument

    score = add_score(referral, "ODI", Phase.INTAKE, 40, on=date(2026, 1, 5), recorder=staff)
    add_consent(referral, categories=(Category.STORY_PUBLICATION,))
    stories = []
    for state in (StoryState.DRAFT, StoryState.PUBLISHED):
        story = Story(
            patient_id=referral.patient_id,
            author_id=staff.id,
            condition=Condition.KNEE,
            state=state,
            published_at=now_utc() if state is StoryState.PUBLISHED else None,
        )
        story.title, story.highlight, story.body_markdown = "Back on the trail", "LEFS 31 -> 68", "Hiking again."
        stories.append(story)
    db.session.add_all([score, *stories])
    db.session.flush()
    return {
        "instrument": instrument("ODI").public_id,
        "score_b": score.public_id,
        "story_b": stories[0].public_id,
        "published_story": stories[1].public_id,
    }


def _learning(partner):
    """A published event with organization B's RSVP, and a published resource."""
    from datetime import timedelta

    from portal.core.time import now_utc
    from portal.relationships.models import Event, EventKind, Resource, Rsvp, RsvpResponse

    event = Event(title="Webinar", kind=EventKind.WEBINAR, starts_at=now_utc() + timedelta(days=7), is_published=True)
    resource = Resource(
        title="Handout", filename="h.pdf", content_type="application/pdf", size=9, data=b"%PDF-1.4\n", is_published=True
    )
    db.session.add_all([event, resource])
    db.session.flush()
    rsvp = Rsvp(
        event_id=event.id, user_id=partner.id, organization_id=partner.organization_id, response=RsvpResponse.GOING
    )
    db.session.add(rsvp)
    db.session.flush()
    return {"event": event.public_id, "resource": resource.public_id, "rsvp_b": rsvp.public_id}


def _api_client(organization, admin):
    from tests.api.helpers import make_client

    return make_client(organization, admin=admin)


def _license():
    from datetime import date

    from portal.referrals.models import LicenseKind, PracticeLicense

    license_ = PracticeLicense(us_state="WI", kind=LicenseKind.HOME, effective_on=date(2020, 1, 1))
    db.session.add(license_)
    db.session.flush()
    return license_


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_access(client, world, endpoint, role):
    users, ids = world
    method, path, expected = MATRIX[endpoint]
    want = expected.get(role, expected["*"])
    if role != "anonymous":
        assert sign_in(client, users[role].email).status_code == 302
    response = client.open(path.format(**ids), method=method)
    if want == LOGIN:
        assert response.status_code == 302
        assert response.headers["Location"].endswith("/auth/login")
    else:
        assert response.status_code == want, f"{role} {method} {path}"
