"""Write, publish and withdraw success stories. Add and flush; the request commits."""

from portal.accounts.models import User
from portal.audit.services import AuditAction, record, record_access
from portal.core.errors import UserError
from portal.core.time import now_utc
from portal.extensions import db
from portal.patients.models import Patient
from portal.stories import deidentify
from portal.stories.models import Condition, Story, StoryState
from portal.stories.queries import consent_allows_publication


class StoryError(UserError):
    """A user-facing refusal; safe to show (no PHI)."""


class IdentifiersFound(StoryError):
    """The de-identification check found identifiers; ``kinds`` names them, never their values."""

    def __init__(self, kinds: list[str]):
        super().__init__("The story seems to contain " + ", ".join(kinds) + ".")
        self.kinds = kinds


def save_story(
    actor: User, patient: Patient, story: Story | None, *, title: str, condition: Condition, highlight: str, body: str
) -> Story:
    created = story is None
    if created:
        story = Story(patient_id=patient.id, author_id=actor.id, state=StoryState.DRAFT)
        db.session.add(story)
    story.title, story.highlight, story.body_markdown, story.condition = title, highlight, body, condition
    story.updated_at = now_utc()
    db.session.flush()
    record(
        AuditAction.STORY_WRITTEN,
        actor=actor,
        obj=story,
        patient_id=patient.public_id,
        change="created" if created else "edited",
    )
    return story


def check_identifiers(actor: User, story: Story) -> list[str]:
    """Reads the patient's identifiers to compare them (in memory): an audited PHI read."""
    patient = story.patient
    record_access(
        AuditAction.PHI_READ, actor=actor, obj=story, patient_id=patient.public_id, view="story_deidentification"
    )
    return deidentify.findings(patient, story.title, story.highlight, story.body_markdown)


def publish(actor: User, story: Story, *, acknowledged: bool) -> list[str]:
    """Publish if a consent in effect today allows it; identifiers found stop it unless acknowledged."""
    if not consent_allows_publication(story.patient_id):
        raise StoryError(
            "The patient has no consent in effect that allows publishing a success story. "
            "Record one on the patient's page first."
        )
    kinds = check_identifiers(actor, story)
    if kinds and not acknowledged:
        raise IdentifiersFound(kinds)
    story.state, story.published_at = StoryState.PUBLISHED, now_utc()
    db.session.flush()
    record(
        AuditAction.STORY_PUBLISHED,
        actor=actor,
        obj=story,
        patient_id=story.patient.public_id,
        warnings_acknowledged=len(kinds),
    )
    return kinds


def withdraw(actor: User, story: Story) -> None:
    if story.state is not StoryState.PUBLISHED:
        raise StoryError("Only a published story can be withdrawn.")
    story.state = StoryState.WITHDRAWN
    db.session.flush()
    record(AuditAction.STORY_WITHDRAWN, actor=actor, obj=story, patient_id=story.patient.public_id)
