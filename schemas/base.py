"""Shared field types and enums of the contract."""
from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Union

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# Years the contract accepts in any date or datetime (DESIGN 5.4/5.5): a year 9999 or 1 is a
# typo or an attack, and one such record must never fast-forward a stream clock by centuries.
MIN_YEAR, MAX_YEAR = 1900, 2999
# Longest free text (notes, summaries, names of reasons): a dashlet row, not a document.
MAX_TEXT = 2000


def _plausible_year(value: Union[date, datetime]) -> Union[date, datetime]:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"year {value.year} is outside {MIN_YEAR} to {MAX_YEAR}")
    return value


# Initials ("Kürzel") of a roster member: 2 to 4 capital letters, e.g. "AB".
Initials = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2,4}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
# Datetimes must carry a UTC offset ("Z" counts); naive datetimes are rejected.
OffsetDatetime = Annotated[AwareDatetime, AfterValidator(_plausible_year),
                           Field(json_schema_extra={"x-year-range": [MIN_YEAR, MAX_YEAR]})]
Day = Annotated[date, AfterValidator(_plausible_year), Field(json_schema_extra={"x-year-range": [MIN_YEAR, MAX_YEAR]})]


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
