"""Referral partner portal: the application factory."""

from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    from portal.core.unit_of_work import PortalFlask

    app = PortalFlask(
        __name__,
        instance_path=str((test_config or {}).get("INSTANCE_PATH", ROOT / "instance")),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from portal.config import load_config

    load_config(app, test_config)
    register_logging(app)
    register_extensions(app)
    register_blueprints(app)
    register_templates(app)
    register_security(app)
    register_errorhandlers(app)
    register_signals(app)
    register_commands(app)
    from portal.ops import init_app as register_operations  # /readyz, /metrics, proxies: portal/ops

    register_operations(app)
    return app


def register_logging(app: Flask) -> None:
    from portal.core.logging import configure_logging

    configure_logging(app)


def register_extensions(app: Flask) -> None:
    from portal.core import phi, ratelimit  # noqa: F401  (ratelimit registers the portal+sqlite:// storage)
    from portal.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    phi.init_app(app)


def register_blueprints(app: Flask) -> None:
    from portal.admin.views import bp as admin_bp
    from portal.api.admin import bp as api_clients_bp
    from portal.api.views import bp as fhir_bp
    from portal.auth.views import bp as auth_bp
    from portal.chart.views import bp as chart_bp
    from portal.consent.views import bp as consent_bp
    from portal.econsent.patient import bp as patient_consent_bp
    from portal.econsent.views import bp as econsent_bp
    from portal.home.views import bp as home_bp
    from portal.mfa.views import bp as mfa_bp
    from portal.notifications.views import bp as notifications_bp
    from portal.outcomes.views import bp as outcomes_bp
    from portal.partners.views import bp as partners_bp
    from portal.progress.views import bp as progress_bp
    from portal.referrals.intake_views import bp as intake_bp
    from portal.referrals.intake_views import licensure_bp
    from portal.referrals.views import bp as referrals_bp
    from portal.relationships.views import bp as relationships_bp
    from portal.relationships.views import learning_bp
    from portal.sso.views import bp as sso_bp
    from portal.stories.views import bp as stories_bp

    for bp in (
        auth_bp,
        mfa_bp,
        sso_bp,
        home_bp,
        admin_bp,
        partners_bp,
        referrals_bp,
        intake_bp,
        licensure_bp,
        chart_bp,
        consent_bp,
        econsent_bp,  # also sets up Flask-Babel (the patient's pages are in English or Spanish)
        patient_consent_bp,
        progress_bp,
        notifications_bp,
        relationships_bp,
        learning_bp,
        outcomes_bp,
        stories_bp,
        api_clients_bp,
    ):
        app.register_blueprint(bp)
    app.register_blueprint(fhir_bp)  # FHIR API and SMART discovery (bearer tokens; CSRF-exempt)
    from portal.design.views import init_app as design_page

    design_page(app)  # the design system's component page: debug and test runs only (portal/design)


def register_security(app: Flask) -> None:
    from portal.accounts.sessions import register_session_checks
    from portal.core.permissions import register_permission_checks
    from portal.core.security import PortalRequest, register_security_headers

    register_session_checks(app)
    register_permission_checks(app)
    register_security_headers(app)
    app.request_class = PortalRequest


def register_templates(app: Flask) -> None:
    from portal.core.formatting import register_filters

    register_filters(app)


def register_signals(app: Flask) -> None:
    """Who listens to what: one feature (or core) sends, another reacts, neither imports the other."""
    from portal.api.subscriptions import queue_status_notifications
    from portal.audit.services import record_denied
    from portal.core.signals import access_denied, password_changed, referral_status_changed
    from portal.mfa.services import forget_devices_on_password_change

    access_denied.connect(record_denied)
    password_changed.connect(forget_devices_on_password_change)
    referral_status_changed.connect(queue_status_notifications)


def register_errorhandlers(app: Flask) -> None:
    from portal.core.errors import register_errorhandlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from portal.cli import register_cli

    register_cli(app)
