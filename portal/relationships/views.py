"""Staff relationship workspace (/relationships) and the partners' events page (/partner/learning)."""

import uuid

from flask import Blueprint, Response, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from portal.core.charts import BarChart
from portal.core.forms import form_status
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.core.time import practice_today
from portal.outcomes.reports import DateRange, partner_report
from portal.partners.models import OrganizationKind, RelationshipStatus
from portal.relationships import forms, prospects, queries, services
from portal.relationships.models import EventKind, RsvpResponse, TouchpointKind

bp = Blueprint("relationships", __name__, url_prefix="/relationships")
learning_bp = Blueprint("learning", __name__, url_prefix="/partner/learning")


# --- the partner list -------------------------------------------------------------------


@bp.get("/")
@requires(Permission.RELATIONSHIPS_MANAGE)
def organizations():
    filters = queries.ListFilters.from_args(request.args)
    today = practice_today()
    page = queries.partner_page(filters, current_user, today, cursor=cursor_arg(), per_page=per_page_arg())
    return render_template(
        "relationships/organizations.html",
        page=page,
        filters=filters,
        today=today,
        kinds=list(OrganizationKind),
        statuses=list(RelationshipStatus),
        staff=queries.staff_members(),
        import_form=forms.ImportForm(),
    )


@bp.get("/prospects.csv")
@requires(Permission.RELATIONSHIPS_MANAGE)
def export_prospects():
    body = prospects.export_prospects(current_user)
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=prospects-{practice_today().isoformat()}.csv"},
    )


@bp.post("/prospects/import")
@requires(Permission.RELATIONSHIPS_MANAGE)
def import_prospects():
    form = forms.ImportForm()
    if not form.validate_on_submit():
        for error in form.file.errors:
            flash(error, "error")
        return redirect(url_for("relationships.organizations"))
    try:
        result = prospects.import_prospects(current_user, form.file.data.read(prospects.MAX_BYTES + 1))
    except prospects.ImportRefused as exc:
        for error in exc.errors:
            flash(error, "error")
        flash("Nothing was imported. Correct the file and try again.", "error")
        return redirect(url_for("relationships.organizations"))
    flash(
        f"Imported {len(result.created)} prospect(s)"
        + (f"; skipped {len(result.skipped)} already in the portal" if result.skipped else "")
        + ".",
        "success",
    )
    return redirect(url_for("relationships.organizations", status="prospect"))


# --- one organization -------------------------------------------------------------------


def _organization_page(org, *, relationship_form=None, touchpoint_form=None, contact_form=None):
    staff = queries.staff_members()
    owner = queries.owner_of(org)
    today = practice_today()
    relationship_form = relationship_form or forms.RelationshipForm(
        staff,
        status=org.relationship_status.value,
        owner=str(owner.public_id) if owner else "",
        next_check_in=org.next_check_in,
    )
    touchpoint_form = touchpoint_form or forms.TouchpointForm(occurred_on=today)
    contact_form = contact_form or forms.ContactForm()
    months = queries.monthly_referrals(org.id, today)
    chart = BarChart(
        "referrals-by-month",
        f"Referrals from {org.name} by month",
        f"Referrals received from {org.name} in each of the last 12 months.",
        months,
        unit="referral",
        axis_labels=queries.month_axis_labels(months),
    )
    # The outcome headline: the same suppressed aggregates the partner's own report shows.
    headline = services.headline_figures(partner_report(org, DateRange.default(today)))
    has_errors = any(f.errors for f in (relationship_form, touchpoint_form, contact_form))
    return render_template(
        "relationships/organization.html",
        org=org,
        owner=owner,
        today=today,
        chart=chart,
        contacts=queries.contacts_of(org),
        touchpoints=queries.touchpoints_of(org),
        relationship_form=relationship_form,
        touchpoint_form=touchpoint_form,
        contact_form=contact_form,
        headline=headline,
    ), 422 if has_errors else 200


@bp.get("/organizations/<uuid:org_id>")
@requires(Permission.RELATIONSHIPS_MANAGE)
def organization(org_id: uuid.UUID):
    return _organization_page(queries.get_organization_or_404(org_id))


@bp.post("/organizations/<uuid:org_id>/relationship")
@requires(Permission.RELATIONSHIPS_MANAGE)
def update_relationship(org_id: uuid.UUID):
    org = queries.get_organization_or_404(org_id)
    form = forms.RelationshipForm(queries.staff_members())
    if not form.validate_on_submit():
        return _organization_page(org, relationship_form=form)
    owner = services.staff_member(uuid.UUID(form.owner.data)) if form.owner.data else None
    services.update_relationship(
        current_user,
        org,
        status=RelationshipStatus(form.status.data),
        owner=owner,
        next_check_in=form.next_check_in.data,
    )
    flash("Relationship updated.", "success")
    return redirect(url_for("relationships.organization", org_id=org.public_id))


@bp.post("/organizations/<uuid:org_id>/touchpoints")
@requires(Permission.RELATIONSHIPS_MANAGE)
def log_touchpoint(org_id: uuid.UUID):
    org = queries.get_organization_or_404(org_id)
    form = forms.TouchpointForm()
    if not form.validate_on_submit():
        return _organization_page(org, touchpoint_form=form)
    services.log_touchpoint(
        current_user,
        org,
        kind=TouchpointKind(form.kind.data),
        occurred_on=form.occurred_on.data,
        note=form.note.data,
        next_check_in=form.next_check_in.data,
    )
    flash("Touchpoint logged" + (" and next check-in set." if form.next_check_in.data else "."), "success")
    return redirect(url_for("relationships.organization", org_id=org.public_id))


