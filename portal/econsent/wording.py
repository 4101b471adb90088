"""The exact text a patient reads before signing, built once for the page, the hash and the PDF.

The sign page renders these blocks and nothing else of substance, the signed copy prints them,
and ``digest`` is the SHA-256 of ``text``, the same blocks joined in a fixed way. So the hash a
signature stores is the hash of what was on the screen, and anyone holding the PDF can check it
(the text section of the copy is ``text``, line for line).
"""

import hashlib
from dataclasses import dataclass

from flask import current_app
from flask_babel import force_locale, format_date, gettext

from portal.econsent.models import ConsentRequest, ConsentText, Language, Topic


@dataclass(frozen=True)
class Section:
    topic: Topic
    text_id: int
    heading: str
    paragraphs: tuple[str, ...]
    question: str
    yes: str
    no: str


@dataclass(frozen=True)
class Wording:
    language: Language
    title: str
    intro: tuple[str, ...]
    sections: tuple[Section, ...]
    confirmation: str
    signature: str

    @property
    def text(self) -> str:
        """Every block in order, blank lines between them: what is hashed and printed."""
        blocks = [self.title, *self.intro]
        for section in self.sections:
            blocks += [section.heading, *section.paragraphs, f"{section.question} [{section.yes}] [{section.no}]"]
        blocks += [self.confirmation, self.signature]
        return "\n\n".join(blocks)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def section(self, topic: Topic) -> Section:
        return next(s for s in self.sections if s.topic is topic)


def build(request: ConsentRequest, language: Language, texts: dict[Topic, ConsentText]) -> Wording:
    """The wording of ``request`` in ``language`` from the given (newest, or signed) text versions."""
    practice = current_app.config["PORTAL_NAME"]
    organization = request.organization.name
    with force_locale(language.value):
        intro = [
            gettext(
                "%(practice)s is caring for you. %(organization)s sent you to us.",
                practice=practice,
                organization=organization,
            ),
            gettext(
                "%(organization)s would like to know how you are doing. You choose what we share with them. "
                "Say yes or no to each part below.",
                organization=organization,
            ),
        ]
        if request.clinician is not None:
            intro.append(
                gettext(
                    "We will share only with %(clinician)s at %(organization)s.",
                    clinician=request.clinician.full_name,
                    organization=organization,
                )
            )
        if request.consent_expires_on is not None:
            intro.append(
                gettext(
                    "If you say yes, it lasts until %(date)s.",
                    date=format_date(request.consent_expires_on, format="long"),
                )
            )
        else:
            intro.append(gettext("If you say yes, it lasts until you stop it."))
        intro.append(
            gettext("You can change your mind at any time. Use the link on your copy of this form, or call us.")
        )
        sections = tuple(
            Section(
                topic=topic,
                text_id=texts[topic].id,
                heading=texts[topic].title,
                paragraphs=tuple(texts[topic].paragraphs),
                question=gettext("Is this OK with you?"),
                yes=gettext("Yes"),
                no=gettext("No"),
            )
            for topic in request.topics
        )
        return Wording(
            language=language,
            title=gettext("Sharing your health information"),
            intro=tuple(intro),
            sections=sections,
            confirmation=gettext(
                "I read this page. The choices above are mine. I know I can change my mind at any time."
            ),
            signature=gettext("To sign, type your full name. This works like signing on paper."),
        )
