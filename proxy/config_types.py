"""What every section of the configuration shares: the strict base model and the duration type.

Its own module so that a section kept in a module of its own (proxy.config_rollout) uses the
same rules as proxy.config_sections, which in turn includes it, without an import cycle.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_SECONDS = 86_400.0
"""The longest duration any option takes: a day."""

Seconds = Annotated[float, Field(gt=0, le=MAX_SECONDS)]


class Section(BaseModel):
    # A misspelt option is an error, never silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)
