"""Partner-admin forms."""

from portal.accounts.forms import InviteForm
from portal.core.permissions import Role


class PartnerInviteForm(InviteForm):
    def __init__(self, *args, **kwargs):
        super().__init__([Role.PARTNER, Role.PARTNER_ADMIN], *args, **kwargs)
