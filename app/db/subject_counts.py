"""Subjects per site, status, list scope and stratum (migration 0017), kept by triggers on
`subjects` and `randomizations`: what the enrolment report reads instead of counting every
subject (a few rows per site however large the study grows). An unrandomized subject counts
under scope and stratum ''."""

from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.models import Base


class SubjectCount(Base):
    __tablename__ = "subject_counts"
    site_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    stratum: Mapped[str] = mapped_column(String(64), primary_key=True)
    subjects: Mapped[int] = mapped_column(Integer)
