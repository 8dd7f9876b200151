"""``ai-gateway:tags``: the tags every resource carries."""

from __future__ import annotations

import re

from pydantic import (
    Field,
    field_validator,
)

from infra.config.base import _Model


class TagsConfig(_Model):
    """The organisational tags every taggable resource carries (``ai-gateway:tags``).

    ``environment``, ``managed-by`` and ``project`` are derived; ``owner`` and
    ``cost-center`` must be set so every bill and alert reaches a person.
    """

    owner: str = Field(
        min_length=1,
        max_length=128,
        description="Team or person accountable for the stack (tag `owner`). Required.",
    )
    cost_center: str = Field(
        min_length=1,
        max_length=128,
        description="Cost centre billed for the stack (tag `cost-center`). Required.",
    )
    project: str = Field(
        default="ai-gateway",
        min_length=1,
        max_length=63,
        description="Project name (tag `project`); also the prefix of resource names.",
    )
    extra: dict[str, str] = Field(
        default_factory=dict,
        description="Additional tags applied everywhere; they cannot override the required ones.",
    )

    @field_validator("project")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", value):
            raise ValueError(
                f"{value!r} cannot prefix resource names in every cloud; use lowercase "
                "letters, digits and hyphens, starting with a letter (for example ai-gateway)"
            )
        return value
