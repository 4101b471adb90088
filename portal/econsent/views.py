"""Staff and admin pages: ask a patient to sign, follow and manage requests, edit the wording.

A QR code or a tablet hand-over needs the link's token, which is never stored: it is shown once,
right after it was made (kept in the staff member's session until that page is shown).
"""

import uuid

import segno
from flask import Blueprint, Response, abort, flash, redirect, render_template, session, url_for
from flask_login import current_user

from portal.accounts.sessions import end_current_session
from portal.audit.services import AuditAction, record_access
from portal.consent.queries import selected_grantee
from portal.core.errors import UserError
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.phi import documents
from portal.core.time import now_utc
from portal.econsent import queries, services
from portal.econsent import session as patient_session
from portal.econsent.forms import ActionForm, KioskForm, ReissueForm, RequestForm, TextForm, request_form
from portal.econsent.i18n import init_babel
from portal.econsent.models import Channel, Language, PatientLink, Topic
from portal.referrals.queries import get_patient_or_404

bp = Blueprint("econsent", __name__)
bp.record_once(lambda state: init_babel(state.app))

_SHOW_ONCE = "econsent_new_link"


@bp.app_template_global()
def consent_requests_of(patient) -> list:
    """The patient chart's list of requests: (request, state shown), newest first (one statement)."""
    now = now_utc()
    return [(r, r.shown_state(now, revoked)) for r, revoked in queries.requests_of_patient(patient.id)]


def _show_once(request, raw: str) -> None:
    session[_SHOW_ONCE] = {"request": str(request.public_id), "t": raw}


