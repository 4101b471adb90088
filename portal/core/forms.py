"""Form helpers every feature uses: input filters, and the page that answers a submitted form."""

import unicodedata

from flask import render_template


def clean_text(value):
    """NFC, trimmed, no control characters except line breaks and tabs."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n")
    return "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()


def one_line(value):
    """clean_text, and any run of whitespace (line breaks included) becomes one space."""
    value = clean_text(value)
    return " ".join(value.split()) if isinstance(value, str) else value


def form_status(form) -> int:
    """Bad input is a 4xx with the messages on the page, never a silent 200."""
    return 422 if form.errors else 200


def form_page(template: str, form, *, status: int | None = None, **context):
    """The page holding ``form``: 422 when the submitted form has errors (or ``status``), else 200."""
    return render_template(template, form=form, **context), status or form_status(form)
