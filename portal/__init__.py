"""Referral partner portal: the application factory."""
import logging
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
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
    register_security(app)
    register_errorhandlers(app)
    register_commands(app)
    return app


def register_logging(app: Flask) -> None:
    from portal.core.logging import configure_logging

    configure_logging(app)


def register_extensions(app: Flask) -> None:
    from portal.core.db import register_request_commit
    from portal.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    register_request_commit(app)


def register_blueprints(app: Flask) -> None:
    from portal.admin.views import bp as admin_bp
    from portal.auth.views import bp as auth_bp
    from portal.home.views import bp as home_bp
    from portal.partners.views import bp as partners_bp

    for bp in (auth_bp, home_bp, admin_bp, partners_bp):
        app.register_blueprint(bp)


def register_security(app: Flask) -> None:
    from portal.auth.sessions import register_session_checks
    from portal.core.permissions import register_permission_checks
    from portal.core.security import register_security_headers

    register_session_checks(app)
    register_permission_checks(app)
    register_security_headers(app)


def register_errorhandlers(app: Flask) -> None:
    from portal.core.errors import register_errorhandlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from portal.cli import register_cli

    register_cli(app)
