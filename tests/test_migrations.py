"""Migrations are the only source of the schema: they must match the models exactly."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from portal.extensions import db
from tests.conftest import fresh_database, migrated_app


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models differ from migrations; run `flask db migrate`: {diff}"


def test_downgrade_to_base_and_back(database_url, tmp_path):
    import os

    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "roundtrip")
    app = migrated_app(url, tmp_path)
    with app.app_context():
        downgrade(revision="base")
        upgrade()
        db.engine.dispose()
