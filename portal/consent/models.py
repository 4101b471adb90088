"""Patient consent to share with a referrer: append-only versions, FHIR R4 Consent shaped.

A consent is a chain of versions sharing one ``consent_key``; the newest version is the
consent. Recording, amending and revoking each add a version; the terms of a version are
never edited or deleted, so the full history is always there. The one bookkeeping
column, ``superseded_at``, is stamped on the older versions (by the flush hook below, for
every way a version is added) when a newer one arrives: "the newest version" is then a
plain ``superseded_at IS NULL`` that an index can answer, instead of a NOT EXISTS probe per
consent.

FHIR mapping: status (active | inactive once revoked) -> Consent.status; patient ->
Consent.patient; grantee organization or clinician -> provision.actor (role IRCP,
"information recipient"); categories -> provision.class (data classes); effective_on /
expires_on -> provision.period; method + document -> Consent.sourceAttachment;
recorded_by and recorded_at -> Consent.performer / Consent.dateTime; provision.type is
always "permit".

A patient may sign (or withdraw) a consent themselves through a one-time link
(portal/econsent): that version has ``is_by_patient`` set and no staff recorder
(``recorded_by_id`` NULL), its method is ``patient_esignature`` and its document is the
signed PDF copy (``document_content_type`` application/pdf). FHIR: Consent.performer is then
the Patient (else the practice), Consent.sourceAttachment the copy (contentType =
document_content_type, creation = recorded_at), and the method a coding of the portal's
``consent-method`` code system (R4 Consent has no element for it: an extension).
"""

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Optional

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint, Uuid, event, false, text, update
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship
from sqlalchemy.orm.attributes import set_committed_value

from portal.core.db import PkMixin, UTCDateTime, enum_type
from portal.core.phi import encrypted
from portal.core.time import now_utc
from portal.extensions import db

if TYPE_CHECKING:  # annotations only: the models resolve each other by name at runtime
    from portal.accounts.models import User
    from portal.partners.models import Organization
    from portal.patients.models import Patient


class Category(enum.StrEnum):
    PROGRESS_NOTES = "progress_notes"
    OUTCOME_SCORES = "outcome_scores"
    DISCHARGE_SUMMARY = "discharge_summary"
    STORY_PUBLICATION = "story_publication"

    @property
    def label(self) -> str:
        return {
            "progress_notes": "Progress notes",
            "outcome_scores": "Outcome scores",
            "discharge_summary": "Discharge summary",
            "story_publication": "Success-story publication",
        }[self.value]


class Method(enum.StrEnum):
    SIGNED_FORM = "signed_form"
    VERBAL_WITNESSED = "verbal_witnessed"
    ELECTRONIC = "electronic"
    # The patient signed it themselves through a one-time link (portal/econsent): never a staff choice.
    PATIENT_ESIGNATURE = "patient_esignature"

    @property
    def label(self) -> str:
        return {
            "signed_form": "Signed form (uploaded)",
            "verbal_witnessed": "Verbal, with a witness",
            "electronic": "Electronic",
            "patient_esignature": "Signed by the patient online",
        }[self.value]

    @property
    def is_staff_choice(self) -> bool:
        return self is not Method.PATIENT_ESIGNATURE


class ConsentStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class Consent(PkMixin, db.Model):
    __tablename__ = "consents"
    __table_args__ = (
        UniqueConstraint("consent_key", "version", name="uq_consents_key_version"),
        Index("ix_consents_patient_key", "patient_id", "consent_key"),
        # The policy's question for a whole organization ("which patients share category X with
        # us today?") answered from the index alone, current versions only.
        Index(
            "ix_consents_in_effect",
            "grantee_organization_id",
            "status",
            "patient_id",
            "effective_on",
            "expires_on",
            "grantee_user_id",
            "allows_outcome_scores",
            "allows_progress_notes",
            "allows_discharge_summary",
            "allows_story_publication",
            "superseded_at",
            sqlite_where=text("superseded_at IS NULL"),
            postgresql_where=text("superseded_at IS NULL"),
        ),
    )

    consent_key: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    grantee_organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id"), index=True)
    grantee_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # one clinician, or the whole org
    # One column per data class: the policy is a plain SQL predicate.
    allows_progress_notes: Mapped[bool] = mapped_column(default=False, server_default=false())
    allows_outcome_scores: Mapped[bool] = mapped_column(default=False, server_default=false())
    allows_discharge_summary: Mapped[bool] = mapped_column(default=False, server_default=false())
    allows_story_publication: Mapped[bool] = mapped_column(default=False, server_default=false())
    effective_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    method: Mapped[Method] = mapped_column(enum_type(Method, 24))
    witness = encrypted(str, nullable=True)
    document_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # encrypted file in the document store
    document_content_type: Mapped[str | None] = mapped_column(String(64))  # known for generated copies
    status: Mapped[ConsentStatus] = mapped_column(enum_type(ConsentStatus, 16), default=ConsentStatus.ACTIVE)
    change_reason = encrypted(str, nullable=True)  # why this version exists (e.g. revocation reason)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # NULL: the patient's own version
    # This version was signed or withdrawn by the patient through their own link, not recorded by staff.
    is_by_patient: Mapped[bool] = mapped_column(default=False, server_default=false())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc)
    # When a newer version of this chain was recorded; NULL on the newest (the consent in force).
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped["Patient"] = relationship("Patient", lazy="joined")
    grantee_organization: Mapped["Organization"] = relationship("Organization", lazy="joined")
    grantee_user: Mapped[Optional["User"]] = relationship("User", foreign_keys=[grantee_user_id], lazy="joined")
    recorded_by: Mapped[Optional["User"]] = relationship("User", foreign_keys=[recorded_by_id], lazy="joined")

    @property
    def categories(self) -> list[Category]:
        return [c for c in Category if getattr(self, f"allows_{c.value}")]

    @property
    def source_label(self) -> str:
        """Who made this version: "Signed by the patient" or "Recorded by staff" (or withdrawn)."""
        if self.is_by_patient:
            return "Withdrawn by the patient" if self.status is ConsentStatus.REVOKED else "Signed by the patient"
        return "Recorded by staff"

    def is_in_effect(self, on: date) -> bool:
        return (
            self.status is ConsentStatus.ACTIVE
            and self.effective_on <= on
            and (self.expires_on is None or on <= self.expires_on)
        )

    def __repr__(self) -> str:
        return f"<Consent {self.consent_key} v{self.version}>"


@event.listens_for(Session, "after_flush")
def _supersede_older_versions(session: Session, flush_context) -> None:
    """Stamp superseded_at on the versions a newly flushed version replaces, in the same transaction."""
    added = sorted((c for c in session.new if isinstance(c, Consent) and c.version > 1), key=lambda c: c.version)
    table = Consent.__table__
    for consent in added:
        session.connection().execute(
            update(table)
            .where(
                table.c.consent_key == consent.consent_key,
                table.c.version < consent.version,
                table.c.superseded_at.is_(None),
            )
            .values(superseded_at=consent.recorded_at)
        )
        for loaded in session.identity_map.values():  # keep loaded older versions in step without a reload
            if (
                isinstance(loaded, Consent)
                and loaded.consent_key == consent.consent_key
                and loaded.version < consent.version
                and loaded.superseded_at is None
            ):
                set_committed_value(loaded, "superseded_at", consent.recorded_at)
