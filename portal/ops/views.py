"""Operations endpoints: readiness for the load balancer, metrics for Prometheus.

``/healthz`` (liveness: the process answers) stays in portal/home. ``/readyz`` is public like it:
a load balancer has no credentials, and the answer names checks and short reasons only.
``/metrics`` is for the monitoring server alone: a bearer token (``METRICS_TOKEN``) or an
allowed address (``METRICS_ALLOWED_IPS``); with neither configured it does not exist (404).
"""

from __future__ import annotations

import hmac
from functools import wraps

from flask import Blueprint, Response, abort, current_app, jsonify, request

from portal.core.permissions import _ATTR, BearerScope, public
from portal.ops import metrics
from portal.ops.forwarded import is_trusted, parse_networks
from portal.ops.readiness import readiness

bp = Blueprint("ops", __name__)

METRICS_SCOPE = BearerScope("ops:metrics")


def metrics_reader(view):
    """Declared like a bearer route (BearerScope: no session decides), guarded by token or address."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        cfg = current_app.config
        token = cfg.get("METRICS_TOKEN") or ""
        allowed = cfg.get("METRICS_ALLOWED_IPS") or ""
        if not token and not allowed:
            abort(404)
        if allowed and is_trusted(request.remote_addr, parse_networks(allowed)):
            return view(*args, **kwargs)
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return view(*args, **kwargs)
        status = 401 if token else 403  # no token to offer: only an allowed address would do
        response = jsonify(error={"status": status, "title": "Metrics need a bearer token or an allowed address"})
        response.status_code = status
        if token:
            response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response

    setattr(wrapped, _ATTR, METRICS_SCOPE)
    return wrapped


@bp.get("/readyz")
@public
def ready():
    """Database writable, keyring unwrapped, upload disk writable with room, Redis when configured."""
    report = readiness()
    response = jsonify(report.as_dict())
    response.status_code = report.status
    response.headers["Cache-Control"] = "no-store"
    if not report.ready:
        response.headers["Retry-After"] = "5"
    return response


@bp.get("/metrics")
@metrics_reader
def scrape():
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
