"""Practice admins: reset a user's second factor (a lost phone), set an organization's policy."""

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.mfa.models import RecoveryCode, TotpCredential, TrustedDevice
from portal.mfa.services import _replace_recovery_codes
from tests import factories
from tests.conftest import sign_in
from tests.mfa.conftest import password_step


def test_admin_resets_a_lost_phone(client, app, db, outbox):
    staff = factories.make_user("staff", full_name="Sam Lostphone")
    _replace_recovery_codes(staff)
    staff_client = app.test_client()
    password_step(staff_client, staff)
    staff_client.post("/auth/mfa/verify", data={"code": factories.next_totp_code(staff), "remember": "y"})
    admin = factories.make_user("admin")
    sign_in(client, admin.email)
    users_page = client.get("/admin/users").data
    assert f"/admin/users/{staff.public_id}/reset-mfa".encode() in users_page
    response = client.post(f"/admin/users/{staff.public_id}/reset-mfa", follow_redirects=True)
    assert b"Sam Lostphone was reset" in response.data
    for model in (TotpCredential, RecoveryCode):
        assert db.session.scalars(select(model).where(model.user_id == staff.id)).all() == []
    assert all(d.revoked_at for d in db.session.scalars(select(TrustedDevice).where(TrustedDevice.user_id == staff.id)))
    assert staff_client.get("/staff/").headers["Location"].endswith("/auth/login")  # signed out
    assert [m.template for m in outbox(staff.email)] == ["mfa_reset"]
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.mfa_reset"))
    assert event.actor_id == admin.id and event.object_id == str(staff.public_id)
    # The remembered browser no longer helps: the next sign-in sets up a new app.
    assert password_step(staff_client, staff).headers["Location"].endswith("/auth/mfa/setup")


def test_admin_cannot_reset_their_own(client, db):
    admin = factories.make_user("admin")
    sign_in(client, admin.email)
    response = client.post(f"/admin/users/{admin.public_id}/reset-mfa", follow_redirects=True)
    assert b"use your account page" in response.data
    assert db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == admin.id)) is not None


def test_reset_button_only_for_users_with_a_second_factor(client, db, org_a):
    with_app = factories.make_user("partner", org_a, mfa=True)
    without = factories.make_user("partner", org_a)
    sign_in(client, factories.make_user("admin").email)
    page = client.get(f"/admin/organizations/{org_a.public_id}").data
    assert f"/admin/users/{with_app.public_id}/reset-mfa".encode() in page
    assert f"/admin/users/{without.public_id}/reset-mfa".encode() not in page


def test_admin_sets_an_organizations_sign_in_policy(client, db, org_a):
    admin = factories.make_user("admin")
    sign_in(client, admin.email)
    page = client.get(f"/admin/organizations/{org_a.public_id}").data
    assert b"Sign-in policy" in page and b"Single sign-on" in page
    client.post(f"/admin/organizations/{org_a.public_id}/sign-in-policy", data={"is_mfa_required": "y"})
    assert org_a.is_mfa_required and not org_a.is_device_trust_allowed
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "organization.sign_in_policy_changed"))
    assert event.actor_id == admin.id and event.detail == {"mfa_required": "True", "device_trust_allowed": "False"}
