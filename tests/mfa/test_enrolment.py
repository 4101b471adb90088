"""Setting up the second factor: forced after the password step, or from the account page;
replacing it, new recovery codes, turning it off. Every change ends other sessions."""

import base64
import re

from sqlalchemy import select

from portal.accounts.models import UserSession
from portal.mfa import totp
from portal.mfa.models import RecoveryCode, TotpCredential
from portal.mfa.services import recovery_digest
from tests import factories
from tests.conftest import sign_in
from tests.mfa.conftest import password_step

KEY = re.compile(rb'class="secret-key">([A-Z2-7 ]+)<')


def _key(page) -> bytes:
    return base64.b32decode(KEY.search(page.data).group(1).replace(b" ", b""))


def _code(secret: bytes, offset: int = 0) -> str:
    return totp.code_at(secret, totp.time_step() + offset)


def _codes(page) -> list[str]:
    return re.findall(r"<li>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</li>", page.data.decode())


def test_staff_without_a_second_factor_must_set_one_up_before_anything(client, db, outbox):
    staff = factories.make_user("staff", mfa=False)
    response = password_step(client, staff)
    assert response.headers["Location"].endswith("/auth/mfa/setup")
    assert client.get("/staff/").headers["Location"].endswith("/auth/login")  # still signed out
    page = client.get("/auth/mfa/setup")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert b'<img class="qr" src="data:image/svg+xml' in page.data
    secret = _key(page)
    assert _key(client.get("/auth/mfa/setup")) == secret  # a reload shows the same key
    assert client.post("/auth/mfa/setup", data={"code": _code(secret, 5)}).status_code == 422
    done = client.post("/auth/mfa/setup", data={"code": _code(secret)})
    assert done.status_code == 200 and b"Save your recovery codes" in done.data
    codes = _codes(done)
    assert len(codes) == 10
    assert client.get("/staff/").status_code == 200
    record = db.session.scalar(select(UserSession).where(UserSession.user_id == staff.id))
    assert record.auth_method == "password+totp"
    stored = set(db.session.scalars(select(RecoveryCode.code_digest).where(RecoveryCode.user_id == staff.id)))
    assert stored == {recovery_digest(c) for c in codes}
    assert [(m.template, m.context["change"]) for m in outbox(staff.email)] == [("mfa_changed", "enrolled")]


def test_the_secret_is_stored_encrypted(client, db):
    staff = factories.make_user("staff", mfa=False)
    password_step(client, staff)
    secret = _key(client.get("/auth/mfa/setup"))
    raw = db.session.execute(
        select(TotpCredential.__table__.c.secret_ct).where(TotpCredential.user_id == staff.id)
    ).scalar_one()
    assert secret not in raw and totp.to_base32(secret).encode() not in raw and len(raw) > len(secret)


def test_an_organization_can_require_it_of_partners(client, db, org_a):
    org_a.is_mfa_required = True
    partner = factories.make_user("partner", org_a)
    assert password_step(client, partner).headers["Location"].endswith("/auth/mfa/setup")


def test_a_signed_in_user_who_now_owes_a_second_factor_reaches_only_its_set_up(client, app, db, org_a):
    partner = factories.make_user("partner", org_a)
    sign_in(client, partner.email)
    assert client.get("/partner/").status_code == 200
    admin_client = app.test_client()
    sign_in(admin_client, factories.make_user("admin").email)
    admin_client.post(f"/admin/organizations/{org_a.public_id}/sign-in-policy", data={"is_mfa_required": "y"})
    assert org_a.is_mfa_required
    for path in ("/partner/", "/auth/account"):
        assert client.get(path).headers["Location"].endswith("/auth/mfa/enrol"), path
    page = client.get("/auth/mfa/enrol")
    assert page.status_code == 200
    done = client.post("/auth/mfa/enrol", data={"code": _code(_key(page)), "password": factories.PASSWORD})
    assert done.status_code == 200 and len(_codes(done)) == 10
    assert client.get("/partner/").status_code == 200


def test_enrolling_from_the_account_page_needs_the_password_and_ends_other_sessions(client, app, db, org_a, outbox):
    partner = factories.make_user("partner", org_a)
    sign_in(client, partner.email)
    elsewhere = app.test_client()
    sign_in(elsewhere, partner.email)
    secret = _key(client.get("/auth/mfa/enrol"))
    wrong = client.post("/auth/mfa/enrol", data={"code": _code(secret), "password": "not my password at all"})
    assert wrong.status_code == 422 and b"not your current password" in wrong.data
    done = client.post("/auth/mfa/enrol", data={"code": _code(secret), "password": factories.PASSWORD})
    assert done.status_code == 200
    assert client.get("/partner/").status_code == 200
    assert elsewhere.get("/partner/").headers["Location"].endswith("/auth/login")
    client.post("/auth/logout")
    assert password_step(client, partner).headers["Location"].endswith("/auth/mfa/verify")


def test_replacing_the_app_retires_the_old_secret(client, app, db, outbox):
    staff = factories.make_user("staff")
    old = db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == staff.id)).secret
    sign_in(client, staff.email)
    page = client.get("/auth/mfa/enrol")
    assert b"Set up a new authenticator app" in page.data
    new = _key(page)
    assert client.post("/auth/mfa/enrol", data={"code": _code(new), "password": factories.PASSWORD}).status_code == 200
    credentials = db.session.scalars(select(TotpCredential).where(TotpCredential.user_id == staff.id)).all()
    assert [c.secret for c in credentials] == [new]
    other = app.test_client()
    password_step(other, staff)
    assert other.post("/auth/mfa/verify", data={"code": _code(old, 1)}).status_code == 401
    assert outbox(staff.email)[-1].context["change"] == "replaced"


def test_new_recovery_codes_replace_the_old_ones(client, db, outbox):
    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    refused = client.post("/auth/mfa/recovery-codes", data={"codes-password": "wrong password here"})
    assert refused.status_code == 302
    first = _codes(client.post("/auth/mfa/recovery-codes", data={"codes-password": factories.PASSWORD}))
    second = _codes(client.post("/auth/mfa/recovery-codes", data={"codes-password": factories.PASSWORD}))
    assert len(first) == len(second) == 10 and not set(first) & set(second)
    stored = set(db.session.scalars(select(RecoveryCode.code_digest).where(RecoveryCode.user_id == staff.id)))
    assert stored == {recovery_digest(c) for c in second}
    assert client.get("/staff/").status_code == 200  # this browser stays signed in
    assert outbox(staff.email)[-1].context["change"] == "recovery_codes_replaced"


def test_a_partner_may_turn_it_off_staff_may_not(client, app, db, org_a, outbox):
    partner = factories.make_user("partner", org_a, mfa=True)
    sign_in(client, partner.email)
    client.post("/auth/mfa/disable", data={"off-password": factories.PASSWORD})
    assert db.session.scalars(select(TotpCredential).where(TotpCredential.user_id == partner.id)).all() == []
    assert outbox(partner.email)[-1].context["change"] == "turned_off"
    assert client.get("/partner/").status_code == 200
    staff = factories.make_user("staff")
    staff_client = app.test_client()
    sign_in(staff_client, staff.email)
    response = staff_client.post("/auth/mfa/disable", data={"off-password": factories.PASSWORD}, follow_redirects=True)
    assert b"required for your account" in response.data
    assert db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == staff.id)) is not None
