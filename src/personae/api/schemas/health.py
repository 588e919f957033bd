"""What ``/health`` reports."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from personae.api.schemas.common import Public


class HealthPublic(Public):
    status: Literal["ok"]
    version: str = Field(description="the personae package version")
    personas: int = Field(description="how many personas are stored")
