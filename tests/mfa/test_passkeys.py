"""Passkeys (WebAuthn): adding from the account page, signing in with one at the second step, the
counter and challenge rules, naming and removing, the required set-up, and where they are required.

A software authenticator (tests/mfa/authenticator.py) answers the portal's options; Chromium's
virtual authenticator does the same in tests/browser/test_passkeys.py."""

from datetime import timedelta

import pytest
from sqlalchemy import select
from webauthn.helpers import bytes_to_base64url

from portal.accounts.models import UserSession
from portal.audit.models import AuditEvent
from portal.mfa.models import PasskeyRequirement, RecoveryCode, TotpCredential, WebauthnCredential
from portal.mfa.services import users_with_second_factor
from tests import factories
from tests.conftest import sign_in
from tests.mfa.authenticator import SoftAuthenticator
from tests.mfa.conftest import password_step

REGISTER_OPTIONS = "/auth/mfa/passkeys/options"
REGISTER = "/auth/mfa/passkeys"
SIGN_IN_OPTIONS = "/auth/mfa/passkey/options"
SIGN_IN = "/auth/mfa/passkey/verify"


@pytest.fixture
def authenticator(app):
    return SoftAuthenticator.for_app(app)


def add_passkey(client, authenticator, name="Work laptop", password=factories.PASSWORD):
    """The account page's two requests; returns the second answer."""
    options = client.post(REGISTER_OPTIONS, json={"name": name, "password": password})
    assert options.status_code == 200, options.json
    return client.post(REGISTER, json={"credential": authenticator.create(options.json)})


def passkey_step(client, authenticator, *, remember=False, **kwargs):
    """The second sign-in step by passkey (after password_step); returns the answer to the signature."""
    options = client.post(SIGN_IN_OPTIONS)
    assert options.status_code == 200, options.json
    return client.post(SIGN_IN, json={"credential": authenticator.get(options.json, **kwargs), "remember": remember})


def _keys(db, user):
    return db.session.scalars(select(WebauthnCredential).where(WebauthnCredential.user_id == user.id)).all()


