"""One way to read configuration: environment variables through pydantic-settings.

Every settings model is a plain frozen pydantic model (``EnvModel``), so code and tests build it
with keyword arguments and never see the process environment by accident. ``load(Model)`` reads
the model's variables with pydantic-settings' environment source, validates them, and turns every
mistake into a ``ConfigError`` whose lines name the variable and the form it expects, e.g.
``VPA_PARTITIONS: expected a positive integer, got 'x'``. The ``vpa`` command prints those lines
and exits 2 instead of showing a traceback.

A field's variable is ``<env_prefix><FIELD NAME>`` (prefix ``VPA_``) unless ``setting(env=...)``
gives it another name (``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL``).
"""
from __future__ import annotations

import os
from typing import Any, ClassVar, Mapping, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import EnvSettingsSource
from pydantic_settings.exceptions import SettingsError
from pydantic_settings.sources.utils import parse_env_vars

M = TypeVar("M", bound="EnvModel")


class ConfigError(ValueError):
    """Invalid configuration; ``problems`` holds one line per bad variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class EnvModel(BaseModel):
    """Base of every settings model: immutable, no unknown fields, built by field name or variable."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)
    env_prefix: ClassVar[str] = "VPA_"


def setting(default: Any, form: str, *, env: Optional[str] = None, secret: bool = False, **constraints: Any) -> Any:
    """A field with the form its variable must have (used in error messages).

    ``env`` names the variable when it is not ``VPA_<FIELD>``; ``secret`` keeps the value out of
    error messages and reprs.
    """
    extra: dict[str, Any] = {"form": form}
    if secret:
        extra["secret"] = True
    return Field(default, validation_alias=env, json_schema_extra=extra, repr=not secret, **constraints)


def env_name(model: type[EnvModel], field: str) -> str:
    info = model.model_fields[field]
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"{model.env_prefix}{field.upper()}"


def variables(model: type[EnvModel]) -> dict[str, str]:
    """Environment variable -> field name, for every field of ``model``."""
    return {env_name(model, name): name for name in model.model_fields}


def form_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return str(extra.get("form", "a valid value"))


def _is_secret(info: FieldInfo) -> bool:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    return bool(extra.get("secret"))


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of ``os.environ``."""

    def __init__(self, model: type[EnvModel], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(model, env_prefix=model.env_prefix, case_sensitive=False, env_ignore_empty=True)  # type: ignore[arg-type]

    def _load_env_vars(self) -> Mapping[str, Optional[str]]:
        return parse_env_vars(self._mapping, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _raw(env: Mapping[str, str], var: str) -> Optional[str]:
    for key, value in env.items():
        if key.upper() == var:
            return value
    return None


def _field_for(model: type[EnvModel], loc_head: Any) -> Optional[str]:
    if loc_head in model.model_fields:
        return str(loc_head)
    return variables(model).get(str(loc_head).upper())


def describe(model: type[EnvModel], exc: ValidationError, env: Mapping[str, str]) -> list[str]:
    """One line per bad variable: ``VAR: expected FORM, got 'VALUE'``."""
    problems: list[str] = []
    seen: set[str] = set()
    for err in exc.errors(include_url=False):
        loc = err.get("loc") or ()
        field = _field_for(model, loc[0]) if loc else None
        if field is None:  # a rule across fields: its message names the variables itself
            line = str(err.get("msg", "")).removeprefix("Value error, ")
        else:
            var = env_name(model, field)
            if var in seen:
                continue
            seen.add(var)
            info = model.model_fields[field]
            raw = _raw(env, var)
            value = raw if raw is not None else err.get("input")
            got = "a value that is not shown" if _is_secret(info) else repr(value)
            line = f"{var}: expected {form_of(info)}, got {got}"
        if line not in problems:
            problems.append(line)
    return problems


def load(model: type[M], env: Optional[Mapping[str, str]] = None) -> M:
    """``model`` from the environment (``os.environ`` unless ``env`` is given); ConfigError if invalid.

    Unset and empty variables leave the field at its default.
    """
    env = os.environ if env is None else env
    try:
        raw = _MappingEnvSource(model, env)()
    except SettingsError as exc:  # the source could not even read a value
        raise ConfigError([str(exc)]) from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(model, exc, env)) from None
