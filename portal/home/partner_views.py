"""The referring partner's home ("what's new", then their referrals) and the referral page (one timeline).

These pages read across features (referrals, progress updates, outcome scores, consent), so they
live here, above them, while keeping their addresses and endpoint names (``referrals.home``,
``referrals.detail``, ...): they are routes of the referrals blueprint, added from this module
before the app registers it (``portal.home.views`` imports this module). Referrals itself keeps
submitting, attachments and the look-up.
"""

import uuid

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.audit.services import AuditAction, record_access
from portal.consent.services import record_disclosure
from portal.core.errors import UserError
from portal.core.paging import Page, cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.unit_of_work import begin_writing
from portal.home import queries
from portal.home.timeline import referral_story
from portal.referrals import services
from portal.referrals.common import audit_read
from portal.referrals.forms import CancelForm, LookupForm, NoteForm
from portal.referrals.lifecycle import PARTNER_CANCELLABLE, Status
from portal.referrals.queries import (
    get_referral_or_404,
    normalise_reference,
    organization_clinicians,
    partner_referrals,
)
from portal.referrals.views import bp

# The list's filters: "open" by default; "new" (news for you) and "quiet" (open, no change for months).
FILTERS = ("open", "new", "quiet", "")


@bp.get("/partner/")
@requires(Permission.PARTNER_HOME)
def home():
    """What's new since the partner last looked, then their organization's referrals, paged and searchable."""
    status = request.args.get("status", "open")
    status = status if status in FILTERS or status in set(Status) else "open"
    clinician = request.args.get("clinician", "")
    search = request.args.get("reference", "").strip()
    reference = normalise_reference(search) if search else None
    news = queries.partner_news(current_user)
    if search and reference is None:
        page = Page(items=[], per_page=per_page_arg())
    else:  # a reference names one referral: look for it whatever its status
        page = partner_referrals(
            current_user,
            status="" if reference or status == "new" else status,
            clinician=clinician,
            reference=reference,
            among=queries.news_ids(current_user) if status == "new" and not reference else None,
            cursor=cursor_arg(),
            per_page=per_page_arg(),
        )
    rows = len(page.items) + len(news.shown)
    if rows:
        record_access(AuditAction.PHI_READ, actor=current_user, view="partner_referrals", rows=rows)
    return render_template(
        "referrals/home.html",
        organization=current_user.organization,
        news=news,
        news_days=queries.NEWS_DAYS,
        page=page,
        status=status,
        clinician=clinician,
        search=search,
        statuses=list(Status),
        clinicians=organization_clinicians(current_user),
        lookup_form=LookupForm(),
    )


def _new_after(referral):
    """News is what happened after the partner last opened the referral, and within the news window."""
    seen = queries.last_seen(current_user, referral)
    since = queries.news_since()
    return max(seen, since) if seen else since


@bp.get("/partner/referrals/<uuid:referral_id>")
@requires(Permission.REFERRALS_FOLLOW)
def detail(referral_id: uuid.UUID):
    referral = get_referral_or_404(current_user, referral_id)
    new_after = _new_after(referral)
    if queries.has_news(current_user, referral):
        begin_writing()  # opening the referral marks its news seen: this GET writes
        services.mark_seen(current_user, referral)
    return _detail_page(referral, new_after)


def _detail_page(referral, new_after, note_form=None, cancel_form=None, status=200):
    audit_read(current_user, referral, "partner")
    story = referral_story(current_user, referral, new_after)
    for item in [*story.updates, *story.scores]:  # the accounting of disclosures is built from these
        record_disclosure(current_user, item, referral.patient.public_id)
    return render_template(
        "referrals/detail.html",
        referral=referral,
        story=story,
        note_form=note_form or NoteForm(),
        cancel_form=cancel_form or CancelForm(),
        can_cancel=referral.status in PARTNER_CANCELLABLE,
    ), status


@bp.post("/partner/referrals/<uuid:referral_id>/notes")
@requires(Permission.REFERRALS_FOLLOW)
def add_note(referral_id: uuid.UUID):
    referral = get_referral_or_404(current_user, referral_id)
    form = NoteForm()
    status = 422
    if form.validate_on_submit():
        try:
            services.add_note(current_user, referral, form.note.data, request.files.getlist(form.attachments.name))
        except UserError as exc:  # an upload refused (507 when the disk is full), or the referral closed meanwhile
            form.attachments.errors.append(exc.message)
            status = exc.status
        else:
            flash("Added to the referral's timeline.", "success")
            return redirect(url_for("referrals.detail", referral_id=referral.public_id))
    return _detail_page(referral, _new_after(referral), note_form=form, status=status)


@bp.post("/partner/referrals/<uuid:referral_id>/cancel")
@requires(Permission.REFERRALS_FOLLOW)
def cancel(referral_id: uuid.UUID):
    referral = get_referral_or_404(current_user, referral_id)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            services.cancel_by_partner(current_user, referral, form.reason.data)
        except services.ReferralError as exc:
            flash(exc.message, "error")  # shown even when the page offers no cancel form
        else:
            flash(f"Referral {referral.reference} is cancelled.", "success")
            return redirect(url_for("referrals.detail", referral_id=referral.public_id))
    return _detail_page(referral, _new_after(referral), cancel_form=form, status=422)
