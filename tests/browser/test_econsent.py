"""A patient gives their own consent on a phone (390 px), in English and in Spanish: open the link,
confirm who they are, answer, sign, download the signed copy. axe-core on every page, no sideways scroll."""

import re
import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import axe_violations
from tests.browser.test_pages import sign_in
from tests.browser.test_referral_flow import sign_out

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}

WORDS = {
    "en": {
        "confirm": "Confirm who you are",
        "month": "Month",
        "day": "Day",
        "year": "Year",
        "phone": "Last 4 digits of your phone number",
        "continue": "Continue",
        "yes": "Yes",
        "no": "No",
        "read": "I read this page",
        "name": "Your full name",
        "sign": "Sign and send",
        "thanks": "Thank you. Your choices are saved.",
        "download": "Download your copy (PDF)",
        "progress": "Updates about your progress",
    },
    "es": {
        "confirm": "Confirme quién es usted",
        "month": "Mes",
        "day": "Día",
        "year": "Año",
        "phone": "Últimos 4 dígitos de su número de teléfono",
        "continue": "Continuar",
        "yes": "Sí",
        "no": "No",
        "read": "Leí esta página",
        "name": "Su nombre completo",
        "sign": "Firmar y enviar",
        "thanks": "Gracias. Sus respuestas están guardadas.",
        "download": "Descargar su copia (PDF)",
        "progress": "Noticias sobre su progreso",
    },
}


def _patient(live_server_app, index: int):
    """A demo patient of Lakeside's referrals: (public id, name, date of birth, last four phone digits)."""
    from portal.extensions import db
    from portal.partners.models import Organization
    from portal.referrals.models import Referral

    with live_server_app.app_context():
        org = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        referral = db.session.scalars(
            select(Referral).where(Referral.organization_id == org.id).order_by(Referral.id)
        ).all()[index]
        patient = referral.patient
        digits = re.sub(r"\D", "", patient.phone)
        return str(patient.public_id), f"{patient.given_name} {patient.family_name}", patient.birth_date, digits[-4:]


def _ask_with_a_qr_code(page, patient_id: str, language: str) -> str:
    """Staff at the front desk: ask the patient, get the QR code; returns the link the code holds."""
    sign_in(page, "staff@riverbend-pt.example")
    page.wait_for_url("**/staff/")
    page.goto(f"/staff/patients/{patient_id}")
    page.get_by_role("link", name="Ask the patient to sign online").click()
    assert axe_violations(page) == []
    page.get_by_label("Outcome scores").check()
    page.get_by_label("Show a QR code to scan").check()
    page.get_by_label("Language the patient reads first").select_option(language)
    page.get_by_role("button", name="Send the request").click()
    qr = page.get_by_role("img", name="QR code that opens the patient's consent page")
    expect(qr).to_be_visible()
    assert axe_violations(page) == []
    link = page.locator("#patient-link").inner_text().strip()
    sign_out(page)
    return link


def _fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} scrolls sideways ({width} px)"


def _sign_on_a_phone(browser, live_server, link: str, birth, last4: str, name: str, language: str) -> bytes:
    words = WORDS[language]
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    external = []
    phone.on("request", lambda r: None if r.url.startswith((live_server, "data:")) else external.append(r.url))
    try:
        phone.goto(link)
        phone.wait_for_url("**/my-consent/confirm")
        assert "t=" not in phone.url  # the token left the address bar
        if language == "es" and phone.locator("html").get_attribute("lang") != "es":
            phone.get_by_role("button", name="Español").click()
        expect(phone.get_by_role("heading", name=words["confirm"])).to_be_visible()
        assert phone.locator("html").get_attribute("lang") == language
        assert axe_violations(phone) == []
        _fits(phone)
        phone.get_by_label(words["month"], exact=True).fill(str(birth.month))
        phone.get_by_label(words["day"], exact=True).fill(str(birth.day))
        phone.get_by_label(words["year"], exact=True).fill(str(birth.year))
        phone.get_by_label(words["phone"]).fill(last4)
        phone.get_by_role("button", name=words["continue"]).click()
        phone.wait_for_url("**/my-consent/sign")
        expect(phone.get_by_role("heading", name=words["progress"])).to_be_visible()
        assert axe_violations(phone) == []
        _fits(phone)
        topics = phone.locator("section.topic")
        for i in range(topics.count()):
            topics.nth(i).get_by_label(words["yes"] if i == 0 else words["no"], exact=True).check()
        phone.get_by_label(re.compile(words["read"])).check()
        phone.get_by_label(words["name"]).fill(name)
        phone.get_by_role("button", name=words["sign"]).click()
        phone.wait_for_url("**/my-consent/done")
        expect(phone.get_by_role("heading", name=words["thanks"])).to_be_visible()
        assert axe_violations(phone) == []
        _fits(phone)
        with phone.expect_download() as download:
            phone.get_by_role("link", name=words["download"]).click()
        with open(download.value.path(), "rb") as fh:
            copy = fh.read()
    finally:
        context.close()
    assert external == []
    return copy


