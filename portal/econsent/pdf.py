"""The patient's signed copy: a PDF (reportlab, built-in Helvetica: no font files, no network).

It holds the exact text the patient read (``Wording.text``, block by block), their yes or no to
each part, the typed signature and time, the verification code, the SHA-256 of the text, and the
link to come back to (download the copy again, or stop sharing). Written in the patient's language.
"""

import io
from datetime import datetime
from xml.sax.saxutils import escape

from flask import current_app
from flask_babel import force_locale, format_datetime, gettext
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from portal.econsent.models import ConsentRequest, Topic
from portal.econsent.wording import Wording


def _latin1(value: str) -> str:
    """Helvetica covers Latin-1 (Spanish included); any other character is shown as "?"."""
    return value.encode("latin-1", "replace").decode("latin-1")


def signed_copy(
    request: ConsentRequest,
    wording: Wording,
    answers: dict[Topic, bool | None],
    *,
    signed_at: datetime,
    manage_url: str,
) -> bytes:
    styles = getSampleStyleSheet()
    body, heading, title, small = styles["BodyText"], styles["Heading2"], styles["Title"], styles["Code"]
    small.fontSize, small.leading = 8, 10

    def para(text: str, style=body) -> Paragraph:
        return Paragraph(escape(_latin1(text)), style)

    practice = current_app.config["PORTAL_NAME"]
    patient = request.patient
    with force_locale(wording.language.value):
        story = [
            para(wording.title, title),
            para(practice, styles["Heading3"]),
            para(gettext("Patient: %(name)s", name=f"{patient.given_name} {patient.family_name}")),
            Spacer(1, 0.15 * inch),
            *[para(p) for p in wording.intro],
        ]
        for section in wording.sections:
            story += [para(section.heading, heading), *[para(p) for p in section.paragraphs]]
            story.append(para(f"{section.question} [{section.yes}] [{section.no}]"))
            choice = section.yes if answers.get(section.topic) else section.no
            story.append(para(gettext("Your answer: %(answer)s", answer=choice), styles["Heading4"]))
        story += [
            Spacer(1, 0.15 * inch),
            para(wording.confirmation),
            para(wording.signature),
            para(gettext("Signed: %(name)s", name=request.signature_name), styles["Heading3"]),
            para(gettext("Date and time: %(when)s", when=format_datetime(signed_at, format="long"))),
            para(gettext("Identity confirmed with date of birth and phone number.")),
            Spacer(1, 0.2 * inch),
            para(gettext("Verification code: %(code)s", code=request.verification_code), heading),
            para(gettext("SHA-256 of the text you read: %(digest)s", digest=wording.digest), small),
            Spacer(1, 0.2 * inch),
            para(gettext("To get this copy again or to stop sharing, open this link:")),
            para(manage_url, small),
        ]
        buffer = io.BytesIO()
        doc = SimpleDocTemplate(
            buffer,
            pagesize=LETTER,
            title=_latin1(wording.title),
            author=_latin1(practice),
            subject=gettext("Signed copy"),
            leftMargin=0.9 * inch,
            rightMargin=0.9 * inch,
        )
        doc.build(story)
    return buffer.getvalue()