def _events(db, action):
    return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def _session_methods(db, user):
    return [
        s.auth_method
        for s in db.session.scalars(
            select(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        )
    ]


def enrolled(db, user, authenticator, name="Desk key"):
    """A passkey registered directly (as a finished registration leaves it)."""
    credential = WebauthnCredential(
        user_id=user.id,
        credential_id=authenticator.credential_id,
        public_key=authenticator._cose_key(),
        sign_count=authenticator.sign_count,
        transports="internal",
        name=name,
    )
    db.session.add(credential)
    db.session.flush()
    return credential


# --- adding -----------------------------------------------------------------------------------


def test_adding_a_passkey_from_the_account_page(client, app, db, outbox, authenticator):
    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    elsewhere = app.test_client()
    sign_in(elsewhere, staff.email)
    page = client.get("/auth/account")
    assert b'id="passkeys-h"' in page.data and b"No passkeys yet." in page.data
    assert b"js/passkeys.js" in page.data and b"data-passkey-register" in page.data

    options = client.post(REGISTER_OPTIONS, json={"name": "  Work   laptop ", "password": factories.PASSWORD})
    assert options.status_code == 200
    public_key = options.json["publicKey"]
    assert public_key["rp"]["id"] == authenticator.rp_id and public_key["user"]["name"] == staff.email
    assert public_key["authenticatorSelection"] == {
        "residentKey": "preferred",
        "requireResidentKey": False,
        "userVerification": "preferred",
    }
    assert public_key["attestation"] == "none" and public_key["excludeCredentials"] == []
    done = client.post(REGISTER, json={"credential": authenticator.create(options.json)})
    assert done.status_code == 200 and done.json["recovery_codes"] is None  # the app's codes stay valid
    assert done.json["redirect"].startswith("/auth/account")

    (key,) = _keys(db, staff)
    assert key.credential_id == authenticator.credential_id and key.name == "Work laptop"
    assert key.sign_count == 0 and key.transports == "hybrid internal" and key.last_used_at is None
    assert _events(db, "auth.passkey_added")[-1].object_id == str(key.public_id)
    assert outbox(staff.email)[-1].template == "mfa_changed"
    assert outbox(staff.email)[-1].context["change"] == "passkey_added"
    assert client.get("/staff/").status_code == 200  # this browser has a fresh session
    assert elsewhere.get("/staff/").headers["Location"].endswith("/auth/login")  # others ended
    page = client.get("/auth/account")
    assert b"Work laptop" in page.data and b"Not yet" in page.data
    # The next registration excludes it, so one authenticator is not registered twice.
    again = client.post(REGISTER_OPTIONS, json={"name": "Other", "password": factories.PASSWORD}).json
    assert [c["id"] for c in again["publicKey"]["excludeCredentials"]] == [bytes_to_base64url(key.credential_id)]


def test_adding_needs_the_password_and_a_name(client, db, authenticator):
    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    wrong = client.post(REGISTER_OPTIONS, json={"name": "Key", "password": "not my password"})
    assert wrong.status_code == 422
    assert wrong.json == {"error": "That is not your current password.", "field": "password"}
    for name in ("", "   ", "x" * 65, "tab\tname\u0007"):
        refused = client.post(REGISTER_OPTIONS, json={"name": name, "password": factories.PASSWORD})
        assert refused.status_code == 422 and refused.json["field"] == "name", name
    assert client.post(REGISTER, json={"credential": authenticator.create({"challenge": "AAAA"})}).status_code == 422
    assert _keys(db, staff) == []


def test_bad_answers_are_4xx_with_a_message_never_a_500(client, db, authenticator):
    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    assert client.post(REGISTER, data="not json", content_type="application/json").status_code == 400
    assert client.post(REGISTER, json=["a", "list"]).json == {
        "error": "The request could not be read. Please reload the page and try again."
    }
    # No challenge waiting: nothing asked, or already answered.
    assert client.post(REGISTER, json={"credential": {}}).status_code == 422
    cases = [
        {"credential": "garbage"},
        {"credential": {"id": "x", "rawId": "%%%", "type": "public-key", "response": {}}},
        {"credential": authenticator.create({"challenge": "c29tZXRoaW5nIGVsc2U"})},  # another challenge
    ]
    for body in cases:
        client.post(REGISTER_OPTIONS, json={"name": "Key", "password": factories.PASSWORD})
        answer = client.post(REGISTER, json=body)
        assert answer.status_code == 422 and "could not be checked" in answer.json["error"], body
    options = client.post(REGISTER_OPTIONS, json={"name": "Key", "password": factories.PASSWORD}).json
    phished = client.post(REGISTER, json={"credential": authenticator.create(options, origin="https://evil.example")})
    assert phished.status_code == 422
    options = client.post(REGISTER_OPTIONS, json={"name": "Key", "password": factories.PASSWORD}).json
    other_site = client.post(REGISTER, json={"credential": authenticator.create(options, rp_id="evil.example")})
    assert other_site.status_code == 422
    assert _keys(db, staff) == []


def test_an_answer_counts_once_and_a_key_registers_once(client, db, authenticator):
    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    options = client.post(REGISTER_OPTIONS, json={"name": "Key", "password": factories.PASSWORD}).json
    answer = authenticator.create(options)
    assert client.post(REGISTER, json={"credential": answer}).status_code == 200
    replayed = client.post(REGISTER, json={"credential": answer})
    assert replayed.status_code == 422 and "expired or was already answered" in replayed.json["error"]
    # The same authenticator credential under a fresh challenge (the browser's exclude list ignored).
    options = client.post(REGISTER_OPTIONS, json={"name": "Again", "password": factories.PASSWORD}).json
    twice = client.post(REGISTER, json={"credential": authenticator.create(options)})
    assert twice.status_code == 409 and twice.json["error"] == "That passkey is registered already."
    assert len(_keys(db, staff)) == 1


def test_a_challenge_expires(client, db, authenticator, monkeypatch):
    from portal.mfa import passkeys

    staff = factories.make_user("staff")
    sign_in(client, staff.email)
    monkeypatch.setattr(passkeys, "CHALLENGE_SECONDS", -1)
    options = client.post(REGISTER_OPTIONS, json={"name": "Key", "password": factories.PASSWORD}).json
    assert client.post(REGISTER, json={"credential": authenticator.create(options)}).status_code == 422


def test_a_first_passkey_turns_two_step_on_with_recovery_codes(client, db, org_a, outbox, authenticator):
    partner = factories.make_user("partner", org_a)
    sign_in(client, partner.email)
    done = add_passkey(client, authenticator)
    codes = done.json["recovery_codes"]
    assert done.status_code == 200 and len(codes) == 10 and len(set(codes)) == 10
    assert db.session.scalar(select(RecoveryCode.id).where(RecoveryCode.user_id == partner.id)) is not None
    assert users_with_second_factor([partner]) == {partner.id}
    assert outbox(partner.email)[-1].context["change"] == "passkey_added"
    client.post("/auth/logout")
    assert password_step(client, partner).headers["Location"].endswith("/auth/mfa/verify")
    page = client.get("/auth/mfa/verify")
    assert b"Use a passkey" in page.data and b"Recovery code" in page.data  # no app: codes are for a lost passkey
    # A recovery code still signs in.
    assert client.post("/auth/mfa/verify", data={"code": codes[0]}).headers["Location"] == "/auth/account"


# --- signing in -------------------------------------------------------------------------------


def test_signing_in_with_a_passkey(client, db, authenticator):
    staff = factories.make_user("staff")
    key = enrolled(db, staff, authenticator)
    password_step(client, staff)
    page = client.get("/auth/mfa/verify")
    assert b"Use a passkey" in page.data and b"data-passkey-sign-in" in page.data and b"js/passkeys.js" in page.data
    assert b"Verification code" in page.data  # the app's codes work too
    options = client.post(SIGN_IN_OPTIONS).json["publicKey"]
    assert options["rpId"] == authenticator.rp_id and options["userVerification"] == "preferred"
    assert options["allowCredentials"] == [
        {"id": bytes_to_base64url(authenticator.credential_id), "type": "public-key", "transports": ["internal"]}
    ]
    done = passkey_step(client, authenticator)
    assert done.status_code == 200 and done.json == {"redirect": "/"}
    assert client.get("/staff/").status_code == 200
    assert _session_methods(db, staff) == ["password+passkey"]
    db.session.refresh(key)
    assert key.sign_count == authenticator.sign_count == 1 and key.last_used_at is not None
    login = _events(db, "auth.login")[-1]
    assert login.actor_id == staff.id and login.detail == {"method": "password+passkey"}
    assert b"Password + passkey" in client.get("/auth/account").data


def test_remembering_the_browser_after_a_passkey(client, db, org_a, authenticator):
    partner = factories.make_user("partner", org_a)
    enrolled(db, partner, authenticator)
    password_step(client, partner)
    done = passkey_step(client, authenticator, remember=True)
    assert done.status_code == 200 and "portal_device=" in done.headers["Set-Cookie"]
    client.post("/auth/logout")
    assert password_step(client, partner).headers["Location"] == "/"


def test_an_authenticator_without_a_counter_works_every_time(client, app, db, org_a):
    synced = SoftAuthenticator.for_app(app, counts=False)
    partner = factories.make_user("partner", org_a)
    enrolled(db, partner, synced)
    for _ in range(2):
        password_step(client, partner)
        assert passkey_step(client, synced).status_code == 200
        client.post("/auth/logout")


def test_a_counter_that_goes_backwards_is_refused_and_audited(client, db, authenticator):
    staff = factories.make_user("staff")
    key = enrolled(db, staff, authenticator)
    key.sign_count = 41
    db.session.flush()
    password_step(client, staff)
    refused = passkey_step(client, authenticator, sign_count=40)
    assert refused.status_code == 401 and "went backwards" in refused.json["error"]
    assert _session_methods(db, staff) == []
    event = _events(db, "auth.mfa_failed")[-1]
    assert event.detail == {"kind": "passkey", "reason": "counter_regressed", "credential": str(key.public_id)}
    assert staff.mfa_failures == 1
    db.session.refresh(key)
    assert key.sign_count == 41 and key.last_used_at is None
    equal = passkey_step(client, authenticator, sign_count=41)
    assert equal.status_code == 401 and _events(db, "auth.mfa_failed")[-1].detail["reason"] == "counter_regressed"


def test_a_replayed_answer_signs_nobody_in(client, app, db, authenticator):
    """Someone who copied the browser's cookie (with its challenge) and its answer gets nothing."""
    staff = factories.make_user("staff")
    enrolled(db, staff, authenticator)
    password_step(client, staff)
    options = client.post(SIGN_IN_OPTIONS).json
    with client.session_transaction() as stolen:
        cookie = dict(stolen)
    answer = authenticator.get(options)
    assert client.post(SIGN_IN, json={"credential": answer}).status_code == 200
    # The same browser: its challenge is spent.
    again = client.post(SIGN_IN, json={"credential": answer})
    assert again.status_code == 401 and again.json["redirect"] == "/auth/login"  # signed in already: no pending step
    # Another browser with the copied cookie: the credential was used after that challenge was issued.
    thief = app.test_client()
    with thief.session_transaction() as session:
        session.update(cookie)
    replayed = thief.post(SIGN_IN, json={"credential": answer})
    assert replayed.status_code == 401
    assert _events(db, "auth.mfa_failed")[-1].detail["reason"] == "replayed"
    assert len(_session_methods(db, staff)) == 1


def test_a_synced_passkey_replayed_is_refused_too(client, app, db, org_a):
    """No counter to catch it: the time of last use does."""
    synced = SoftAuthenticator.for_app(app, counts=False)
    partner = factories.make_user("partner", org_a)
    enrolled(db, partner, synced)
    password_step(client, partner)
    options = client.post(SIGN_IN_OPTIONS).json
    with client.session_transaction() as stolen:
        cookie = dict(stolen)
    answer = synced.get(options)
    assert client.post(SIGN_IN, json={"credential": answer}).status_code == 200
    thief = app.test_client()
    with thief.session_transaction() as session:
        session.update(cookie)
    replayed = thief.post(SIGN_IN, json={"credential": answer})
    assert replayed.status_code == 401 and _events(db, "auth.mfa_failed")[-1].detail["reason"] == "replayed"


def test_unknown_and_forged_answers_are_counted_failures(client, app, db, authenticator):
    staff = factories.make_user("staff")
    enrolled(db, staff, authenticator)
    stranger = SoftAuthenticator.for_app(app)
    password_step(client, staff)
    unknown = passkey_step(client, stranger)
    assert unknown.status_code == 401 and "not registered to this account" in unknown.json["error"]
    forged = client.post(SIGN_IN_OPTIONS).json
    answer = authenticator.get(forged)
    answer["response"]["signature"] = stranger.get(forged)["response"]["signature"]
    bad = client.post(SIGN_IN, json={"credential": answer})
    assert bad.status_code == 401 and "could not be verified" in bad.json["error"]
    phished = passkey_step(client, authenticator, origin="https://riverbend-pt.example.evil")
    assert phished.status_code == 401
    assert [e.detail["reason"] for e in _events(db, "auth.mfa_failed")] == [
        "unknown_credential",
        "bad_signature",
        "bad_signature",
    ]
    assert staff.mfa_failures == 3 and _session_methods(db, staff) == []
    # Unreadable input and a missing challenge are refusals too, not counted (nothing was tried).
    assert client.post(SIGN_IN, json={"credential": "junk"}).status_code == 422  # no challenge waiting
    client.post(SIGN_IN_OPTIONS)
    assert client.post(SIGN_IN, json={"credential": {"id": 1}}).status_code == 422
    assert client.post(SIGN_IN, data="{", content_type="application/json").status_code == 400
    assert staff.mfa_failures == 3


def test_the_account_the_passkey_was_made_for_must_be_this_one(client, db, authenticator):
    import uuid

    staff = factories.make_user("staff")
    enrolled(db, staff, authenticator)
    password_step(client, staff)
    other = passkey_step(client, authenticator, user_handle=uuid.uuid4().bytes)
    assert other.status_code == 401 and _events(db, "auth.mfa_failed")[-1].detail["reason"] == "other_account"
    assert passkey_step(client, authenticator, user_handle=staff.public_id.bytes).status_code == 200


def test_too_many_failures_lock_the_account(client, app, db):
    staff = factories.make_user("staff")
    enrolled(db, staff, SoftAuthenticator.for_app(app))
    stranger = SoftAuthenticator.for_app(app)
    password_step(client, staff)
    for _ in range(app.config["MFA_MAX_FAILURES"] - 1):
        assert passkey_step(client, stranger).status_code == 401
    locked = passkey_step(client, stranger)
    assert locked.status_code == 401 and locked.json["redirect"] == "/auth/login"
    assert "locked" in locked.json["error"] and staff.is_locked
    assert _events(db, "auth.lockout")


def test_the_passkey_step_needs_a_half_finished_sign_in(client, db, authenticator):
    for path in (SIGN_IN_OPTIONS, SIGN_IN):
        answer = client.post(path, json={})
        assert answer.status_code == 401
        assert answer.json == {"error": "Please sign in again.", "redirect": "/auth/login"}
    staff = factories.make_user("staff")  # an app, no passkey
    password_step(client, staff)
    none = client.post(SIGN_IN_OPTIONS)
    assert none.status_code == 422 and "No passkey" in none.json["error"]
    assert b"Use a passkey" not in client.get("/auth/mfa/verify").data


# --- naming and removing ----------------------------------------------------------------------


def test_renaming_and_removing_a_passkey(client, app, db, outbox, authenticator):
    staff = factories.make_user("staff")
    first = enrolled(db, staff, authenticator, name="Old laptop")
    second = enrolled(db, staff, SoftAuthenticator.for_app(app), name="Phone")
    sign_in(client, staff.email)
    page = client.get(f"/auth/mfa/passkeys/{first.public_id}")
    assert page.status_code == 200 and b"Old laptop" in page.data
    assert client.post(f"/auth/mfa/passkeys/{first.public_id}/rename", data={"name": ""}).status_code == 422
    renamed = client.post(f"/auth/mfa/passkeys/{first.public_id}/rename", data={"name": "Spare key"})
    assert renamed.status_code == 302 and first.name == "Spare key"
    assert _events(db, "auth.passkey_renamed")[-1].object_id == str(first.public_id)
    assert outbox(staff.email) == []  # a label is no security change

    wrong = client.post(f"/auth/mfa/passkeys/{first.public_id}/remove", data={"remove-password": "nope nope nope"})
    assert wrong.status_code == 422 and b"not your current password" in wrong.data
    removed = client.post(f"/auth/mfa/passkeys/{first.public_id}/remove", data={"remove-password": factories.PASSWORD})
    assert removed.status_code == 302
    assert [k.name for k in _keys(db, staff)] == ["Phone"]
    assert _events(db, "auth.passkey_removed")[-1].detail == {"last_factor": "False"}
    assert outbox(staff.email)[-1].context["change"] == "passkey_removed"
    assert client.get("/staff/").status_code == 200  # a fresh session here
    assert second in _keys(db, staff)


def test_someone_elses_passkey_is_a_404(client, app, db, org_a, authenticator):
    owner = factories.make_user("partner", org_a)
    key = enrolled(db, owner, authenticator)
    sign_in(client, factories.make_user("partner", org_a).email)
    assert client.get(f"/auth/mfa/passkeys/{key.public_id}").status_code == 404
    assert client.post(f"/auth/mfa/passkeys/{key.public_id}/rename", data={"name": "Mine"}).status_code == 404
    assert (
        client.post(
            f"/auth/mfa/passkeys/{key.public_id}/remove", data={"remove-password": factories.PASSWORD}
        ).status_code
        == 404
    )
    assert key.name == "Desk key"


def test_removing_the_last_second_factor_follows_the_rules_for_turning_it_off(client, app, db, org_a, outbox):
    from portal.mfa.services import _replace_recovery_codes

    partner = factories.make_user("partner", org_a)  # whose organization does not require it
    authenticator = SoftAuthenticator.for_app(app)
    key = enrolled(db, partner, authenticator)
    _replace_recovery_codes(partner)
    password_step(client, partner)
    assert passkey_step(client, authenticator).status_code == 200
    done = client.post(f"/auth/mfa/passkeys/{key.public_id}/remove", data={"remove-password": factories.PASSWORD})
    assert done.status_code == 302
    assert _keys(db, partner) == []
    assert db.session.scalars(select(RecoveryCode).where(RecoveryCode.user_id == partner.id)).all() == []
    assert outbox(partner.email)[-1].context["change"] == "turned_off"
    assert _events(db, "auth.mfa_disabled")
    assert client.get("/partner/").status_code == 200  # this browser stays signed in


def test_staff_cannot_remove_their_only_second_factor(client, app, db, authenticator):
    staff = factories.make_user("staff", mfa=False)
    key = enrolled(db, staff, authenticator)
    password_step(client, staff)
    assert passkey_step(client, authenticator).status_code == 200
    refused = client.post(f"/auth/mfa/passkeys/{key.public_id}/remove", data={"remove-password": factories.PASSWORD})
    assert refused.status_code == 422 and b"required for your account" in refused.data
    assert _keys(db, staff) == [key]


def test_turning_two_step_off_and_an_admin_reset_remove_passkeys(client, app, db, org_a):
    partner = factories.make_user("partner", org_a, mfa=True)
    enrolled(db, partner, SoftAuthenticator.for_app(app))
    sign_in(client, partner.email)
    client.post("/auth/mfa/disable", data={"off-password": factories.PASSWORD})
    assert _keys(db, partner) == []

    staff = factories.make_user("staff")
    enrolled(db, staff, SoftAuthenticator.for_app(app))
    admin_client = app.test_client()
    sign_in(admin_client, factories.make_user("admin").email)
    admin_client.post(f"/admin/users/{staff.public_id}/reset-mfa")
    assert _keys(db, staff) == []
    assert db.session.scalar(select(TotpCredential).where(TotpCredential.user_id == staff.id)) is None


# --- a required set-up with a passkey -----------------------------------------------------------


def test_a_new_staff_member_sets_up_a_passkey_instead_of_an_app(client, db, outbox, authenticator):
    staff = factories.make_user("staff", mfa=False)
    assert password_step(client, staff).headers["Location"].endswith("/auth/mfa/setup")
    page = client.get("/auth/mfa/setup")
    assert b"With a passkey (recommended)" in page.data and b"Or with an authenticator app" in page.data
    assert client.post("/auth/mfa/setup/passkey/options", json={"name": ""}).status_code == 422
    options = client.post("/auth/mfa/setup/passkey/options", json={"name": "Work laptop"})
    assert options.status_code == 200
    done = client.post("/auth/mfa/setup/passkey", json={"credential": authenticator.create(options.json)})
    assert done.status_code == 200 and len(done.json["recovery_codes"]) == 10 and done.json["redirect"] == "/"
    assert client.get("/staff/").status_code == 200
    assert _session_methods(db, staff) == ["password+passkey"]
    assert [k.name for k in _keys(db, staff)] == ["Work laptop"]
    assert outbox(staff.email)[-1].context["change"] == "passkey_added"


def test_the_set_up_ceremony_needs_the_set_up_step(client, db, authenticator):
    staff = factories.make_user("staff")  # has an app: the verify step, not set-up
    password_step(client, staff)
    assert client.post("/auth/mfa/setup/passkey/options", json={"name": "Key"}).status_code == 401
    assert client.post("/auth/mfa/setup/passkey", json={"credential": {}}).status_code == 401


# --- where passkeys are required ----------------------------------------------------------------


def test_the_practice_requires_passkeys_of_staff(client, app, db, outbox, authenticator):
    admin = factories.make_user("admin")
    staff = factories.make_user("staff")
    sign_in(client, admin.email)
    page = client.get("/admin/sign-in-policy")
    assert page.status_code == 200 and b"Require a passkey for staff and admins" in page.data
    refused = client.post("/admin/sign-in-policy", data={"passkey_required": "y"})
    assert refused.status_code == 422 and b"Add a passkey to your own account first" in refused.data
    assert db.session.scalar(select(PasskeyRequirement)) is None
    assert add_passkey(client, SoftAuthenticator.for_app(app)).status_code == 200
    assert client.post("/admin/sign-in-policy", data={"passkey_required": "y"}).status_code == 302
    assert db.session.scalar(select(PasskeyRequirement.organization_id)) is None
    event = _events(db, "practice.sign_in_policy_changed")[-1]
    assert event.actor_id == admin.id and event.detail == {"passkey_required": "True"}
    assert client.get("/staff/").status_code == 200  # the admin has one

    # A staff member with only an app signs in with it once more, then must add a passkey.
    staff_client = app.test_client()
    assert sign_in(staff_client, staff.email).status_code == 302
    for path in ("/staff/", "/staff/referrals/"):
        assert "/auth/account" in staff_client.get(path).headers["Location"], path
    assert staff_client.get("/auth/account").status_code == 200
    assert add_passkey(staff_client, authenticator).status_code == 200
    assert staff_client.get("/staff/").status_code == 200

    # From now on their app's codes do not sign them in; a passkey or a recovery code does.
    staff_client.post("/auth/logout")
    password_step(staff_client, staff)
    verify_page = staff_client.get("/auth/mfa/verify").data
    assert b"Remember this browser" not in verify_page  # no browser skips a required passkey
    code = factories.next_totp_code(staff)
    refused = staff_client.post("/auth/mfa/verify", data={"code": code})
    assert refused.status_code == 422 and b"signs in with a passkey" in refused.data
    assert passkey_step(staff_client, authenticator).status_code == 200
    # Their last passkey cannot go while passkeys are required.
    (key,) = _keys(db, staff)
    kept = staff_client.post(f"/auth/mfa/passkeys/{key.public_id}/remove", data={"remove-password": factories.PASSWORD})
    assert kept.status_code == 422 and b"must have a passkey" in kept.data

    # Turning it off again.
    assert client.post("/admin/sign-in-policy", data={}).status_code == 302
    assert db.session.scalar(select(PasskeyRequirement)) is None
    assert _events(db, "practice.sign_in_policy_changed")[-1].detail == {"passkey_required": "False"}


def test_an_organization_requires_passkeys_of_its_users(client, app, db, org_a, authenticator):
    admin = factories.make_user("admin")
    partner = factories.make_user("partner", org_a)
    sign_in(client, admin.email)
    url = f"/admin/organizations/{org_a.public_id}/sign-in-policy"
    # The page's form without the passkey box leaves that part of the policy alone.
    client.post(url, data={"is_mfa_required": "y"})
    assert db.session.scalar(select(PasskeyRequirement)) is None
    client.post(url, data={"passkey_policy": "shown", "is_passkey_required": "y", "is_device_trust_allowed": "y"})
    assert db.session.scalar(select(PasskeyRequirement.organization_id)) == org_a.id
    event = _events(db, "organization.sign_in_policy_changed")[-1]
    assert event.detail == {"mfa_required": "False", "device_trust_allowed": "True", "passkey_required": "True"}
    page = client.get("/admin/sign-in-policy")
    assert org_a.name.encode() in page.data

    from portal.mfa.forms import OrganizationPolicyForm

    with app.test_request_context():
        assert OrganizationPolicyForm(obj=org_a).is_passkey_required.data is True

    # Its partner must now set up a second factor at sign-in, and is offered a passkey only.
    assert password_step(app.test_client(), partner).headers["Location"].endswith("/auth/mfa/setup")
    partner_client = app.test_client()
    password_step(partner_client, partner)
    setup = partner_client.get("/auth/mfa/setup").data
    assert b"Your account signs in with a passkey" in setup and b"Or with an authenticator app" not in setup
    options = partner_client.post("/auth/mfa/setup/passkey/options", json={"name": "Phone"}).json
    assert partner_client.post("/auth/mfa/setup/passkey", json={"credential": authenticator.create(options)}).json
    assert partner_client.get("/partner/").status_code == 200

    client.post(url, data={"passkey_policy": "shown"})
    assert db.session.scalar(select(PasskeyRequirement)) is None


def test_the_account_page_lists_passkeys_with_their_last_use(client, db, authenticator):
    staff = factories.make_user("staff")
    key = enrolled(db, staff, authenticator)
    key.last_used_at = key.created_at + timedelta(minutes=5)
    db.session.flush()
    sign_in(client, staff.email)
    page = client.get("/auth/account").data
    assert b"Desk key" in page and b"Not yet" not in page
    assert f"/auth/mfa/passkeys/{key.public_id}".encode() in page


# --- pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "base,rp_id,origin",
    [
        ("https://portal.riverbend-pt.example", "portal.riverbend-pt.example", "https://portal.riverbend-pt.example"),
        ("https://Portal.Example.org:443/", "portal.example.org", "https://portal.example.org"),
        ("https://portal.example.org:8443/x", "portal.example.org", "https://portal.example.org:8443"),
        ("http://localhost:5000", "localhost", "http://localhost:5000"),
    ],
)
def test_the_relying_party_comes_from_the_portal_address(app, base, rp_id, origin):
    from portal.mfa.passkeys import relying_party

    with app.app_context():
        saved = app.config["PORTAL_BASE_URL"]
        app.config["PORTAL_BASE_URL"] = base
        try:
            rp = relying_party()
        finally:
            app.config["PORTAL_BASE_URL"] = saved
    assert (rp.id, rp.origin) == (rp_id, origin)


@pytest.mark.parametrize("change,words", [("passkey_added", "passkey was added"), ("passkey_removed", "was removed")])
def test_the_notice_names_the_passkey_change(app, change, words):
    from portal.notifications.rendering import render

    with app.app_context():
        out = render("mfa_changed", {"when": "today", "change": change})
    assert words in out.text and words in out.html


def test_the_passkey_step_is_throttled_like_the_code_step(tmp_path, app):
    from tests.conftest import migrated_app

    limited = migrated_app(
        f"sqlite:///{tmp_path / 'rl.db'}",
        tmp_path,
        RATELIMIT_ENABLED=True,
        LOGIN_RATE_LIMIT="3 per minute",
        MFA_MAX_FAILURES=100,
    )
    with limited.app_context():
        from portal.extensions import db as _db

        staff = factories.make_user("staff", email="throttle.passkey@example.com")
        _db.session.commit()
        client = limited.test_client()
        assert password_step(client, staff).status_code == 302
        answers = [client.post(SIGN_IN, json={"credential": {}}).status_code for _ in range(4)]
        _db.session.remove()
        _db.engine.dispose()
    assert answers[:3] == [422, 422, 422] and answers[-1] == 429
