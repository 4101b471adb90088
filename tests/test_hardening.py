"""Security hardening found by a probe of the running portal (each test failed before its fix):
single-use links, invitations that reveal nothing, spreadsheet-safe exports, stored file names,
and cross-site requests refused."""

import csv
import io
from urllib.parse import urlsplit

from sqlalchemy import select

from portal.accounts.models import User
from portal.audit.models import AuditEvent
from portal.core.csv import to_csv
from portal.core.permissions import Role
from portal.referrals.models import Attachment
from tests import factories
from tests.conftest import sign_in

NEW_PASSWORD = "a long and memorable passphrase"
OTHER_PASSWORD = "another long memorable passphrase"
FORMULA = '=HYPERLINK("http://evil.example","open")'


def _path(message) -> str:
    parts = urlsplit(message.context["link"])
    return f"{parts.path}?{parts.query}"


def _reset_link(app, outbox, user) -> str:
    app.test_client().post("/auth/forgot", data={"email": user.email})
    return _path(outbox(user.email)[-1])


def _set_password(app, path: str, password: str = NEW_PASSWORD):
    browser = app.test_client()
    landing = browser.get(path)
    if landing.status_code != 302:
        return landing
    return browser.post("/auth/set-password", data={"new_password": password, "confirm": password})


# --- links -----------------------------------------------------------------------------------


def test_a_reset_link_dies_when_a_newer_one_is_sent(app, db, outbox):
    user = factories.make_user(Role.PARTNER)
    first, second = _reset_link(app, outbox, user), _reset_link(app, outbox, user)
    assert _set_password(app, first).status_code == 400
    assert _set_password(app, second).status_code == 302


def test_a_reset_link_dies_once_another_link_has_set_the_password(app, db, outbox):
    user = factories.make_user(Role.PARTNER)
    older = _reset_link(app, outbox, user)
    # An invitation link of the same user (another kind) is used first: the password changes.
    from portal.accounts.models import TokenPurpose
    from portal.accounts.services import issue_link

    invite = urlsplit(issue_link(user, TokenPurpose.INVITE))
    db.session.flush()
    assert _set_password(app, f"{invite.path}?{invite.query}", OTHER_PASSWORD).status_code == 302
    assert _set_password(app, older).status_code == 400
    assert sign_in(app.test_client(), user.email, OTHER_PASSWORD).status_code == 302


def test_a_reset_link_dies_when_the_password_is_changed_on_the_account_page(app, client, db, outbox):
    user = factories.make_user(Role.PARTNER)
    link = _reset_link(app, outbox, user)
    sign_in(client, user.email)
    changed = client.post(
        "/auth/account",
        data={"current_password": factories.PASSWORD, "new_password": OTHER_PASSWORD, "confirm": OTHER_PASSWORD},
    )
    assert changed.status_code == 302
    assert _set_password(app, link).status_code == 400


def test_links_die_when_the_account_is_deactivated_and_stay_dead_after_reactivation(app, client, db, outbox, login_as):
    user = factories.make_user(Role.PARTNER)
    link = _reset_link(app, outbox, user)
    login_as(Role.ADMIN)
    assert client.post(f"/admin/users/{user.public_id}/deactivate").status_code == 302
    assert client.post(f"/admin/users/{user.public_id}/reactivate").status_code == 302
    assert _set_password(app, link).status_code == 400


# --- invitations -----------------------------------------------------------------------------


def _partner_admin_invites(client, email):
    return client.post("/partner/users", data={"full_name": "Someone", "email": email, "role": "partner"})


def test_inviting_an_address_taken_elsewhere_looks_like_any_invitation(client, db, login_as, outbox, org_b):
    login_as(Role.PARTNER_ADMIN)
    elsewhere = factories.make_user(Role.PARTNER, org_b)
    practice = factories.make_user(Role.STAFF)
    admin = factories.make_user(Role.ADMIN)
    answers = [
        _partner_admin_invites(client, email) for email in (elsewhere.email, practice.email, "brand.new@clinic.example")
    ]
    assert [a.status_code for a in answers] == [302, 302, 302]
    pages = [client.get("/partner/users").get_data(as_text=True) for _ in range(1)]
    assert "already" not in pages[0]
    assert outbox(elsewhere.email) == [] and outbox(practice.email) == []  # nobody is invited twice
    assert [m.template for m in outbox(admin.email)] == ["invite_conflict", "invite_conflict"]
    assert db.session.scalar(select(User).where(User.email == elsewhere.email)).organization_id == org_b.id
    conflicts = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "user.invite_conflict")).all()
    assert len(conflicts) == 2