@bp.post("/organizations/<uuid:org_id>/contacts")
@requires(Permission.RELATIONSHIPS_MANAGE)
def add_contact(org_id: uuid.UUID):
    org = queries.get_organization_or_404(org_id)
    form = forms.ContactForm()
    if not form.validate_on_submit():
        return _organization_page(org, contact_form=form)
    services.add_contact(
        current_user,
        org,
        name=form.name.data,
        title=form.title.data,
        email=form.email.data,
        phone=form.phone.data,
        is_primary=form.is_primary.data,
    )
    flash(f"Contact {form.name.data} added.", "success")
    return redirect(url_for("relationships.organization", org_id=org.public_id))


# --- events and resources (staff) ---------------------------------------------------------


@bp.route("/events", methods=["GET", "POST"])
@requires(Permission.RELATIONSHIPS_MANAGE)
def events():
    form = forms.EventForm()
    if form.validate_on_submit():
        event = services.publish_event(
            current_user,
            title=form.title.data,
            kind=EventKind(form.kind.data),
            starts_at=form.starts_at_utc(),
            location=form.location.data,
            description=form.description.data,
            is_published=form.is_published.data,
        )
        flash(f"Event “{event.title}” {'published' if event.is_published else 'saved as a draft'}.", "success")
        return redirect(url_for("relationships.event", event_id=event.public_id))
    all_events = queries.events_for_staff()
    return render_template(
        "relationships/events.html", form=form, events=all_events, going=queries.rsvp_counts(all_events)
    ), form_status(form)


@bp.get("/events/<uuid:event_id>")
@requires(Permission.RELATIONSHIPS_MANAGE)
def event(event_id: uuid.UUID):
    ev = queries.get_event_or_404(event_id, published_only=False)
    return render_template("relationships/event.html", event=ev, rsvps=queries.rsvps_of(ev))


@bp.post("/events/<uuid:event_id>/rsvps/<uuid:rsvp_id>/attended")
@requires(Permission.RELATIONSHIPS_MANAGE)
def mark_attended(event_id: uuid.UUID, rsvp_id: uuid.UUID):
    ev = queries.get_event_or_404(event_id, published_only=False)
    rsvp = queries.get_rsvp_or_404(ev, rsvp_id)
    services.mark_attended(current_user, ev, rsvp)
    flash(f"{rsvp.user.full_name} attended; logged as a touchpoint for {rsvp.organization.name}.", "success")
    return redirect(url_for("relationships.event", event_id=ev.public_id))


@bp.route("/resources", methods=["GET", "POST"])
@requires(Permission.RELATIONSHIPS_MANAGE)
def resources():
    form = forms.ResourceForm()
    if form.validate_on_submit():
        try:
            resource = services.add_resource(
                current_user,
                title=form.title.data,
                description=form.description.data,
                upload=form.file.data,
                is_published=form.is_published.data,
            )
        except services.RelationshipError as exc:
            form.file.errors.append(str(exc))
        else:
            flash(f"Resource “{resource.title}” added.", "success")
            return redirect(url_for("relationships.resources"))
    return render_template(
        "relationships/resources.html", form=form, resources=queries.resources(published_only=False)
    ), form_status(form)


@bp.get("/resources/<uuid:resource_id>")
@requires(Permission.RELATIONSHIPS_MANAGE)
def download_resource(resource_id: uuid.UUID):
    return _send(queries.get_resource_or_404(resource_id, published_only=False))


def _send(resource):
    import io

    return send_file(
        io.BytesIO(resource.data),
        mimetype=resource.content_type,
        as_attachment=True,
        download_name=resource.filename,
        max_age=0,
    )


# --- the partners' side -----------------------------------------------------------------


@learning_bp.get("/")
@requires(Permission.LEARNING_VIEW)
def index():
    return render_template(
        "relationships/learning.html",
        events=queries.upcoming_events_for_partners(),
        responses=queries.responses_of(current_user),
        resources=queries.resources(published_only=True),
    )


@learning_bp.post("/events/<uuid:event_id>/rsvp")
@requires(Permission.LEARNING_VIEW)
def rsvp(event_id: uuid.UUID):
    ev = queries.get_event_or_404(event_id, published_only=True)
    form = forms.RsvpForm()
    if not form.validate_on_submit():
        flash("Choose whether you will attend.", "error")
        return redirect(url_for("learning.index"))
    try:
        answer = services.respond(current_user, ev, RsvpResponse(form.response.data))
    except services.RelationshipError as exc:
        flash(str(exc), "error")
        return redirect(url_for("learning.index"))
    flash(
        f"Thank you: you are {'registered for' if answer.response is RsvpResponse.GOING else 'not attending'} "
        f"“{ev.title}”.",
        "success",
    )
    return redirect(url_for("learning.index"))


@learning_bp.get("/resources/<uuid:resource_id>")
@requires(Permission.LEARNING_VIEW)
def download(resource_id: uuid.UUID):
    return _send(queries.get_resource_or_404(resource_id, published_only=True))
