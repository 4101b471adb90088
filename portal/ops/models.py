"""The operations table: one row per app host, written by /readyz to prove the database takes writes."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import UTCDateTime
from portal.extensions import db


class Heartbeat(db.Model):
    """``host``: the machine's name (several workers of one host share the row); ``checked_at``: the
    last time its readiness check wrote, and committed, to the database."""

    __tablename__ = "ops_heartbeats"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Heartbeat {self.host}>"