@pytest.mark.parametrize("language,index", [("es", 2), ("en", 3)])
def test_patient_signs_on_a_phone_and_keeps_a_copy(page, browser, live_server, live_server_app, language, index):
    patient_id, name, birth, last4 = _patient(live_server_app, index)
    link = _ask_with_a_qr_code(page, patient_id, language)
    started = time.monotonic()
    copy = _sign_on_a_phone(browser, live_server, link, birth, last4, name, language)
    assert time.monotonic() - started < 120  # well inside the two minutes a patient has at the desk
    assert copy.startswith(b"%PDF-")

    from portal.econsent.models import ConsentRequest, RequestState
    from portal.extensions import db

    with live_server_app.app_context():
        request = db.session.scalars(select(ConsentRequest).order_by(ConsentRequest.id.desc())).first()
        assert request.state is RequestState.SIGNED and request.language.value == language
        assert request.consent_id is not None and request.text_digest
        assert {a.text.language.value for a in request.answers} == {language}


def _signed_with_a_manage_link(live_server_app, index: int) -> tuple[str, object, str]:
    """A demo patient who signed in Spanish (through the services: the test above walks the pages):
    (the manage link, as the PDF and the e-mail carry it, birth date, last four phone digits)."""
    import uuid

    from portal.accounts.models import User
    from portal.econsent import queries, services
    from portal.econsent.models import Channel, Language, Topic
    from portal.econsent.wording import build
    from portal.extensions import db
    from portal.partners.models import Organization
    from portal.patients.models import Patient

    patient_id, name, birth, last4 = _patient(live_server_app, index)
    with live_server_app.test_request_context():
        patient = db.session.scalar(select(Patient).where(Patient.public_id == uuid.UUID(patient_id)))
        staff = db.session.scalar(select(User).where(User.email == "staff@riverbend-pt.example"))
        org = db.session.scalar(select(Organization).where(Organization.name == "Lakeside Orthopedics"))
        request, raw = services.create_request(
            staff,
            patient,
            organization=org,
            clinician=None,
            topics=[Topic.PROGRESS_UPDATES],
            consent_expires_on=None,
            channel=Channel.QR,
            language=Language.SPANISH,
        )
        wording = build(request, Language.SPANISH, queries.current_texts(Language.SPANISH))
        services.answer(
            services.find_link(raw),
            wording,
            shown_digest=wording.digest,
            answers={Topic.PROGRESS_UPDATES: True},
            signature_name=name,
            confirmed=True,
        )
        manage = services.reissue(staff, request, Channel.QR)  # a fresh manage link, like the one in the PDF
        db.session.commit()
        return services.link_url(manage), birth, last4


def test_patient_stops_sharing_from_the_link_in_their_copy_on_a_phone(browser, live_server, live_server_app):
    link, birth, last4 = _signed_with_a_manage_link(live_server_app, 4)
    context = browser.new_context(base_url=live_server, viewport=PHONE, is_mobile=True, has_touch=True)
    phone = context.new_page()
    try:
        phone.goto(link)
        phone.wait_for_url("**/my-consent/confirm")
        assert phone.locator("html").get_attribute("lang") == "es"
        # One wrong try first: the page says what is wrong, accessibly.
        phone.get_by_label("Mes", exact=True).fill(str(birth.month))
        phone.get_by_label("Día", exact=True).fill(str(birth.day))
        phone.get_by_label("Año", exact=True).fill(str(birth.year - 1))
        phone.get_by_label("Últimos 4 dígitos de su número de teléfono").fill(last4)
        phone.get_by_role("button", name="Continuar").click()
        expect(phone.get_by_role("alert")).to_contain_text("Le quedan 4 intentos")
        assert axe_violations(phone) == []
        _fits(phone)
        phone.get_by_label("Año", exact=True).fill(str(birth.year))
        phone.get_by_role("button", name="Continuar").click()
        phone.wait_for_url("**/my-consent/manage")
        expect(phone.get_by_role("heading", name="Sus opciones sobre compartir")).to_be_visible()
        assert axe_violations(phone) == []
        _fits(phone)
        phone.get_by_label(re.compile("Quiero dejar de compartir")).check()
        phone.get_by_role("button", name="Dejar de compartir ahora").click()
        expect(phone.get_by_role("status")).to_contain_text("Se dejó de compartir")
        assert axe_violations(phone) == []
        _fits(phone)
        # The link died with the withdrawal: a clear page, in the patient's language.
        phone.goto(link)
        expect(phone.get_by_role("heading", name="Ya se dejó de compartir")).to_be_visible()
        assert axe_violations(phone) == []
        _fits(phone)
        phone.goto("/my-consent/open?t=forged")
        expect(phone.get_by_role("heading", name=re.compile("This link does not work"))).to_be_visible()
        assert axe_violations(phone) == []
        _fits(phone)
    finally:
        context.close()
