"""Running the portal for real: readiness, metrics, the client's address behind a proxy, backups and
restores, and the sweep of uploads no row refers to (docs/operations.md).

It sits above every feature (it reads the outbox and the audit trail, writes audit events) and
nothing imports it but the app factory (``init_app``) and ``portal/cli.py`` (its commands).
"""

from flask import Flask


def init_app(app: Flask) -> None:
    from portal.ops import metrics, models  # noqa: F401  (models: ops_heartbeats in the metadata)
    from portal.ops.forwarded import ClientAddress
    from portal.ops.views import bp

    app.wsgi_app = ClientAddress(app.wsgi_app, app.config["FORWARDED_ALLOW_IPS"])
    metrics.init_app(app)
    app.register_blueprint(bp)
