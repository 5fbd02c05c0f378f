"""A compiled check of a task version's shape, for the notifier's hot path (issue 22, point 4).

``schemas.task.Task`` stays the one definition of the shape: the msgspec types here are derived
from it when this module loads, so a field added there is checked here without a second copy.
The check only *accepts*: a version it accepts is one the strict pydantic validation accepts
too (a differential test keeps it so); anything else, or anything it is unsure of, returns
``False`` and the notifier asks the full check, which also words the reason for ``vpa.dlq``.
So it changes how fast a valid version passes, never what passes or why something does not.
"""
from __future__ import annotations

import enum
import types
import typing
from datetime import datetime
from typing import Annotated, Any, Optional, Union

import msgspec
from pydantic import AwareDatetime, BaseModel

from schemas.base import MAX_YEAR, MIN_YEAR
from schemas.task import Task

MAX_VERSION = 2**31 - 1  # the store's version column is an integer
_AWARE = Annotated[datetime, msgspec.Meta(tz=True)]
_NONE = type(None)


def _translate(annotation: Any, structs: dict[type, type]) -> Any:
    """The msgspec type of a pydantic field annotation (the few kinds the task shape uses)."""
    if annotation is AwareDatetime:
        return _AWARE
    if annotation in (str, int, bool):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation  # decoded by value, as pydantic's strict JSON mode does
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _struct_of(annotation, structs)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return Optional[_translate(next(a for a in args if a is not _NONE), structs)] \
            if len(args) == 2 and _NONE in args else Union[tuple(_translate(a, structs) for a in args)]
    if origin is list:
        return list[_translate(args[0], structs)]  # type: ignore[misc]
    raise TypeError(f"no compiled check for the annotation {annotation!r}: add it to _translate")


def _struct_of(model: type[BaseModel], structs: dict[type, type]) -> type:
    if model not in structs:
        if model.model_config.get("extra") != "forbid":
            raise TypeError(f"{model.__name__} accepts unknown keys: the compiled check forbids them")
        fields: list[tuple[Any, ...]] = []
        for name, info in model.model_fields.items():
            if info.metadata:  # constraints (lengths, ranges) the translation does not carry over
                raise TypeError(f"{model.__name__}.{name} has constraints the compiled check lacks")
            kind = _translate(info.annotation, structs)
            fields.append((name, kind) if info.is_required() else (name, kind, info.default))
        structs[model] = msgspec.defstruct(f"Fast{model.__name__}", fields, kw_only=True,
                                           forbid_unknown_fields=True)
    return structs[model]


_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_struct_of(Task, {}))


def _plausible(value: Optional[datetime]) -> bool:
    return value is None or MIN_YEAR <= value.year <= MAX_YEAR


def accepts(raw: bytes) -> bool:
    """True when ``raw`` is certainly a task version the store can take (what
    ``services.notifier.service.parse_task`` accepts); False means "ask the full check"."""
    if b"\\u0000" in raw or b"\x00" in raw:  # U+0000 (PostgreSQL refuses it): the full check words it
        return False
    try:
        task: Any = _DECODER.decode(raw)
    except (msgspec.DecodeError, ValueError):
        return False
    return (0 < task.version <= MAX_VERSION
            and _plausible(task.created_at) and _plausible(task.updated_at) and _plausible(task.due_at)
            and all(_plausible(entry.at) for entry in task.history))
