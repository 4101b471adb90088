"""Success stories: staff write and publish; partners browse what consent allows."""

import uuid

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.audit.services import AuditAction, record_access
from portal.core.forms import form_page
from portal.core.paging import cursor_arg, per_page_arg
from portal.core.permissions import Permission, requires
from portal.referrals.queries import get_patient_or_404
from portal.stories import queries, services
from portal.stories.forms import ConditionFilter, PublishForm, StoryForm
from portal.stories.models import Condition
from portal.stories.rendering import render_markdown

bp = Blueprint("stories", __name__)


# --- staff ------------------------------------------------------------------------------


@bp.get("/staff/stories")
@requires(Permission.STORIES_WRITE)
def index():
    return render_template(
        "stories/index.html", page=queries.staff_stories(cursor=cursor_arg(), per_page=per_page_arg())
    )


@bp.route("/staff/patients/<uuid:patient_id>/stories/new", methods=["GET", "POST"])
@requires(Permission.STORIES_WRITE)
def new(patient_id: uuid.UUID):
    patient = get_patient_or_404(current_user, patient_id)
    form = StoryForm()
    if form.validate_on_submit():
        story = services.save_story(
            current_user,
            patient,
            None,
            title=form.title.data,
            condition=Condition(form.condition.data),
            highlight=form.highlight.data,
            body=form.body.data,
        )
        flash("Story saved as a draft. Check it, then publish.", "success")
        return redirect(url_for("stories.edit", story_id=story.public_id))
    record_access(AuditAction.PHI_READ, actor=current_user, obj=patient, patient_id=patient.public_id, view="story_new")
    return form_page(
        "stories/new.html", form, patient=patient, consent_ok=queries.consent_allows_publication(patient.id)
    )


def _edit_page(story, form=None, publish_form=None, kinds=None, status=None):
    form = form or StoryForm(obj=story, body=story.body_markdown)
    record_access(AuditAction.PHI_READ, actor=current_user, obj=story, patient_id=story.patient.public_id, view="story")
    page = render_template(
        "stories/edit.html",
        story=story,
        form=form,
        publish_form=publish_form or PublishForm(),
        kinds=kinds or [],
        preview=render_markdown(story.body_markdown),
        visible=queries.story_is_visible(story),
        consent_ok=queries.consent_allows_publication(story.patient_id),
    )
    return page, status or (422 if form.errors or kinds else 200)


@bp.route("/staff/stories/<uuid:story_id>", methods=["GET", "POST"])
@requires(Permission.STORIES_WRITE)
def edit(story_id: uuid.UUID):
    story = queries.get_story_or_404(story_id)
    form = StoryForm() if request.method == "POST" else None
    if form is not None and form.validate_on_submit():
        services.save_story(
            current_user,
            story.patient,
            story,
            title=form.title.data,
            condition=Condition(form.condition.data),
            highlight=form.highlight.data,
            body=form.body.data,
        )
        flash("Story saved.", "success")
        return redirect(url_for("stories.edit", story_id=story.public_id))
    return _edit_page(story, form)


@bp.post("/staff/stories/<uuid:story_id>/publish")
@requires(Permission.STORIES_WRITE)
def publish(story_id: uuid.UUID):
    story = queries.get_story_or_404(story_id)
    form = PublishForm()
    if not form.validate_on_submit():
        return _edit_page(story, publish_form=form, status=422)
    try:
        kinds = services.publish(current_user, story, acknowledged=form.acknowledge.data)
    except services.IdentifiersFound as exc:
        return _edit_page(story, publish_form=form, kinds=exc.kinds)
    except services.StoryError as exc:
        flash(str(exc), "error")
        return _edit_page(story, publish_form=form, status=422)
    flash("Story published" + (" with the identifiers you confirmed." if kinds else "."), "success")
    return redirect(url_for("stories.edit", story_id=story.public_id))


@bp.post("/staff/stories/<uuid:story_id>/withdraw")
@requires(Permission.STORIES_WRITE)
def withdraw(story_id: uuid.UUID):
    story = queries.get_story_or_404(story_id)
    try:
        services.withdraw(current_user, story)
    except services.StoryError as exc:
        flash(str(exc), "error")
        return _edit_page(story, status=422)
    flash("Story withdrawn: partners no longer see it.", "success")
    return redirect(url_for("stories.edit", story_id=story.public_id))


# --- partners -----------------------------------------------------------------------------


@bp.get("/partner/stories")
@requires(Permission.STORIES_BROWSE)
def browse():
    form = ConditionFilter(formdata=request.args)
    chosen = request.args.get("condition", "")
    condition = Condition(chosen) if chosen in set(Condition) else None
    return render_template(
        "stories/browse.html",
        form=form,
        condition=condition,
        page=queries.published_stories(current_user, condition, cursor=cursor_arg(), per_page=per_page_arg()),
    )


@bp.get("/partner/stories/<uuid:story_id>")
@requires(Permission.STORIES_BROWSE)
def read(story_id: uuid.UUID):
    story, mine = queries.get_published_or_404(current_user, story_id)
    return render_template("stories/read.html", story=story, mine=mine, body=render_markdown(story.body_markdown))
