"""The pydantic base every meshrules API type derives from.

Fields are snake_case in Python and camelCase on the wire (as Kubernetes users write them);
meshrules kinds are strict (unknown fields are errors) and immutable.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Strict, frozen, camelCase-on-the-wire base of every meshrules type."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as users write it: camelCase keys, unset and None fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)
