"""patients give their own consent (issue 20)

Revision ID: b7c1a0000006
Revises: b7c1a0000005
Create Date: 2026-11-30 07:00:00

Consent requests that staff send to a patient, the one-time links that reach them (only each
token's SHA-256 is stored), the patient's answers, and the versioned wording of each topic in
English and Spanish (version 1 seeded here; admins add versions). A consent version may now be
the patient's own: ``consents.is_by_patient``, ``recorded_by_id`` NULL for those, and the
content type of its source document (the signed PDF copy).

Written by hand for both databases (SQLite through batch mode). The downgrade gives the
patient's own versions the staff member who sent the request as recorder, so the NOT NULL
comes back without losing a consent.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "b7c1a0000006"
down_revision = "b7c1a0000005"
branch_labels = None
depends_on = None

TOPIC = sa.Enum("progress_updates", "outcome_scores", "success_story", name="topic", native_enum=False, length=32)
LANGUAGE = sa.Enum("en", "es", name="language", native_enum=False, length=8)
OPEN = sa.text("state IN ('sent', 'opened', 'locked')")

# Version 1 of each topic's wording: short sentences, everyday words (about a 6th-grade reading level).
TEXTS = [
    (
        "progress_updates",
        "en",
        "Updates about your progress",
        "Your therapist writes short notes about how you are doing. When you finish therapy, "
        "they write a short summary.\n\n"
        "If you say yes, we will send these notes to the office that sent you to us. "
        "They can see how you are getting better and plan your care.\n\n"
        "If you say no, we will not send them. Your care with us stays the same.",
    ),
    (
        "outcome_scores",
        "en",
        "Your scores on health forms",
        "Sometimes we ask you to fill out short forms about your pain and what you can do. "
        "Each form gives a score.\n\n"
        "If you say yes, we will share these scores with the office that sent you to us. "
        "The scores show how much you have improved.\n\n"
        "If you say no, we will not share them. Your care with us stays the same.",
    ),
    (
        "success_story",
        "en",
        "Your story, without your name",
        "Sometimes we write short stories about patients who got better. The stories help other people.\n\n"
        "If you say yes, we may write a story about your care. We will take out your name, birthday, "
        "address, phone number and anything else that could show who you are.\n\n"
        "If you say no, we will not write a story about you. Your care with us stays the same.",
    ),
    (
        "progress_updates",
        "es",
        "Noticias sobre su progreso",
        "Su terapeuta escribe notas cortas sobre cómo va usted. Cuando termine la terapia, "
        "escribe un resumen corto.\n\n"
        "Si dice que sí, enviaremos estas notas al consultorio que le envió a nuestra clínica. "
        "Así pueden ver cómo mejora y planear su atención.\n\n"
        "Si dice que no, no las enviaremos. Su atención con nosotros sigue igual.",
    ),
    (
        "outcome_scores",
        "es",
        "Sus puntajes en formularios de salud",
        "A veces le pedimos llenar formularios cortos sobre su dolor y lo que puede hacer. "
        "Cada formulario da un puntaje.\n\n"
        "Si dice que sí, compartiremos estos puntajes con el consultorio que le envió a nuestra clínica. "
        "Los puntajes muestran cuánto ha mejorado.\n\n"
        "Si dice que no, no los compartiremos. Su atención con nosotros sigue igual.",
    ),
    (
        "success_story",
        "es",
        "Su historia, sin su nombre",
        "A veces escribimos historias cortas sobre pacientes que mejoraron. Las historias ayudan a otras personas.\n\n"
        "Si dice que sí, podríamos escribir una historia sobre su atención. Quitaremos su nombre, "
        "fecha de nacimiento, dirección, teléfono y cualquier otro dato que pueda mostrar quién es usted.\n\n"
        "Si dice que no, no escribiremos una historia sobre usted. Su atención con nosotros sigue igual.",
    ),
]


def upgrade():
    consent_texts = op.create_table(
        "consent_texts",
        sa.Column("topic", TOPIC, nullable=False),
        sa.Column("language", LANGUAGE, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["changed_by_id"], ["users.id"], name=op.f("fk_consent_texts_changed_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_texts")),
        sa.UniqueConstraint("public_id", name=op.f("uq_consent_texts_public_id")),
        sa.UniqueConstraint("topic", "language", "version", name="uq_consent_texts_version"),
    )
    op.create_table(
        "consent_requests",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("clinician_id", sa.Integer(), nullable=True),
        sa.Column("asks_progress_updates", sa.Boolean(), nullable=False),
        sa.Column("asks_outcome_scores", sa.Boolean(), nullable=False),
        sa.Column("asks_success_story", sa.Boolean(), nullable=False),
        sa.Column("consent_expires_on", sa.Date(), nullable=True),
        sa.Column(
            "channel", sa.Enum("email", "qr", "kiosk", name="channel", native_enum=False, length=16), nullable=False
        ),
        sa.Column("language", LANGUAGE, nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "sent",
                "opened",
                "locked",
                "signed",
                "declined",
                "cancelled",
                name="requeststate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("link_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signature_name_ct", sa.LargeBinary(), nullable=True),
        sa.Column("text_digest", sa.String(length=64), nullable=True),
        sa.Column("verification_code", sa.String(length=16), nullable=True),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("consent_id", sa.Integer(), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["clinician_id"], ["users.id"], name=op.f("fk_consent_requests_clinician_id_users")),
        sa.ForeignKeyConstraint(["consent_id"], ["consents.id"], name=op.f("fk_consent_requests_consent_id_consents")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_consent_requests_created_by_id_users")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_consent_requests_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], name=op.f("fk_consent_requests_patient_id_patients")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_requests")),
        sa.UniqueConstraint("public_id", name=op.f("uq_consent_requests_public_id")),
        sa.UniqueConstraint("verification_code", name=op.f("uq_consent_requests_verification_code")),
    )
    with op.batch_alter_table("consent_requests", schema=None) as batch_op:
        batch_op.create_index("ix_consent_requests_patient", ["patient_id", "created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_consent_requests_open", ["sent_at", "id"], unique=False, sqlite_where=OPEN, postgresql_where=OPEN
        )
    op.create_table(
        "consent_request_answers",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("topic", TOPIC, nullable=False),
        sa.Column("text_id", sa.Integer(), nullable=False),
        sa.Column("is_granted", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consent_requests.id"],
            name=op.f("fk_consent_request_answers_request_id_consent_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["text_id"], ["consent_texts.id"], name=op.f("fk_consent_request_answers_text_id_consent_texts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_request_answers")),
        sa.UniqueConstraint("public_id", name=op.f("uq_consent_request_answers_public_id")),
        sa.UniqueConstraint("request_id", "topic", name="uq_consent_request_answers_topic"),
    )
    op.create_table(
        "patient_links",
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column(
            "purpose", sa.Enum("sign", "manage", name="linkpurpose", native_enum=False, length=16), nullable=False
        ),
        sa.Column("token_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["consent_requests.id"],
            name=op.f("fk_patient_links_request_id_consent_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_links")),
        sa.UniqueConstraint("public_id", name=op.f("uq_patient_links_public_id")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_patient_links_token_digest")),
    )
    with op.batch_alter_table("patient_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_links_request_id"), ["request_id"], unique=False)

    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("document_content_type", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("is_by_patient", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.alter_column("recorded_by_id", existing_type=sa.Integer(), nullable=True)

    import uuid

    now = datetime.now(UTC)
    op.bulk_insert(
        consent_texts,
        [
            {
                "topic": topic,
                "language": language,
                "version": 1,
                "title": title,
                "body": body,
                "changed_by_id": None,
                "created_at": now,
                "public_id": uuid.uuid4(),
            }
            for topic, language, title, body in TEXTS
        ],
    )


def downgrade():
    # The patient's own consent versions get a recorder back: whoever sent the request (for a
    # withdrawal, the sender of the request its chain began with).
    op.execute(
        """
        UPDATE consents SET recorded_by_id = (
            SELECT r.created_by_id FROM consent_requests r
            JOIN consents origin ON origin.id = r.consent_id
            WHERE origin.consent_key = consents.consent_key
        )
        WHERE recorded_by_id IS NULL
        """
    )
    # Older code knows no patient e-signature: it was electronic.
    op.execute("UPDATE consents SET method = 'electronic' WHERE method = 'patient_esignature'")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.alter_column("recorded_by_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("is_by_patient")
        batch_op.drop_column("document_content_type")
    with op.batch_alter_table("patient_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_links_request_id"))
    op.drop_table("patient_links")
    op.drop_table("consent_request_answers")
    with op.batch_alter_table("consent_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_requests_open", sqlite_where=OPEN, postgresql_where=OPEN)
        batch_op.drop_index("ix_consent_requests_patient")
    op.drop_table("consent_requests")
    op.drop_table("consent_texts")
