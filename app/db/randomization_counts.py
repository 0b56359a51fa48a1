"""The per scope and stratum count of randomized subjects (migration 0016), kept by triggers on
`randomizations`: what caps, slots, numbers and forecasts read instead of counting every
randomization (a handful of rows however large the study grows)."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.models import Base


class RandomizationCount(Base):
    __tablename__ = "randomization_counts"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    stratum: Mapped[str] = mapped_column(String(64), primary_key=True)
    stage: Mapped[str] = mapped_column(String(10))
    randomized: Mapped[int] = mapped_column(Integer)
