"""Score entry (staff), instruments (admin), the partner organization report and staff analytics."""

import uuid

from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.audit.services import AuditAction, record_access
from portal.core.errors import UserError
from portal.core.formatting import local_date
from portal.core.forms import form_page
from portal.core.permissions import Permission, requires
from portal.core.time import practice_today
from portal.extensions import db
from portal.outcomes import analytics, exports, queries, services
from portal.outcomes.charts import episode_charts, funnel_chart, trend_chart
from portal.outcomes.forms import InstrumentForm, RangeForm, ScoreBatchForm, ScoreForm
from portal.outcomes.models import Phase
from portal.outcomes.reports import DateRange, partner_report
from portal.partners.models import Organization
from portal.referrals.queries import get_referral_or_404

bp = Blueprint("outcomes", __name__)


def _range_form() -> tuple[RangeForm, DateRange]:
    form = RangeForm(formdata=request.args)
    default = DateRange.default(practice_today())
    if not form.validate():
        return form, default
    return form, DateRange(form.start.data or default.start, form.end.data or default.end)


def _download(body, mimetype: str, name: str) -> Response:
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f"attachment; filename={name}"})


# --- scores (staff) ---------------------------------------------------------------------


@bp.route("/staff/episodes/<uuid:referral_id>/scores", methods=["GET", "POST"])
@requires(Permission.INTAKE_WORK)
def episode_scores(referral_id: uuid.UUID):
    """All the instruments of a visit in one form; a POST naming one ``instrument`` records that one score."""
    referral = get_referral_or_404(current_user, referral_id)
    instruments = queries.active_instruments()
    if request.method == "POST" and "instrument" in request.form:
        return _one_score(referral, instruments)
    form = ScoreBatchForm(instruments)
    status = 422
    if form.validate_on_submit():
        try:
            recorded = services.record_scores(
                current_user, referral, form.values, Phase(form.phase.data), form.measured_on.data, form.visits.data
            )
        except services.OutcomeError as exc:
            (form.measured_on.errors if exc.field == "measured_on" else form.form_errors).append(exc.message)
        else:
            codes = ", ".join(item.instrument.code for item in recorded)
            flash(f"Recorded for {referral.reference}: {codes}.", "success")
            return redirect(url_for("outcomes.episode_scores", referral_id=referral.public_id))
    return _scores_page(referral, form, status if request.method == "POST" else 200)


def _one_score(referral, instruments):
    form = ScoreForm(instruments)
    if form.validate_on_submit():
        try:
            services.record_score(
                current_user,
                referral,
                form.chosen,
                Phase(form.phase.data),
                form.measured_on.data,
                float(form.score.data),
                form.visits.data,
            )
        except services.OutcomeError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"{form.chosen.code} score recorded for {referral.reference}.", "success")
            return redirect(url_for("outcomes.episode_scores", referral_id=referral.public_id))
    batch = ScoreBatchForm(instruments)
    batch.form_errors.extend(
        f"{form[name].label.text}: {' '.join(errors)}" if name else " ".join(errors)
        for name, errors in form.errors.items()
        if name != "csrf_token"
    )
    return _scores_page(referral, batch, 422)


def _scores_page(referral, form, status):
    record_access(
        AuditAction.PHI_READ,
        actor=current_user,
        obj=referral,
        patient_id=referral.patient.public_id,
        view="episode_scores",
    )
    scores = queries.scores_for_episode(referral)
    return render_template(
        "outcomes/episode.html",
        form=form,
        referral=referral,
        scores=scores,
        removals=queries.recent_removals(referral),
        undo_minutes=services.UNDO_MINUTES,
        visits=queries.visits_for_episode(referral),
        episodes=episode_charts(scores),
    ), status


@bp.get("/staff/scores/<uuid:score_id>/delete")
@requires(Permission.INTAKE_WORK)
def confirm_delete_score(score_id: uuid.UUID):
    """Removing a score asks first (the button on the list leads here)."""
    item = queries.get_score_or_404(score_id)
    referral = get_referral_or_404(current_user, item.referral.public_id)
    return render_template(
        "outcomes/remove_score.html", item=item, referral=referral, undo_minutes=services.UNDO_MINUTES
    )


@bp.post("/staff/scores/<uuid:score_id>/delete")
@requires(Permission.INTAKE_WORK)
def delete_score(score_id: uuid.UUID):
    item = queries.get_score_or_404(score_id)
    referral = item.referral
    code = item.instrument.code
    services.delete_score(current_user, item)
    flash(f"{code} score removed. You can undo this for {services.UNDO_MINUTES} minutes below.", "success")
    return redirect(url_for("outcomes.episode_scores", referral_id=referral.public_id))


@bp.post("/staff/episodes/<uuid:referral_id>/removals/<uuid:removal_id>/undo")
@requires(Permission.INTAKE_WORK)
def undo_score_removal(referral_id: uuid.UUID, removal_id: uuid.UUID):
    referral = get_referral_or_404(current_user, referral_id)
    removal = queries.get_removal_or_404(referral, removal_id)
    try:
        item = services.undo_removal(current_user, removal, referral)
    except UserError as exc:
        flash(exc.message, "error")
        return _scores_page(referral, ScoreBatchForm(queries.active_instruments()), exc.status)
    flash(f"{item.instrument.code} score of {local_date(item.measured_on)} is back.", "success")
    return redirect(url_for("outcomes.episode_scores", referral_id=referral.public_id))


# --- instruments (admin) ------------------------------------------------------------------


