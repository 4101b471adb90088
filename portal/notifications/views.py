"""Each user's notification preferences, and the admins' view of the outbox."""

import uuid

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.core.paging import cursor_arg
from portal.core.permissions import Permission, public, requires
from portal.extensions import csrf
from portal.notifications import queries, services
from portal.notifications.catalog import categories_for
from portal.notifications.forms import chosen_modes, preferences_form
from portal.notifications.models import OutboxState
from portal.notifications.unsubscribe import read_token, turn_off

bp = Blueprint("notifications", __name__)


@bp.route("/account/notifications", methods=["GET", "POST"])
@requires(Permission.ACCOUNT_MANAGE)
def preferences():
    categories = categories_for(current_user.role)
    form = preferences_form(categories, services.preferences_of(current_user))
    if form.validate_on_submit():
        services.set_preferences(current_user, chosen_modes(form, categories))
        flash("Your notification choices are saved.", "success")
        return redirect(url_for("notifications.preferences"))
    return render_template("notifications/preferences.html", form=form, categories=categories)


@bp.get("/admin/outbox")
@requires(Permission.OUTBOX_MANAGE)
def outbox():
    return render_template(
        "notifications/outbox.html",
        counts=queries.counts_by_state(),
        dead=queries.messages_in(OutboxState.DEAD, cursor=cursor_arg("dead"), param="dead"),
        pending=queries.messages_in(OutboxState.PENDING, cursor=cursor_arg("pending"), param="pending"),
    )


@bp.post("/admin/outbox/<uuid:message_id>/retry")
@requires(Permission.OUTBOX_MANAGE)
def retry(message_id: uuid.UUID):
    message = queries.get_message_or_404(message_id)
    if message.state not in (OutboxState.DEAD, OutboxState.PENDING):
        flash("Only dead or waiting messages can be retried.", "error")
    else:
        services.retry(current_user, message)
        flash(f"The “{message.template}” message to {message.recipient} will be sent again shortly.", "success")
    return redirect(url_for("notifications.outbox"))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@public
@csrf.exempt  # RFC 8058: the mail provider POSTs "List-Unsubscribe=One-Click" without a session or a token
def unsubscribe(token: str):
    """The List-Unsubscribe link: a page with one button (GET), or the one-click action itself (POST).
    The signed token is the authority; no sign-in, and only the e-mail's own category changes."""
    found = read_token(token)
    if found is None:
        abort(404)
    user_id, public_id, category = found
    done = False
    if request.method == "POST":
        turn_off(user_id, public_id, category)
        done = True
    return render_template("notifications/unsubscribe.html", category=category, done=done)
