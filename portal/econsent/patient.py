"""The patient's pages (no account): open the link, confirm who you are, answer and sign, keep a copy,
or later stop sharing. English or Spanish, as the patient chooses.

Every page is public and reads its request only through the link named in the session cookie
(portal.econsent.session): no id in any URL, so a link for one request never opens another. Every
page, refusal and download is audited with the patient as actor ("patient through request X").
"""

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import force_locale, get_locale, gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from portal.accounts.sessions import end_current_session
from portal.audit.services import AuditAction, record_access
from portal.core.errors import UserError
from portal.core.permissions import public
from portal.core.phi import documents
from portal.core.time import now_utc
from portal.core.unit_of_work import begin_writing
from portal.econsent import queries, services
from portal.econsent import session as patient_session
from portal.econsent.forms import IdentityForm, LanguageForm, SignForm, WithdrawForm
from portal.econsent.i18n import use_language
from portal.econsent.models import OPEN_STATES, Language, LinkPurpose, PatientLink, RequestState
from portal.econsent.services import LinkDead, PatientActor, WordingChanged
from portal.econsent.wording import build
from portal.extensions import limiter

bp = Blueprint("patient_consent", __name__, url_prefix="/my-consent")
# Pages the language switch may return to.
PAGES = ("identity", "sign", "done", "manage")


def _limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.after_request
def never_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.errorhandler(CSRFError)
def form_expired(exc):
    """A form sent without its valid token (a page left open too long, or posted from elsewhere):
    nothing was done; said on the patient's page, in their language, with the way back (400)."""
    link = _current()
    if link is None:
        return _problem("missing")
    back = request.path if request.endpoint in {f"patient_consent.{p}" for p in PAGES} else None
    page = render_template(
        "econsent/patient/problem.html",
        reason="form",
        link=link,
        back=back or url_for("patient_consent.identity"),
        **_chrome(None),
    )
    return page, 400


def _audit(link: PatientLink, view: str) -> None:
    req = link.request
    record_access(AuditAction.PHI_READ, actor=PatientActor(req), obj=req, patient_id=req.patient.public_id, view=view)


def _current() -> PatientLink | None:
    link_id = patient_session.link_id()
    link = queries.link_by_public_id(link_id) if link_id else None
    if link is not None:
        use_language(patient_session.language() or link.request.language)
    return link


def _problem(reason: str, link: PatientLink | None = None):
    """A page that says why nothing can be done here and what to do instead (in both languages
    when we do not know the patient's)."""
    status = {"missing": 404, "unknown": 404, "unavailable": 503}.get(reason, 410)
    if reason == "used" and link is not None:
        reason = _why_used(link)
    return render_template("econsent/patient/problem.html", reason=reason, link=link, **_chrome(None)), status


def _why_used(link: PatientLink) -> str:
    """What a patient holding a used link needs to hear: the practice cancelled the request, a newer
    link replaced this one, sharing already stopped (a manage link), or it was answered ("used")."""
    req = link.request
    if req.state is RequestState.CANCELLED:
        return "cancelled"
    newest = services.newest_link(req, link.purpose)
    if newest is not None and newest.id != link.id:
        return "replaced"
    if link.purpose is LinkPurpose.MANAGE:
        return "stopped"
    return "used"


def _chrome(back: str | None) -> dict:
    form = LanguageForm()
    form.back.data = back or ""
    return {
        "practice": current_app.config["PORTAL_NAME"],
        "language_form": form,
        "languages": list(Language),
        "lang_code": str(get_locale()),
    }


@bp.get("/open")
@public
@limiter.limit(_limit)
def open_link():
    """Take the token from the URL into the session, then drop it from the address bar."""
    link = services.find_link(request.args.get("t", ""))
    if link is None:
        return _problem("unknown")
    reason = link.dead_reason(now_utc())
    if reason is not None:
        record_access(
            services.EConsentAction.LINK_OPENED,
            actor=PatientActor(link.request),
            obj=link.request,
            patient_id=link.request.patient.public_id,
            dead=reason,
        )
        use_language(link.request.language)
        return _problem(reason, link)
    if current_user.is_authenticated:  # a shared computer: nobody stays signed in beside the patient
        begin_writing()  # ending the session is a write in this GET
        end_current_session("patient_link")
    patient_session.start(link)
    services.mark_opened(link)
    return redirect(url_for("patient_consent.identity"))


@bp.route("/confirm", methods=["GET", "POST"])
@public
@limiter.limit(_limit, methods=["POST"])
def identity():
    link = _current()
    if link is None:
        return _problem("missing")
    reason = link.dead_reason(now_utc())
    if reason is not None:
        return _problem(reason, link)
    if patient_session.is_confirmed():
        return _next_page(link)
    form = IdentityForm()
    status = 200
    if form.is_submitted():
        status = 422
        valid = form.validate()  # the CSRF token; the fields' own checks follow (validate() would reset them)
        born, digits = form.birth_date(), form.phone_digits()
        if valid and born is not None and digits is not None:
            if services.check_identity(link, born, digits):
                patient_session.confirm_identity()
                return _next_page(link)
            if link.locked_at is not None:
                return _problem("locked", link)
            form.form_errors.append(services.identity_failed_message(link))
    _audit(link, "patient_identity")
    return render_template("econsent/patient/identity.html", form=form, link=link, **_chrome("identity")), status


def _next_page(link: PatientLink):
    if link.purpose is LinkPurpose.MANAGE:
        return redirect(url_for("patient_consent.manage"))
    if link.request.state in (RequestState.SIGNED, RequestState.DECLINED):
        return redirect(url_for("patient_consent.done"))
    return redirect(url_for("patient_consent.sign"))


