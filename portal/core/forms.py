"""Render a page holding a form: 422 when the submitted form has errors, else 200."""
from flask import render_template


def form_page(template: str, form, **context):
    """Bad input is a 4xx with the messages on the page, never a silent 200."""
    status = 422 if form.errors else 200
    return render_template(template, form=form, **context), status