def test_a_partner_admin_is_told_when_a_colleague_already_has_the_address(client, db, login_as, org_a):
    login_as(Role.PARTNER_ADMIN)
    colleague = factories.make_user(Role.PARTNER, org_a)
    answer = _partner_admin_invites(client, colleague.email)
    assert answer.status_code == 422 and b"already exists" in answer.data


# --- exports ---------------------------------------------------------------------------------


def test_every_csv_cell_that_a_spreadsheet_would_run_is_neutralised():
    text = to_csv([[FORMULA, "+1+2", "-cmd", "@SUM(A1)", "\tx", "-12.5", "3", "plain"]])
    [cells] = list(csv.reader(io.StringIO(text)))
    assert cells[:5] == ["'" + FORMULA, "'+1+2", "'-cmd", "'@SUM(A1)", "'\tx"]
    assert cells[5:] == ["-12.5", "3", "plain"]  # numbers stay numbers


def test_a_disclosure_export_names_a_user_safely(app, client, db, login_as, org_a):
    from portal.consent.models import Category
    from portal.progress.models import UpdateState
    from tests.consent.helpers import add_consent, add_update

    referral = factories.make_referral(org_a)
    add_consent(referral, categories=(Category.PROGRESS_NOTES,))
    add_update(referral, factories.make_user(Role.STAFF), state=UpdateState.RELEASED)
    reader = factories.make_user(Role.PARTNER, org_a, full_name=FORMULA)
    partner = app.test_client()
    sign_in(partner, reader.email)
    assert partner.get(f"/partner/patients/{referral.patient.public_id}").status_code == 200
    login_as(Role.STAFF)
    csv_text = client.get(f"/staff/patients/{referral.patient.public_id}/disclosures?format=csv").get_data(as_text=True)
    assert "'=HYPERLINK" in csv_text and ",=HYPERLINK" not in csv_text


def test_the_analytics_export_names_an_organization_safely(client, db, login_as):
    org = factories.make_organization(FORMULA)
    factories.make_referral(org)
    login_as(Role.STAFF)
    csv_text = client.get("/staff/analytics.csv").get_data(as_text=True)
    assert FORMULA not in csv_text.replace("'" + FORMULA, "").replace("\"'" + FORMULA.replace('"', '""'), "")


# --- uploads ---------------------------------------------------------------------------------


def test_a_pdf_named_like_a_web_page_is_stored_and_sent_as_a_pdf(client, db, login_as, org_a):
    partner = login_as(Role.PARTNER)
    referral = factories.make_referral(org_a, clinician=partner)
    sent = client.post(
        f"/partner/referrals/{referral.public_id}/notes",
        data={"note": "", "attachments": [(io.BytesIO(factories.PDF_BYTES), "scan.html")]},
    )
    assert sent.status_code == 302
    attachment = db.session.scalar(select(Attachment).where(Attachment.referral_id == referral.id))
    assert attachment.filename == "scan.pdf"
    download = client.get(f"/partner/referrals/{referral.public_id}/attachments/{attachment.public_id}")
    assert download.headers["Content-Disposition"] == "attachment; filename=scan.pdf"
    assert download.headers["X-Content-Type-Options"] == "nosniff"


def test_a_name_that_already_fits_its_type_is_kept():
    from portal.core.uploads import named_for_type

    assert named_for_type("MRI knee.jpeg", "image/jpeg") == "MRI knee.jpeg"
    assert named_for_type("report", "application/pdf") == "report.pdf"
    assert named_for_type("x.svg", "image/png") == "x.png"


# --- cross-site requests ---------------------------------------------------------------------


def test_a_state_changing_request_from_another_site_is_refused(client, db, login_as, org_a):
    partner = login_as(Role.PARTNER)
    referral = factories.make_referral(org_a, clinician=partner)
    url = f"/partner/referrals/{referral.public_id}/notes"
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ):
        refused = client.post(url, data={"note": "Hello"}, headers=headers)
        assert refused.status_code == 403 and b"another site" in refused.data, headers
    assert client.post(url, data={"note": "Hello"}, headers={"Sec-Fetch-Site": "same-origin"}).status_code == 302
    assert client.post(url, data={"note": "Hello"}, headers={"Origin": "http://localhost"}).status_code == 302