@bp.route("/staff/patients/<uuid:patient_id>/consent-requests/new", methods=["GET", "POST"])
@requires(Permission.INTAKE_WORK)
def new_request(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    form = request_form(patient, RequestForm())
    status = 200
    if form.is_submitted():
        status = 422
        if form.validate():
            organization, clinician = selected_grantee(form.organization.data, form.clinician.data)
            try:
                created, raw = services.create_request(
                    current_user,
                    patient,
                    organization=organization,
                    clinician=clinician,
                    topics=form.chosen_topics(),
                    consent_expires_on=form.consent_expires_on.data,
                    channel=Channel(form.channel.data),
                    language=Language(form.language.data),
                )
            except UserError as exc:
                _attach(form, exc)
                status = exc.status
            else:
                return _after_link(created, raw)
    record_access(
        AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="ask_consent"
    )
    return render_template("econsent/new.html", patient=patient, form=form), status


def _after_link(request, raw: str):
    """E-mailed: back to the request. QR: the code, once. Tablet: sign out and hand over."""
    if request.channel is Channel.KIOSK:
        return _hand_over(services.start_kiosk(current_user, request, raw))
    if request.channel is Channel.QR:
        _show_once(request, raw)
        flash("Show the code to the patient to scan with their phone.", "success")
    else:
        flash("The link is on its way to the patient's e-mail. It works for one use.", "success")
    return redirect(url_for("econsent.detail", request_id=request.public_id))


def _hand_over(link: PatientLink):
    end_current_session("kiosk")
    patient_session.start(link, kiosk=True)
    return redirect(url_for("patient_consent.identity"))


def _attach(form, exc: UserError) -> None:
    field = getattr(form, exc.field, None) if exc.field else None
    if field is not None:
        field.errors = [*field.errors, exc.message]
    else:
        form.form_errors.append(exc.message)


@bp.get("/staff/consent-requests")
@requires(Permission.INTAKE_WORK)
def open_requests():
    page = queries.open_requests(cursor=cursor_arg(), per_page=per_page_arg())
    if page.items:
        record_access(AuditAction.PHI_READ, actor=current_user, view="open_consent_requests", rows=len(page.items))
    return render_template("econsent/open.html", page=page, now=now_utc())


@bp.get("/staff/consent-requests/<uuid:request_id>")
@requires(Permission.INTAKE_WORK)
def detail(request_id: uuid.UUID):
    request = queries.get_request_or_404(request_id)
    shown = session.get(_SHOW_ONCE)
    raw = None
    if isinstance(shown, dict) and shown.get("request") == str(request.public_id):
        raw = session.pop(_SHOW_ONCE)["t"]
    return _detail_page(request, raw=raw)


def _detail_page(request, *, raw: str | None = None, status: int = 200, **forms):
    """The request's page; after a refused action, with its message and the action's status."""
    consent = queries.current_consent(request)
    record_access(
        AuditAction.PHI_READ,
        actor=current_user,
        obj=request,
        patient_id=request.patient.public_id,
        view="consent_request",
    )
    url = services.link_url(raw) if raw else None
    return render_template(
        "econsent/detail.html",
        req=request,
        consent=consent,
        state=request.shown_state(now_utc(), bool(consent and consent.status.value == "revoked")),
        link=url,
        qr=segno.make(url, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff") if url else None,
        reissue_form=forms.get("reissue_form") or ReissueForm(formdata=None),
        action_form=ActionForm(formdata=None),
        kiosk_form=forms.get("kiosk_form") or KioskForm(formdata=None),
    ), status


@bp.post("/staff/consent-requests/<uuid:request_id>/resend")
@requires(Permission.INTAKE_WORK)
def resend(request_id: uuid.UUID):
    request = queries.get_request_or_404(request_id)
    form = ReissueForm()
    try:
        if not form.validate_on_submit():
            raise services.PatientConsentError("Choose how the patient gets the new link.")
        raw = services.reissue(current_user, request, Channel(form.channel.data))
    except UserError as exc:
        flash(exc.message, "error")
        return _detail_page(request, status=exc.status, reissue_form=form)
    if Channel(form.channel.data) is Channel.QR:
        _show_once(request, raw)
        flash("A new link is ready: the older one no longer works.", "success")
    else:
        flash("A new link is on its way to the patient's e-mail: the older one no longer works.", "success")
    return redirect(url_for("econsent.detail", request_id=request.public_id))


@bp.post("/staff/consent-requests/<uuid:request_id>/kiosk")
@requires(Permission.INTAKE_WORK)
def kiosk(request_id: uuid.UUID):
    request = queries.get_request_or_404(request_id)
    form = KioskForm()
    try:
        if not form.validate_on_submit():
            raise services.PatientConsentError("Tick the box to hand this device to the patient.")
        link = services.start_kiosk(current_user, request)
    except UserError as exc:
        flash(exc.message, "error")
        return _detail_page(request, status=exc.status, kiosk_form=form)
    return _hand_over(link)


@bp.post("/staff/consent-requests/<uuid:request_id>/cancel")
@requires(Permission.INTAKE_WORK)
def cancel(request_id: uuid.UUID):
    request = queries.get_request_or_404(request_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        services.cancel(current_user, request)
    except UserError as exc:
        flash(exc.message, "error")
        return _detail_page(request, status=exc.status)
    flash("Request cancelled: its link no longer works.", "success")
    return redirect(url_for("econsent.detail", request_id=request.public_id))


@bp.get("/staff/consent-requests/<uuid:request_id>/copy")
@requires(Permission.INTAKE_WORK)
def copy(request_id: uuid.UUID):
    request = queries.get_request_or_404(request_id)
    if request.document_id is None:
        abort(404)
    services.record_copy_download(request, by_staff=current_user)
    return _pdf(request)


def _pdf(request) -> Response:
    return Response(
        documents().open(request.document_id, request.patient.public_id),
        mimetype="application/pdf",
        headers={"Content-Disposition": "attachment; filename=consent-copy.pdf", "Cache-Control": "no-store"},
    )


# --- admins: the wording ---------------------------------------------------------------------


@bp.get("/admin/consent-texts")
@requires(Permission.CONSENT_TEXTS_MANAGE)
def texts():
    current = {language: queries.current_texts(language) for language in Language}
    return render_template("econsent/texts.html", current=current, topics=list(Topic), languages=list(Language))


@bp.route("/admin/consent-texts/<topic>/<language>", methods=["GET", "POST"])
@requires(Permission.CONSENT_TEXTS_MANAGE)
def edit_text(topic: str, language: str):
    try:
        topic_, language_ = Topic(topic), Language(language)
    except ValueError:
        abort(404)
    history = queries.text_history(topic_, language_)
    form = TextForm()
    status = 200
    if form.is_submitted():
        status = 422
        if form.validate():
            try:
                text = services.change_text(current_user, topic_, language_, title=form.title.data, body=form.body.data)
            except UserError as exc:
                _attach(form, exc)
                status = exc.status
            else:
                flash(f"Version {text.version} saved. Consents already signed keep the version they were signed on.")
                return redirect(url_for("econsent.edit_text", topic=topic_.value, language=language_.value))
    elif history:
        form.title.data, form.body.data = history[0].title, history[0].body
    return render_template("econsent/text.html", form=form, topic=topic_, language=language_, history=history), status