def _confirmed_link(purpose: LinkPurpose):
    """The session's link if its identity was confirmed and it is of this kind; else a response."""
    link = _current()
    if link is None:
        return None, _problem("missing")
    if link.purpose is not purpose or not patient_session.is_confirmed():
        reason = link.dead_reason(now_utc())
        if reason is not None:
            return None, _problem(reason, link)
        return None, redirect(url_for("patient_consent.identity"))
    return link, None


@bp.route("/sign", methods=["GET", "POST"])
@public
def sign():
    link, refusal = _confirmed_link(LinkPurpose.SIGN)
    if refusal is not None:
        return refusal
    req = link.request
    if req.state in (RequestState.SIGNED, RequestState.DECLINED):
        return redirect(url_for("patient_consent.done"))
    reason = link.dead_reason(now_utc()) or (None if req.state in OPEN_STATES else "used")
    if reason is not None:
        return _problem(reason, link)
    wording, fallback_note = _wording(req)
    if wording is None:
        return _problem("unavailable", link)
    form = SignForm()
    status = 200
    if form.is_submitted():
        status = 422
        if form.validate():
            try:
                services.answer(
                    link,
                    wording,
                    shown_digest=form.text_digest.data,
                    answers=form.answers(),
                    signature_name=form.signature_name.data,
                    confirmed=bool(form.confirm.data),
                )
            except LinkDead as exc:
                return _problem(exc.reason, link)
            except WordingChanged as exc:
                form.form_errors.append(exc.message)
                status = exc.status
            except UserError as exc:
                field = getattr(form, exc.field, None) if exc.field else None
                (field.errors if field is not None else form.form_errors).append(exc.message)
                status = exc.status
            else:
                return redirect(url_for("patient_consent.done"))
    form.text_digest.data = wording.digest  # the text this page shows, now
    _audit(link, "patient_sign")
    return render_template(
        "econsent/patient/sign.html",
        form=form,
        wording=wording,
        link=link,
        fallback_note=fallback_note,
        **_chrome("sign"),
    ), status


def _wording(req):
    """The text to read and sign, in the patient's language: (wording, None). If that language lacks
    the text of a topic asked about, the whole page is in English instead, with a note in the
    patient's language: (wording, (language code, note)). (None, None) if even English lacks one."""
    chosen = Language(patient_session.language() or req.language)
    for language in dict.fromkeys((chosen, Language.ENGLISH)):
        texts = queries.current_texts(language)
        if all(topic in texts for topic in req.topics):
            if language is chosen:
                return build(req, language, texts), None
            with force_locale(chosen.value):
                note = gettext("This form is not ready in your language yet, so it is shown in English.")
            use_language(language)
            return build(req, language, texts), (chosen.value, note)
    return None, None


@bp.get("/done")
@public
def done():
    link, refusal = _confirmed_link(LinkPurpose.SIGN)
    if refusal is not None:
        return refusal
    req = link.request
    if req.state not in (RequestState.SIGNED, RequestState.DECLINED):
        return redirect(url_for("patient_consent.sign"))
    _audit(link, "patient_done")
    return render_template(
        "econsent/patient/done.html",
        link=link,
        answers=req.answers,
        kiosk=patient_session.is_kiosk(),
        finish_form=LanguageForm(),
        **_chrome("done"),
    )


@bp.get("/copy.pdf")
@public
def copy():
    link = _current()
    if link is None or not patient_session.is_confirmed():
        return _problem("missing")
    req = link.request
    if req.document_id is None or patient_session.is_kiosk():
        return _problem("missing")
    services.record_copy_download(req)
    return Response(
        documents().open(req.document_id, req.patient.public_id),
        mimetype="application/pdf",
        headers={"Content-Disposition": "attachment; filename=consent-copy.pdf"},
    )


@bp.route("/manage", methods=["GET", "POST"])
@public
@limiter.limit(_limit, methods=["POST"])
def manage():
    link, refusal = _confirmed_link(LinkPurpose.MANAGE)
    if refusal is not None:
        return refusal
    form = WithdrawForm()
    status = 200
    if form.is_submitted():
        status = 422
        if form.validate():
            try:
                services.withdraw(link, confirmed=bool(form.confirm.data))
            except LinkDead as exc:
                return _problem(exc.reason, link)
            except UserError as exc:
                form.form_errors.append(exc.message)
                status = exc.status
            else:
                return redirect(url_for("patient_consent.manage"))
    consent = queries.current_consent(link.request)
    _audit(link, "patient_manage")
    return render_template(
        "econsent/patient/manage.html",
        form=form,
        link=link,
        consent=consent,
        is_sharing=bool(consent and consent.status.value == "active"),
        answers=link.request.answers,
        kiosk=patient_session.is_kiosk(),
        **_chrome("manage"),
    ), status


@bp.post("/language")
@public
def language():
    form = LanguageForm()
    link = _current()
    if link is None:
        return _problem("missing")
    if not form.validate_on_submit():
        return redirect(url_for("patient_consent.identity"))
    chosen = Language(form.language.data)
    patient_session.choose_language(chosen)
    if link.request.state in (RequestState.SENT, RequestState.OPENED):
        services.choose_language(link, chosen)  # remembered on the request while it waits for an answer
    back = form.back.data if form.back.data in PAGES else "identity"
    return redirect(url_for(f"patient_consent.{back}"))


@bp.post("/finish")
@public
def finish():
    """Done on a shared device: forget everything about this patient in this browser."""
    link = _current()
    LanguageForm().validate_on_submit()  # the CSRF token: refused or not, the session ends
    if link is not None:
        _audit(link, "patient_finished")
    patient_session.end()
    return render_template("econsent/patient/finished.html", **_chrome(None))
