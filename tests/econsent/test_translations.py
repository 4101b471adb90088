"""The Spanish catalogue is complete, in step with the sources, and compiled."""

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "portal" / "translations" / "es" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def _source_messages() -> set:
    """Every message the patient's pages, the copy and the patient's errors use (as portal/econsent/babel.cfg says)."""
    found = set()
    for directory, method in (
        (ROOT / "portal" / "econsent", "python"),
        (ROOT / "templates" / "econsent" / "patient", "jinja2"),
    ):
        for _, _, message, _, _ in extract_from_dir(
            directory,
            method_map=[("**.py", "python")] if method == "python" else [("**.html", "jinja2")],
            keywords={"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None},
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def _catalog():
    with PO.open("rb") as fh:
        return read_po(fh)


def test_every_message_has_a_spanish_translation():
    catalog = _catalog()
    missing = sorted(m for m in _source_messages() if not catalog.get(m) or not catalog.get(m).string)
    assert missing == [], "run pybabel extract/update (portal/econsent/babel.cfg) and translate: " + "; ".join(missing)
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert fuzzy == []


def test_no_stale_messages_and_placeholders_match():
    catalog = _catalog()
    used = _source_messages()
    stale = sorted(str(m.id) for m in catalog if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in used)
    assert stale == []
    for message in catalog:
        if not message.id:
            continue
        ids = [message.id] if isinstance(message.id, str) else list(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(ids[-1])), message.id


def test_the_compiled_catalogue_matches_the_po_file():
    def pairs(catalog):
        def key(value):
            return tuple(value) if isinstance(value, list | tuple) else value

        return {key(m.id): key(m.string) for m in catalog if m.id}

    with MO.open("rb") as fh:
        compiled = pairs(read_mo(fh))
    assert compiled == pairs(_catalog()), "run pybabel compile -d portal/translations"


# --- the pages: the patient's language, and what happens when a text or a language is missing ----


def _spanish_request(db, org_a, topics=None):
    from portal.econsent.models import Language, Topic
    from tests import factories
    from tests.econsent.helpers import make_patient, make_request

    staff = factories.make_user("staff")
    referral = factories.make_referral(org_a, patient=make_patient())
    request, raw = make_request(staff, referral, language=Language.SPANISH, topics=topics or tuple(Topic))
    db.session.commit()
    return request, raw


def test_a_dead_link_says_so_in_the_language_of_its_request(db, client, org_a):
    from datetime import timedelta

    from sqlalchemy import update

    from portal.core.time import now_utc
    from portal.econsent.models import PatientLink
    from tests.econsent.helpers import open_link

    request, raw = _spanish_request(db, org_a)
    db.session.execute(update(PatientLink).values(expires_at=now_utc() - timedelta(seconds=1)))
    db.session.commit()
    response = open_link(client, raw)
    assert response.status_code == 410 and b'<html lang="es">' in response.data
    assert "Este enlace venció".encode() in response.data and b"This link has expired" not in response.data


def test_a_topic_without_spanish_text_shows_the_whole_form_in_english_with_a_note_in_spanish(db, client, org_a):
    from sqlalchemy import delete

    from portal.econsent.models import ConsentText, Language, RequestState, Topic
    from tests.econsent.helpers import confirm, open_link, sign

    request, raw = _spanish_request(db, org_a)
    db.session.execute(
        delete(ConsentText).where(ConsentText.language == Language.SPANISH, ConsentText.topic == Topic.OUTCOME_SCORES)
    )
    db.session.commit()
    open_link(client, raw)
    assert "Confirme quién es usted".encode() in client.get("/my-consent/confirm").data
    confirm(client)
    response, page = sign(client)
    assert b'<html lang="en">' in page.data and b"Updates about your progress" in page.data  # never half and half
    assert b"Noticias sobre su progreso" not in page.data
    note = "Este formulario todavía no está listo en español, por eso se muestra en inglés."
    assert f'lang="es">{note}'.encode() in page.data
    assert response.status_code == 302
    db.session.refresh(request)
    assert request.state is RequestState.SIGNED
    assert {a.text.language for a in request.answers} == {Language.ENGLISH}  # what was read and signed
    assert request.language is Language.SPANISH  # the patient's language is kept for what follows
    assert "Gracias. Sus respuestas están guardadas.".encode() in client.get("/my-consent/done").data


def test_no_text_in_any_language_is_a_clear_page_not_an_error(db, client, org_a):
    from sqlalchemy import delete

    from portal.econsent.models import ConsentText, RequestState, Topic
    from tests.econsent.helpers import confirm, open_link

    request, raw = _spanish_request(db, org_a, topics=(Topic.SUCCESS_STORY,))
    db.session.execute(delete(ConsentText).where(ConsentText.topic == Topic.SUCCESS_STORY))
    db.session.commit()
    open_link(client, raw)
    confirm(client)
    response = client.get("/my-consent/sign")
    assert response.status_code == 503 and b"No podemos mostrar este formulario ahora" in response.data
    assert client.post("/my-consent/sign", data={"answer_success_story": "yes"}).status_code == 503
    db.session.refresh(request)
    assert request.state is RequestState.OPENED and request.answers == []


def test_an_unknown_language_or_page_changes_nothing(db, client, org_a):
    from portal.econsent.models import Language
    from tests.econsent.helpers import open_link

    request, raw = _spanish_request(db, org_a)
    open_link(client, raw)
    for data in ({"language": "fr", "back": "sign"}, {"language": "", "back": "identity"}, {"back": "done"}):
        response = client.post("/my-consent/language", data=data)
        assert response.status_code == 302 and response.headers["Location"] == "/my-consent/confirm"
    db.session.refresh(request)
    assert request.language is Language.SPANISH
    assert b'<html lang="es">' in client.get("/my-consent/confirm").data
    # Only the patient's own pages are places to go back to: never an address from the form.
    for back in ("https://evil.example/", "//evil.example", "admin.home", "../staff"):
        response = client.post("/my-consent/language", data={"language": "en", "back": back})
        assert response.headers["Location"] == "/my-consent/confirm", back
    # A browser that asks for another language (Accept-Language) still reads the request's.
    page = client.get("/my-consent/confirm", headers={"Accept-Language": "fr-FR,de;q=0.8"})
    assert b'<html lang="en">' in page.data  # switched to English just above
