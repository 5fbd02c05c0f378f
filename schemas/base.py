"""Shared field types and enums of the contract."""
from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

# Initials ("Kürzel") of a roster member: 2 to 4 capital letters, e.g. "AB".
Initials = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,4}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=200)]
# Datetimes must carry a UTC offset ("Z" counts); naive datetimes are rejected.
OffsetDatetime = AwareDatetime


class VpaClass(str, Enum):
    A = "A"
    B = "B"
    C = "C"
    D = "D"


# A is best; a larger rank is a worse class.
CLASS_RANK = {VpaClass.A: 0, VpaClass.B: 1, VpaClass.C: 2, VpaClass.D: 3}


class Role(str, Enum):
    at = "at"
    vpa_manager = "vpa_manager"
    system = "system"


class Stage(str, Enum):
    NEW_0_3 = "NEW_0_3"
    NEW_3_6 = "NEW_3_6"
    NEW_6_9 = "NEW_6_9"
    NEW_9_12 = "NEW_9_12"
    NEW_GT_12 = "NEW_GT_12"


class Data(BaseModel):
    """Base of every ``data`` payload: strict types, unknown fields ignored (DESIGN 4.2)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True)