def _instrument_data(form: InstrumentForm) -> dict:
    return {
        "code": form.code.data,
        "name": form.name.data,
        "min_score": float(form.min_score.data),
        "max_score": float(form.max_score.data),
        "is_higher_better": form.is_higher_better.data,
        "mcid": float(form.mcid.data),
        "mcid_citation": form.mcid_citation.data,
        "is_active": form.is_active.data,
    }


@bp.route("/admin/instruments", methods=["GET", "POST"])
@requires(Permission.INSTRUMENTS_MANAGE)
def instruments():
    form = InstrumentForm()
    if form.validate_on_submit():
        try:
            instrument = services.save_instrument(current_user, None, _instrument_data(form))
        except services.OutcomeError as exc:
            form.code.errors.append(str(exc))
        else:
            flash(f"Instrument {instrument.code} added.", "success")
            return redirect(url_for("outcomes.instruments"))
    return form_page("outcomes/instruments.html", form, instruments=queries.all_instruments())


@bp.route("/admin/instruments/<uuid:instrument_id>", methods=["GET", "POST"])
@requires(Permission.INSTRUMENTS_MANAGE)
def instrument(instrument_id: uuid.UUID):
    item = queries.get_instrument_or_404(instrument_id)
    form = InstrumentForm(obj=item)
    if form.validate_on_submit():
        try:
            services.save_instrument(current_user, item, _instrument_data(form))
        except services.OutcomeError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"Instrument {item.code} saved.", "success")
            return redirect(url_for("outcomes.instruments"))
    return form_page("outcomes/instrument.html", form, instrument=item)


# --- the partner organization report ------------------------------------------------------------


def _report_page(org: Organization, endpoint: str, **url_args):
    form, period = _range_form()
    report = partner_report(org, period)
    links = {
        fmt: url_for(f"{endpoint}_{fmt}", start=period.start.isoformat(), end=period.end.isoformat(), **url_args)
        for fmt in ("csv", "pdf")
    }
    return form_page("outcomes/report.html", form, report=report, links=links)


def _report_export(org: Organization, fmt: str):
    form, period = _range_form()
    if form.errors:
        return form_page("outcomes/report.html", form, report=partner_report(org, period), links={})
    report = partner_report(org, period)
    record_access(
        AuditAction.REPORT_EXPORTED,
        actor=current_user,
        obj=org,
        report="partner",
        format=fmt,
        start=period.start.isoformat(),
        end=period.end.isoformat(),
    )
    name = f"referral-outcomes-{period.start.isoformat()}-{period.end.isoformat()}.{fmt}"
    if fmt == "csv":
        return _download(exports.partner_csv(report), "text/csv", name)
    return _download(exports.partner_pdf(report, current_app.config["PORTAL_NAME"]), "application/pdf", name)


@bp.get("/partner/report")
@requires(Permission.REPORTS_VIEW)
def partner_report_page():
    return _report_page(current_user.organization, "outcomes.partner_report")


@bp.get("/partner/report.csv")
@requires(Permission.REPORTS_VIEW)
def partner_report_csv():
    return _report_export(current_user.organization, "csv")


@bp.get("/partner/report.pdf")
@requires(Permission.REPORTS_VIEW)
def partner_report_pdf():
    return _report_export(current_user.organization, "pdf")


def _organization_or_404(org_id: uuid.UUID) -> Organization:
    return db.first_or_404(select(Organization).where(Organization.public_id == org_id))


@bp.get("/staff/reports/organizations/<uuid:org_id>")
@requires(Permission.ANALYTICS_VIEW)
def organization_report(org_id: uuid.UUID):
    return _report_page(_organization_or_404(org_id), "outcomes.organization_report", org_id=org_id)


@bp.get("/staff/reports/organizations/<uuid:org_id>.csv")
@requires(Permission.ANALYTICS_VIEW)
def organization_report_csv(org_id: uuid.UUID):
    return _report_export(_organization_or_404(org_id), "csv")


@bp.get("/staff/reports/organizations/<uuid:org_id>.pdf")
@requires(Permission.ANALYTICS_VIEW)
def organization_report_pdf(org_id: uuid.UUID):
    return _report_export(_organization_or_404(org_id), "pdf")


# --- staff analytics ----------------------------------------------------------------------

TREND_SOURCES = 5


@bp.get("/staff/analytics")
@requires(Permission.ANALYTICS_VIEW)
def analytics_page():
    form, period = _range_form()
    today = practice_today()
    rows = analytics.sources(period)
    ranked, unranked = analytics.ranked_by_outcomes(rows)
    top = rows[:TREND_SOURCES]
    months = analytics.months_back(today)
    trend = analytics.monthly_trend(today, [r.organization.id for r in top])
    funnel = analytics.practice_funnel(period)
    return form_page(
        "outcomes/analytics.html",
        form,
        period=period,
        rows=rows,
        ranked=ranked,
        unranked=unranked,
        trend=trend_chart(months, [(r.organization.name, trend[r.organization.id]) for r in top]),
        funnel=funnel,
        funnel_chart=funnel_chart(funnel),
        drops=analytics.dropped_partners(today),
        csv_link=url_for("outcomes.analytics_csv", start=period.start.isoformat(), end=period.end.isoformat()),
    )


@bp.get("/staff/analytics.csv")
@requires(Permission.ANALYTICS_VIEW)
def analytics_csv():
    _, period = _range_form()
    body = exports.analytics_csv(
        period,
        analytics.sources(period),
        analytics.dropped_partners(practice_today()),
        analytics.practice_funnel(period),
    )
    record_access(
        AuditAction.REPORT_EXPORTED,
        actor=current_user,
        report="analytics",
        format="csv",
        start=period.start.isoformat(),
        end=period.end.isoformat(),
    )
    return _download(body, "text/csv", f"referral-analytics-{period.start.isoformat()}-{period.end.isoformat()}.csv")
