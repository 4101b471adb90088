"""The signature keeps the hash of the exact text shown and the text versions read; wording is versioned data."""

import hashlib

from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.econsent import queries, services
from portal.econsent.models import ConsentText, Language, Topic
from portal.econsent.wording import build
from tests import factories
from tests.econsent.helpers import confirm, make_patient, make_request, open_link, shown_digest, sign, walk_to_signed


def test_the_signature_stores_the_hash_of_the_text_version_shown(app, db, client, org_a):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    page = walk_to_signed(client, raw)
    db.session.refresh(request)
    assert request.text_digest == shown_digest(page.data)
    with app.test_request_context():
        wording = build(request, Language.ENGLISH, queries.signed_texts(request))
    # The stored hash is SHA-256 of the text, rebuilt from the versions the answers keep.
    assert request.text_digest == hashlib.sha256(wording.text.encode()).hexdigest()
    for block in (wording.title, *wording.intro, wording.confirmation):
        assert block.encode() in page.data  # what is hashed is what the page showed
    current = queries.current_texts(Language.ENGLISH)
    assert {a.topic: a.text_id for a in request.answers} == {t: current[t].id for t in request.topics}


def test_a_new_text_version_leaves_signed_consents_on_theirs(app, db, client, org_a):
    staff = factories.make_user("staff")
    admin = factories.make_user("admin")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    db.session.refresh(request)
    signed_ids = {a.topic: a.text_id for a in request.answers}

    from tests.conftest import sign_in

    admin_client = app.test_client()
    sign_in(admin_client, admin.email)
    response = admin_client.post(
        "/admin/consent-texts/progress_updates/en",
        data={"title": "News about your progress", "body": "New words.\n\nMore new words."},
    )
    assert response.status_code == 302
    newest = queries.current_texts(Language.ENGLISH)[Topic.PROGRESS_UPDATES]
    assert newest.version == 2 and newest.title == "News about your progress"
    db.session.refresh(request)
    assert {a.topic: a.text_id for a in request.answers} == signed_ids  # still version 1
    assert request.answers[0].text.version == 1
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "consent_text.changed"))
    assert event.actor_id == admin.id and event.detail["version"] == "2"
    # A new request reads the new version.
    other, raw2 = make_request(staff, factories.make_referral(org_a, patient=make_patient()))
    db.session.commit()
    fresh = app.test_client()
    page = walk_to_signed(fresh, raw2)
    assert b"News about your progress" in page.data


def test_wording_changed_while_reading_is_refused_and_shown_again(app, db, client, org_a):
    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    open_link(client, raw)
    confirm(client)
    old = shown_digest(client.get("/my-consent/sign").data)
    services.change_text(staff, Topic.OUTCOME_SCORES, Language.ENGLISH, title="Scores", body="Changed.")
    db.session.commit()
    response, page = sign(client, digest=old)
    assert response.status_code == 409 and b"The wording changed while you were reading" in response.data
    assert b"Changed." in response.data and shown_digest(response.data) != old
    db.session.refresh(request)
    assert request.answers == [] and request.text_digest is None


def test_admin_pages_list_and_refuse_empty_text(app, db, org_a):
    from tests.conftest import sign_in

    admin = factories.make_user("admin")
    client = app.test_client()
    sign_in(client, admin.email)
    listing = client.get("/admin/consent-texts")
    assert listing.status_code == 200 and b"Su historia, sin su nombre" in listing.data
    assert client.post("/admin/consent-texts/success_story/es", data={"title": "", "body": ""}).status_code == 422
    assert client.get("/admin/consent-texts/nothing/es").status_code == 404
    assert db.session.scalar(select(ConsentText).where(ConsentText.version > 1)) is None


def test_the_pdf_holds_the_code_the_hash_and_the_way_back(app, db, client, org_a):
    import zlib

    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral)
    db.session.commit()
    walk_to_signed(client, raw)
    pdf = client.get("/my-consent/copy.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf" and "consent-copy.pdf" in pdf.headers["Content-Disposition"]
    db.session.refresh(request)
    text = _pdf_text(pdf.data, zlib)
    assert request.verification_code in text and request.text_digest in text
    assert "/my-consent/open?t=" in text and "Ana Rivera" in text


def _pdf_text(data: bytes, zlib) -> str:
    """The text drawn on the pages (reportlab: ASCII85 then Flate streams of Tj operators)."""
    import base64
    import re

    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", data, re.S):
        raw = re.sub(rb"\s", b"", stream)
        if raw.endswith(b"~>"):
            try:
                raw = zlib.decompress(base64.a85decode(raw[:-2]))
            except (ValueError, zlib.error):
                continue
        out += [m.decode("latin-1") for m in re.findall(rb"\((.*?)(?<!\\)\) Tj", raw)]
    return "".join(out).replace("\\(", "(").replace("\\)", ")")
