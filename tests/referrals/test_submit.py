"""A partner sends a referral: what they see, what is stored, what is refused."""

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.patients.models import Patient
from portal.referrals.models import Attachment, Referral
from tests import factories
from tests.factories import PDF_BYTES
from tests.referrals.conftest import PNG_BYTES


def _count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def _upload_files(app):
    from pathlib import Path

    root = Path(app.config["UPLOAD_DIR"])
    return sorted(root.rglob("*.phi")) if root.exists() else []


def test_partner_submits_and_sees_confirmation_and_list(client, login_as, submit, db, outbox):
    partner = login_as("partner")
    response = submit(files=[(PDF_BYTES, "knee-xray.pdf")], clinician=partner)
    assert response.status_code == 302 and response.headers["Location"].endswith("/submitted")
    referral = db.session.scalar(select(Referral))
    page = client.get(response.headers["Location"])
    assert page.status_code == 200 and referral.reference.encode() in page.data
    home = client.get("/partner/").data.decode()
    assert referral.reference in home and "Submitted" in home
    assert referral.patient.family_name == "O’Brien-Núñez" and referral.icd10_codes == ["M22.2X2", "M25.562"]
    assert [m.template for m in outbox(partner.email)] == ["referral_welcome"]


def test_attachment_round_trip_is_encrypted_and_audited(app, client, login_as, submit, db):
    partner = login_as("partner")
    submit(files=[(PDF_BYTES, "knee-xray.pdf")], clinician=partner)
    attachment = db.session.scalar(select(Attachment))
    (stored,) = _upload_files(app)
    assert PDF_BYTES not in stored.read_bytes()
    referral = attachment.referral
    response = client.get(f"/partner/referrals/{referral.public_id}/attachments/{attachment.public_id}")
    assert response.status_code == 200 and response.data == PDF_BYTES
    assert "attachment" in response.headers["Content-Disposition"]
    actions = db.session.scalars(select(AuditEvent.action)).all()
    assert {"referral.submitted", "attachment.uploaded", "attachment.downloaded"} <= set(actions)


def test_first_referral_gets_welcome_then_thanks(client, login_as, submit, db, outbox):
    partner = login_as("partner")
    submit(clinician=partner)
    submit(clinician=partner, family_name="Second")
    assert [m.template for m in outbox(partner.email)] == ["referral_welcome", "referral_thanks"]


def test_intake_staff_are_told_without_phi(client, login_as, submit, db, outbox):
    staff = factories.make_user("staff")
    partner = login_as("partner")
    submit(clinician=partner)
    (notice,) = outbox(staff.email)
    assert notice.template == "intake_new_referral"
    text = str(notice.context)
    for phi in ("Zoë", "Núñez", "1984", "555-0199", "zoe.obrien", "knee"):
        assert phi not in text


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"given_name": ""}, b"This field is required"),
        ({"birth_date": "2999-01-01"}, b"cannot be in the future"),
        ({"birth_date": "1850-01-01"}, b"before 1900"),
        ({"birth_date": "19/07/1984"}, b"Not a valid date value"),
        ({"clinician_npi": "1234567890"}, b"valid 10-digit NPI"),
        ({"icd10_codes": "knee, U07.1"}, b"Not ICD-10-CM codes"),
        ({"icd10_codes": ""}, b"at least one ICD-10-CM code"),
        ({"phone": "12345"}, b"US phone number"),
        ({"us_state": "ZZ"}, b"Not a valid choice"),
        ({"reason": "x" * 4001}, b"longer than 4000"),
        ({"email": "not-an-email"}, b"Invalid email address"),
    ],
)
def test_bad_input_is_explained_keeps_typing_and_stores_nothing(app, client, login_as, submit, db, overrides, message):
    partner = login_as("partner")
    before = (_count(db, Patient), _count(db, Referral))
    response = submit(files=[(PDF_BYTES, "ok.pdf")], clinician=partner, **overrides)
    assert response.status_code == 422
    assert message in response.data
    assert b"Acme Health" in response.data  # what the user typed is kept
    assert (_count(db, Patient), _count(db, Referral)) == before
    assert _upload_files(app) == []


