"""The service-hours table: one row per channel or queue ("phone", "chat", "queue:fraud")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from walletdesk.db import Base


class ServiceHours(Base):
    """Hours of operation in one time zone; the weekly and exception hours are text intervals."""

    __tablename__ = "service_hours"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    time_zone: Mapped[str] = mapped_column(String(64))
    always_open: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"mon": ["08:00-22:00"], ...}; a day left out is closed.
    weekly: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    # [{"date": "2026-02-17", "hours": [] (closed) or ["09:00-12:00"], "note": "..."}]
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
