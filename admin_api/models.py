"""Request bodies of the admin API, validated by pydantic (and documented from the same models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WeightsChange(_Body):
    """Replace every weight of a weighted route (Gateway API: weights are proportions)."""

    weights: dict[str, int] = Field(min_length=1)


class SwitchChange(_Body):
    """Blue-green: make `to` the active colour."""

    to: str