@pytest.mark.parametrize(
    "content,name,message",
    [
        (b"MZ\x90\x00 an executable", "scan.pdf", "is not a PDF, JPEG or PNG"),
        (b"", "empty.pdf", "is empty"),
        (b"<html>hello</html>", "letter.png", "is not a PDF, JPEG or PNG"),
    ],
)
def test_disguised_or_empty_files_are_refused(app, client, login_as, submit, db, content, name, message):
    partner = login_as("partner")
    response = submit(files=[(PDF_BYTES, "fine.pdf"), (content, name)], clinician=partner)
    assert response.status_code == 422 and message.encode() in response.data
    assert _count(db, Referral) == 0 and _upload_files(app) == []


def test_oversize_file_refused_and_nothing_stored(app, client, login_as, submit, db, monkeypatch):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1024)
    partner = login_as("partner")
    response = submit(files=[(PNG_BYTES + b"\x00" * 2048, "big.png")], clinician=partner)
    assert response.status_code == 422 and b"larger than" in response.data
    assert _count(db, Referral) == 0 and _upload_files(app) == []


def test_total_size_per_referral_enforced(app, client, login_as, submit, db, monkeypatch):
    monkeypatch.setitem(app.config, "REFERRAL_ATTACHMENTS_MAX_BYTES", 100)
    partner = login_as("partner")
    response = submit(files=[(PDF_BYTES, "a.pdf"), (PDF_BYTES, "b.pdf"), (PDF_BYTES, "c.pdf")], clinician=partner)
    assert response.status_code == 422 and b"may total at most" in response.data


def test_cannot_refer_as_a_clinician_of_another_org(client, login_as, submit, org_b, db):
    login_as("partner")
    stranger = factories.make_user("partner", org_b)
    response = submit(clinician=stranger)
    assert response.status_code == 422 and b"Not a valid choice" in response.data


def test_control_characters_are_stripped(client, login_as, submit, db):
    partner = login_as("partner")
    submit(clinician=partner, given_name="An\x00na\u200b", reason="Line one\r\nLine two\x07")
    referral = db.session.scalar(select(Referral))
    assert referral.patient.given_name == "Anna"  # NUL and zero-width space removed
    assert referral.reason == "Line one\nLine two"


def test_lookup_finds_own_patients_exactly_and_no_one_elses(client, login_as, submit, org_b, db):
    partner = login_as("partner")
    submit(clinician=partner)
    other = factories.make_referral(org_b, patient=factories.make_patient("O'Brien-Nunez"))
    response = client.post(
        "/partner/referrals/lookup", data={"family_name": "o'brien-nunez", "birth_date": "1984-07-19"}
    )
    assert response.status_code == 200
    mine = db.session.scalar(select(Referral).where(Referral.organization_id == partner.organization_id))
    assert mine.reference.encode() in response.data and other.reference.encode() not in response.data
    miss = client.post("/partner/referrals/lookup", data={"family_name": "O'Brien", "birth_date": "1984-07-19"})
    assert b"No referral matches" in miss.data


def test_duplicate_patient_flagged_for_staff_only(app, client, login_as, submit, db):
    existing = factories.make_patient("O’Brien-Núñez", birth_date=__import__("datetime").date(1984, 7, 19))
    partner = login_as("partner")
    submit(files=[(PDF_BYTES, "a.pdf")], clinician=partner)
    referral = db.session.scalar(select(Referral))
    assert referral.needs_duplicate_review
    assert b"duplicate" not in client.get(f"/partner/referrals/{referral.public_id}").data.lower()
    staff_client = app.test_client()
    from tests.conftest import sign_in

    sign_in(staff_client, factories.make_user("staff").email)
    page = staff_client.get(f"/staff/referrals/{referral.public_id}")
    assert b"Possible duplicate patient" in page.data
    response = staff_client.post(
        f"/staff/referrals/{referral.public_id}/duplicate", data={"decision": str(existing.public_id)}
    )
    assert response.status_code == 302
    db.session.refresh(referral)
    assert referral.patient_id == existing.id and not referral.needs_duplicate_review
    attachment = referral.attachments[0]
    download = staff_client.get(f"/staff/referrals/{referral.public_id}/attachments/{attachment.public_id}")
    assert download.status_code == 200 and download.data == PDF_BYTES
