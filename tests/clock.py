"""The practice's calendar as the app sees it, for tests, outside an app context too.

The app's "today" is the practice's (``portal.core.time.practice_today``), which differs
from the host's ``date.today()`` for hours every night on a UTC machine. Tests that build
dates relative to today use this one, or they fail only when run in those hours.
"""

from datetime import date
from zoneinfo import ZoneInfo

from portal.config import DEFAULTS
from portal.core.time import now_utc

PRACTICE_ZONE = ZoneInfo(DEFAULTS["PORTAL_TIMEZONE"])  # the test apps keep the default


def practice_today() -> date:
    return now_utc().astimezone(PRACTICE_ZONE).date()
