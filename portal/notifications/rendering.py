"""Render an outbox row into a multipart (plain text + HTML) e-mail.

Templates live in templates/email/: <name>.txt defines a ``subject`` block and the text
body, <name>.html the HTML body; both extend a small layout. A missing context key is an
error (StrictUndefined), never a silently empty sentence.
"""

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import cache
from pathlib import Path

from flask import current_app
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal.core.time import now_utc
from portal.notifications.catalog import kind_of
from portal.notifications.unsubscribe import unsubscribe_url

EMAIL_TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "email"
PREFERENCES_PATH = "/account/notifications"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(EMAIL_TEMPLATES),
        autoescape=select_autoescape(["html"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def template_names() -> set[str]:
    """Names of the e-mails on disk (files starting with "_" are layouts)."""
    return {p.stem for p in EMAIL_TEMPLATES.glob("*.txt") if not p.name.startswith("_")}


def _globals(template: str) -> dict:
    base_url = current_app.config["PORTAL_BASE_URL"].rstrip("/")
    return {
        "portal_name": current_app.config["PORTAL_NAME"],
        "base_url": base_url,
        "preferences_url": base_url + PREFERENCES_PATH,
        "is_security": kind_of(template).is_security,
    }


def render_subject(template: str, context: dict) -> str:
    txt = environment().get_template(f"{template}.txt")
    ctx = {**context, **_globals(template)}
    subject = "".join(txt.blocks["subject"](txt.new_context(ctx)))
    # One line, whatever the template or a value did: no header injection.
    return " ".join(subject.split())


def render_body_text(template: str, context: dict) -> str:
    """The plain-text body of one message without the layout around it: what a digest keeps of it."""
    txt = environment().get_template(f"{template}.txt")
    ctx = {**context, **_globals(template), "subject": render_subject(template, context)}
    return "".join(txt.blocks["body"](txt.new_context(ctx))).strip()


def render(template: str, context: dict) -> Rendered:
    kind_of(template)  # unknown names fail loudly
    env = environment()
    subject = render_subject(template, context)
    ctx = {**context, **_globals(template), "subject": subject}
    return Rendered(
        subject=subject,
        text=env.get_template(f"{template}.txt").render(ctx),
        html=env.get_template(f"{template}.html").render(ctx),
    )


def build_message(*, message_id: str, recipient: str, template: str, context: dict) -> EmailMessage:
    """The e-mail for one outbox row. Its Message-ID is stable, so a redelivery is recognisable."""
    rendered = render(template, context)
    cfg = current_app.config
    sender = cfg["MAIL_FROM"]
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = formataddr((cfg["PORTAL_NAME"], sender))
    msg["To"] = recipient
    msg["Date"] = format_datetime(now_utc())
    msg["Message-ID"] = f"<{message_id}@{sender.rpartition('@')[2] or 'portal'}>"
    msg["Auto-Submitted"] = "auto-generated"
    kind = kind_of(template)
    one_click = unsubscribe_url(recipient, kind.category) if kind.category else None
    if one_click:  # RFC 8058: a signed link that turns off this category only, without signing in
        msg["List-Unsubscribe"] = f"<{one_click}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    elif not kind.is_security:  # a digest (several categories), or no account: the preferences page
        msg["List-Unsubscribe"] = f"<{_globals(template)['preferences_url']}>"
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg
