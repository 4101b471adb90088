"""the remaining patient fields encrypted (issue 17): state, sex and insurance payer

They were kept in clear because they "identify nobody alone", but they are part of a patient's
record, and nothing queries them in SQL: they join the other PHI fields, each encrypted with its
column key and bound to the row's public_id. Existing rows are encrypted here with the keyring
that `flask db upgrade` runs with (the same one the portal uses); the clear columns are dropped.

Revision ID: b7c1a0000002
Revises: b7c1a0000001
Create Date: 2026-11-30 07:00:00

"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "b7c1a0000002"
down_revision = "b7c1a0000001"
branch_labels = None
depends_on = None

FIELDS = ("us_state", "sex", "insurance_payer")
patients = sa.table(
    "patients",
    sa.column("id", sa.Integer),
    sa.column("public_id", sa.Uuid),
    *(sa.column(name, sa.String) for name in FIELDS),
    *(sa.column(f"{name}_ct", sa.LargeBinary) for name in FIELDS),
)


def _keyring():
    from portal.core.phi.runtime import current_keyring  # the keyring the app opened for this upgrade

    return current_keyring()


def upgrade():
    with op.batch_alter_table("patients", schema=None) as batch_op:
        for name in FIELDS:
            batch_op.add_column(sa.Column(f"{name}_ct", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(patients.c.id, patients.c.public_id, *(patients.c[n] for n in FIELDS))).all()
    if rows:
        keyring = _keyring()
        ciphers = {name: keyring.column_cipher("patients", name) for name in FIELDS}
        updates = []
        for row in rows:
            row_id = row.public_id if isinstance(row.public_id, uuid.UUID) else uuid.UUID(str(row.public_id))
            values = {"_id": row.id}
            for name in FIELDS:
                plain = getattr(row, name)
                values[f"{name}_value"] = None if plain is None else ciphers[name].encrypt(row_id, plain.encode())
            updates.append(values)
        conn.execute(
            patients.update()
            .where(patients.c.id == sa.bindparam("_id"))
            .values({f"{name}_ct": sa.bindparam(f"{name}_value") for name in FIELDS}),
            updates,
        )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_patients_us_state_two_letters"), type_="check")
        for name in FIELDS:
            batch_op.drop_column(name)
        batch_op.alter_column("us_state_ct", existing_type=sa.LargeBinary(), nullable=False)
        batch_op.alter_column("sex_ct", existing_type=sa.LargeBinary(), nullable=False)


def downgrade():
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("insurance_payer", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("us_state", sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column("sex", sa.String(length=16), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(patients.c.id, patients.c.public_id, *(patients.c[f"{n}_ct"] for n in FIELDS))).all()
    if rows:
        keyring = _keyring()
        ciphers = {name: keyring.column_cipher("patients", name) for name in FIELDS}
        updates = []
        for row in rows:
            row_id = row.public_id if isinstance(row.public_id, uuid.UUID) else uuid.UUID(str(row.public_id))
            values = {"_id": row.id}
            for name in FIELDS:
                blob = getattr(row, f"{name}_ct")
                values[f"{name}_value"] = None if blob is None else ciphers[name].decrypt(row_id, blob).decode()
            updates.append(values)
        conn.execute(
            patients.update()
            .where(patients.c.id == sa.bindparam("_id"))
            .values({name: sa.bindparam(f"{name}_value") for name in FIELDS}),
            updates,
        )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        for name in FIELDS:
            batch_op.drop_column(f"{name}_ct")
        batch_op.alter_column("us_state", existing_type=sa.String(length=2), nullable=False)
        batch_op.alter_column(
            "sex",
            existing_type=sa.String(length=16),
            type_=sa.Enum("female", "male", "other", "unknown", name="sex", native_enum=False, length=16),
            nullable=False,
            server_default="unknown",
        )
        batch_op.create_check_constraint("us_state_two_letters", "length(us_state) = 2")
