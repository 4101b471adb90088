"""patients with encrypted PHI

Revision ID: 17106ba07f57
Revises: aed3a28119f4
Create Date: 2026-11-26 17:30:52.240095

Every identifying field is AES-256-GCM ciphertext (``*_ct``, BLOB on SQLite, BYTEA on
PostgreSQL) bound to the row's public_id; ``*_bidx`` are 20-byte blind indexes (key id
+ truncated HMAC) for exact-match lookups. Licensure state, payer and administrative
sex stay in clear. See docs/security.md, "PHI field-level encryption".

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '17106ba07f57'
down_revision = 'aed3a28119f4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('patients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.Uuid(), nullable=False),
    sa.Column('given_name_ct', sa.LargeBinary(), nullable=False),
    sa.Column('family_name_ct', sa.LargeBinary(), nullable=False),
    sa.Column('birth_date_ct', sa.LargeBinary(), nullable=False),
    sa.Column('phone_ct', sa.LargeBinary(), nullable=True),
    sa.Column('email_ct', sa.LargeBinary(), nullable=True),
    sa.Column('address_ct', sa.LargeBinary(), nullable=True),
    sa.Column('insurance_member_id_ct', sa.LargeBinary(), nullable=True),
    sa.Column('insurance_payer', sa.String(length=120), nullable=True),
    sa.Column('us_state', sa.String(length=2), nullable=False),
    sa.Column('sex', sa.Enum('female', 'male', 'other', 'unknown', name='sex', native_enum=False, length=16), server_default='unknown', nullable=False),
    sa.Column('name_dob_bidx', sa.LargeBinary(length=20), nullable=True),
    sa.Column('phone_bidx', sa.LargeBinary(length=20), nullable=True),
    sa.Column('email_bidx', sa.LargeBinary(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('length(us_state) = 2', name=op.f('ck_patients_us_state_two_letters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients')),
    sa.UniqueConstraint('public_id', name=op.f('uq_patients_public_id'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_email_bidx'), ['email_bidx'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_name_dob_bidx'), ['name_dob_bidx'], unique=False)
        batch_op.create_index(batch_op.f('ix_patients_phone_bidx'), ['phone_bidx'], unique=False)


def downgrade():
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_phone_bidx'))
        batch_op.drop_index(batch_op.f('ix_patients_name_dob_bidx'))
        batch_op.drop_index(batch_op.f('ix_patients_email_bidx'))

    op.drop_table('patients')
