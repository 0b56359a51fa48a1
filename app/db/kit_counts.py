"""Kits per place, status and expiry date (migration 0019): `kit_counts`, folded from
`kit_count_changes`, which triggers on `kits` append to with every insert, move and delete. The
stock report reads the two together instead of counting every kit. '' stands for no site or no
depot."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.models import Base


class KitCount(Base):
    __tablename__ = "kit_counts"
    site_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    depot_id: Mapped[str] = mapped_column(String(12), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    expiry_date: Mapped[date] = mapped_column(Date, primary_key=True)
    kits: Mapped[int] = mapped_column(Integer)


class KitCountChange(Base):
    """A net change of one key's count by one statement on `kits`, not yet folded."""

    __tablename__ = "kit_count_changes"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    site_id: Mapped[str] = mapped_column(String(12))
    depot_id: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(16))
    expiry_date: Mapped[date] = mapped_column(Date)
    kits: Mapped[int] = mapped_column(Integer)
