"""The referral lifecycle as an explicit state machine, after FHIR Task / BSeR business status."""

import enum
from dataclasses import dataclass


class Status(enum.StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SCHEDULED = "scheduled"
    IN_CARE = "in_care"
    DISCHARGED = "discharged"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def label(self) -> str:
        return LABELS[self]

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL


LABELS = {
    Status.SUBMITTED: "Submitted",
    Status.ACCEPTED: "Accepted",
    Status.DECLINED: "Declined",
    Status.SCHEDULED: "Scheduled",
    Status.IN_CARE: "In care",
    Status.DISCHARGED: "Discharged",
    Status.CANCELLED: "Cancelled",
    Status.NO_SHOW: "No-show",
}

TERMINAL = frozenset({Status.DECLINED, Status.DISCHARGED, Status.CANCELLED})
# Listed rather than "not terminal" so that a query for open referrals is a few index ranges.
OPEN = tuple(s for s in Status if s not in TERMINAL)

# FHIR R4 Task.status for each portal status; businessStatus carries the portal's own code.
FHIR_TASK_STATUS = {
    Status.SUBMITTED: "requested",
    Status.ACCEPTED: "accepted",
    Status.DECLINED: "rejected",
    Status.SCHEDULED: "in-progress",
    Status.IN_CARE: "in-progress",
    Status.DISCHARGED: "completed",
    Status.CANCELLED: "cancelled",
    Status.NO_SHOW: "on-hold",
}


@dataclass(frozen=True)
class Transition:
    target: Status
    action: str  # the button's words
    needs_reason: bool = False
    needs_appointment: bool = False


TRANSITIONS: dict[Status, tuple[Transition, ...]] = {
    Status.SUBMITTED: (
        Transition(Status.ACCEPTED, "Accept"),
        Transition(Status.DECLINED, "Decline", needs_reason=True),
        Transition(Status.CANCELLED, "Cancel", needs_reason=True),
    ),
    Status.ACCEPTED: (
        Transition(Status.SCHEDULED, "Schedule first visit", needs_appointment=True),
        Transition(Status.CANCELLED, "Cancel", needs_reason=True),
    ),
    Status.SCHEDULED: (
        Transition(Status.IN_CARE, "Start care"),
        Transition(Status.SCHEDULED, "Reschedule", needs_appointment=True),
        Transition(Status.NO_SHOW, "Record no-show"),
        Transition(Status.CANCELLED, "Cancel", needs_reason=True),
    ),
    Status.NO_SHOW: (
        Transition(Status.SCHEDULED, "Reschedule", needs_appointment=True),
        Transition(Status.CANCELLED, "Cancel", needs_reason=True),
    ),
    Status.IN_CARE: (Transition(Status.DISCHARGED, "Discharge"),),
    Status.DECLINED: (),
    Status.DISCHARGED: (),
    Status.CANCELLED: (),
}

# A referrer may withdraw a referral until the patient has an appointment.
PARTNER_CANCELLABLE = frozenset({Status.SUBMITTED, Status.ACCEPTED})


class IllegalTransition(ValueError):
    """The requested change is not allowed from the referral's current status."""


def transition(current: Status, target: Status) -> Transition:
    for option in TRANSITIONS[current]:
        if option.target is target:
            return option
    raise IllegalTransition(f"A referral that is {current.label.lower()} cannot become {target.label.lower()}.")
