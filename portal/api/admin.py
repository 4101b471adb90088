"""Admin pages: register a partner organization's EHR as an API client, change its keys and scopes, disable it."""

import json
import uuid

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.api import services
from portal.api.forms import EditApiClientForm, NewApiClientForm
from portal.api.models import ApiClient
from portal.api.smart import token_endpoint_url
from portal.core.forms import form_status
from portal.core.permissions import Permission, requires
from portal.extensions import db
from portal.partners.models import Organization

bp = Blueprint("api_clients", __name__, url_prefix="/admin/api-clients")


def _organizations():
    return db.session.scalars(select(Organization).order_by(Organization.name)).all()


@bp.route("", methods=["GET", "POST"])
@requires(Permission.API_CLIENTS_MANAGE)
def index():
    form = NewApiClientForm(_organizations())
    if form.validate_on_submit():
        org = db.session.scalar(select(Organization).where(Organization.public_id == _uuid(form.organization.data)))
        if org is None:
            form.organization.errors.append("Choose an organization from the list.")
        else:
            try:
                client = services.register_client(
                    current_user, org, form.name.data, form.jwks.data, form.jwks_url.data, form.scopes.data or []
                )
            except services.ApiClientError as exc:
                form.jwks.errors.append(str(exc))
            else:
                flash(f"Registered. Give the EHR its client_id: {client.client_id}", "success")
                return redirect(url_for("api_clients.detail", client_id=client.public_id))
    clients = db.session.scalars(select(ApiClient).order_by(ApiClient.name)).all()
    return render_template("api/clients.html", form=form, clients=clients), form_status(form)


@bp.route("/<uuid:client_id>", methods=["GET", "POST"])
@requires(Permission.API_CLIENTS_MANAGE)
def detail(client_id: uuid.UUID):
    client = db.first_or_404(select(ApiClient).where(ApiClient.public_id == client_id))
    form = EditApiClientForm(obj=client)
    if not form.is_submitted():
        form.jwks.data = json.dumps(client.jwks, indent=2) if client.jwks else ""
        form.scopes.data = sorted(client.scope_set)
    if form.validate_on_submit():
        try:
            services.update_client(
                current_user, client, form.jwks.data, form.jwks_url.data, form.scopes.data or [], form.is_enabled.data
            )
        except services.ApiClientError as exc:
            form.jwks.errors.append(str(exc))
        else:
            flash("Saved.", "success")
            return redirect(url_for("api_clients.detail", client_id=client.public_id))
    return render_template("api/client.html", client=client, form=form, token_url=token_endpoint_url()), form_status(
        form
    )


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value or "")
    except ValueError:
        return None
