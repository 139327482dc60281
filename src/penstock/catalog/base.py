"""The base of the project file's models."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base of the project models: unknown keys are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields the loader fills in; users may not write them.
    internal_fields: ClassVar[frozenset[str]] = frozenset()
