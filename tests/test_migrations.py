"""Migrations are the only source of the schema: they must match the models exactly."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from portal.core.db import include_in_comparison
from portal.extensions import db
from tests.conftest import fresh_database, migrated_app


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_in_comparison})
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


def test_report_facts_backfill_agrees_with_what_the_app_maintains(database_url, tmp_path):
    """The migration recomputes the facts and consent stamps from the sources exactly as the flush hooks do."""
    import os

    from sqlalchemy import func, select

    from portal.accounts.models import User
    from portal.consent.models import Consent
    from portal.consent.services import revoke
    from portal.core.permissions import Role
    from portal.demo import seed_demo_data
    from portal.outcomes import facts
    from portal.outcomes.models import EpisodeOutcome, ReportEpisode

    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "facts")
    app = migrated_app(url, tmp_path)
    with app.app_context(), app.test_request_context():
        assert seed_demo_data()
        staff = db.session.scalar(select(User).where(User.role == Role.STAFF))
        revoke(staff, db.session.scalars(select(Consent).order_by(Consent.id)).first(), "Patient asked")
        db.session.commit()
        stamps = dict(db.session.execute(select(Consent.id, Consent.superseded_at)).all())
        rows = [db.session.scalar(select(func.count()).select_from(m)) for m in (ReportEpisode, EpisodeOutcome)]
        assert all(rows) and sum(s is not None for s in stamps.values()) == 1
        db.session.remove()

        downgrade(revision="fb2e8149d436")
        upgrade()

        assert facts.drift(db.session) == {"report_episodes": 0, "episode_outcomes": 0}
        assert [db.session.scalar(select(func.count()).select_from(m)) for m in (ReportEpisode, EpisodeOutcome)] == rows
        assert dict(db.session.execute(select(Consent.id, Consent.superseded_at)).all()) == stamps
        db.session.remove()
        db.engine.dispose()


def test_patient_fields_are_encrypted_in_place_and_decrypted_back(database_url, tmp_path):
    """Upgrading encrypts the state, sex and payer of existing patients; no value changes, no clear
    column is left; downgrading writes them back in clear."""
    import os

    from sqlalchemy import inspect, select, text

    from portal.demo import seed_demo_data
    from portal.patients.models import Patient

    url = fresh_database(os.environ.get("TEST_DATABASE_URL"), tmp_path, "patientfields")
    app = migrated_app(url, tmp_path)
    with app.app_context(), app.test_request_context():
        assert seed_demo_data()
        before = {p.public_id: (p.us_state, p.sex, p.insurance_payer) for p in db.session.scalars(select(Patient))}
        assert len(before) > 5 and any(payer for _, _, payer in before.values())
        db.session.commit()
        db.session.remove()

        downgrade(revision="b7c1a0000001")
        with db.engine.connect() as conn:
            clear = {row[0] for row in conn.execute(text("SELECT us_state FROM patients"))}
        assert clear == {state for state, _, _ in before.values()}

        upgrade()
        columns = {c["name"] for c in inspect(db.engine).get_columns("patients")}
        assert {"us_state", "sex", "insurance_payer"}.isdisjoint(columns)
        after = {p.public_id: (p.us_state, p.sex, p.insurance_payer) for p in db.session.scalars(select(Patient))}
        assert after == before
        db.session.remove()
        db.engine.dispose()
