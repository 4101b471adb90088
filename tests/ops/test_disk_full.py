"""A full disk: uploads answer 507 with the form back, a database that cannot grow answers 503,
and nothing partial is stored (no row, no file, no temporary file)."""

import io

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import OperationalError

from portal.consent.models import Consent
from portal.core.errors import is_storage_full
from portal.core.phi.documents import DocumentStore
from portal.patients.models import Patient
from portal.referrals.models import Attachment, Referral
from tests import factories
from tests.clock import practice_today
from tests.conftest import sign_in
from tests.factories import PDF_BYTES
from tests.ops.conftest import out_of_space, stored_files


def _count(db, model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def disk_fills_after(monkeypatch):
    """``disk_fills_after(n)``: the document store's n+1-th write runs out of space half-way."""
    real = DocumentStore._write

    def arm(writes_that_fit: int):
        calls = {"n": 0}

        def write(self, path, fill):
            calls["n"] += 1
            if calls["n"] <= writes_that_fit:
                return real(self, path, fill)

            def fill_then_fail(dst):
                dst.write(b"x" * 4096)  # part of the file is on disk when the space runs out
                raise out_of_space()

            return real(self, path, fill_then_fail)

        monkeypatch.setattr(DocumentStore, "_write", write)

    return arm


def test_a_full_disk_gives_the_partner_form_back_with_a_clear_message_and_stores_nothing(
    app, client, db, login_as, submit, disk_fills_after
):
    partner = login_as("partner")
    disk_fills_after(1)  # the first attachment fits, the second does not
    response = submit(files=[(PDF_BYTES, "knee-xray.pdf"), (PDF_BYTES, "mri.pdf")], clinician=partner)
    page = response.data.decode()
    assert "storage is full" in page and "choosing the files again" in page
    assert "Left knee pain for 3 months" in page and "XZ123456" in page  # what they typed is back
    assert response.status_code in (422, 507)  # 507 once the view answers exc.status (see below)
    assert (_count(db, Referral), _count(db, Attachment), _count(db, Patient)) == (0, 0, 0)
    assert stored_files(app) == []  # the first document went with the rollback, the partial one at once


def test_the_partner_form_answers_507_when_the_disk_is_full(client, db, login_as, submit, disk_fills_after):
    partner = login_as("partner")
    disk_fills_after(0)
    assert submit(files=[(PDF_BYTES, "knee-xray.pdf")], clinician=partner).status_code == 507


def test_a_full_disk_answers_507_on_the_staff_consent_form(app, db, disk_fills_after):
    partner = factories.make_user("partner", factories.make_organization("Lakeside"))
    referral = factories.make_referral(partner.organization, partner)
    staff = app.test_client()
    sign_in(staff, factories.make_user("staff").email)
    disk_fills_after(0)
    response = staff.post(
        f"/staff/patients/{referral.patient.public_id}/consents",
        data={
            "organization": str(partner.organization.public_id),
            "clinician": "",
            "categories": ["progress_notes"],
            "effective_on": practice_today().isoformat(),
            "method": "signed_form",
            "document": (io.BytesIO(PDF_BYTES), "signed.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 507 and b"storage is full" in response.data
    assert _count(db, Consent) == 0 and stored_files(app) == []


def test_a_request_body_that_cannot_be_spooled_to_a_full_disk_is_a_507_page(client, db, login_as, monkeypatch):
    from portal.core.security import PortalRequest

    login_as("partner")

    def no_space(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PortalRequest, "_get_file_stream", no_space)
    response = client.post(
        "/partner/referrals/new",
        data={"attachments": (io.BytesIO(PDF_BYTES), "x.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 507 and b"storage is full" in response.data
    assert response.headers["Retry-After"]


def test_a_database_that_cannot_grow_answers_503_and_keeps_no_file(app, client, db, login_as, submit, database_full):
    partner = login_as("partner")
    database_full("referral_attachments")  # the patient and referral rows went in; the attachment cannot
    response = submit(files=[(PDF_BYTES, "knee-xray.pdf")], clinician=partner)
    assert response.status_code == 503 and response.headers["Retry-After"]
    page = response.data.decode()
    assert "storage is full" in page and "Nothing of yours was saved" in page
    assert (_count(db, Referral), _count(db, Attachment), _count(db, Patient)) == (0, 0, 0)
    assert stored_files(app) == []


def test_sign_in_on_a_full_database_answers_503_not_500(client, db, database_full):
    user = factories.make_user("partner", factories.make_organization("Lakeside"))
    database_full("user_sessions")
    database_full("audit_events")
    response = client.post("/auth/login", data={"email": user.email, "password": factories.PASSWORD})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert b"storage is full" in response.data


def test_sqlites_own_database_or_disk_is_full_is_recognised(tmp_path):
    """Not injected: a real SQLITE_FULL, from a database capped at its current size."""
    engine = create_engine(f"sqlite:///{tmp_path / 'tiny.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
    with pytest.raises(OperationalError) as caught, engine.begin() as conn:
        pages = conn.execute(text("PRAGMA page_count")).scalar()
        conn.execute(text(f"PRAGMA max_page_count = {pages + 1}"))
        for _ in range(10):
            conn.execute(text("INSERT INTO t VALUES (zeroblob(8192))"))
    assert is_storage_full(caught.value)
    engine.dispose()
