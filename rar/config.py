"""Typed, validated experiment configs loaded from YAML, with `--set a.b=value` overrides.

Every config class derives from :class:`ConfigModel` (pydantic, unknown keys forbidden).
Errors name the file, the offending key, the closest valid key, and the expected type,
because a misspelt key that silently falls back to a default wastes a whole training run.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

T = TypeVar("T", bound="ConfigModel")


class ConfigError(ValueError):
    """A config file or override is invalid; the message says where and what was expected."""


class ConfigModel(BaseModel):
    """Base for every config section: strict keys, validated assignment, field docs via `description`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def _fields_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """Valid field names of the nested model reached by `path` (empty when not a model)."""
    current: Any = model
    for part in path:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = field.annotation
        # unwrap Optional[Model] / Model | None
        args = getattr(current, "__args__", None)
        if args:
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            current = models[0] if models else current
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _type_name(model: type[BaseModel], path: tuple[Any, ...]) -> str:
    current: Any = model
    annotation: Any = None
    for part in path:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            break
        field = current.model_fields.get(str(part))
        if field is None:
            break
        annotation = field.annotation
        current = annotation
    if annotation is None:
        return "?"
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def format_validation_error(model: type[BaseModel], error: ValidationError, source: str) -> str:
    """Turn a pydantic error into lines a user can act on (key, file, closest key, expected type)."""
    lines = [f"invalid config in {source}:"]
    for item in error.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        if item["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?" if close else ""
            where = ".".join(map(str, loc[:-1])) or "top level"
            lines.append(
                f"  unknown key '{dotted}'{hint} (valid keys at {where}: {', '.join(valid)})"
            )
        else:
            expected = _type_name(model, loc)
            got = item.get("input")
            lines.append(
                f"  field '{dotted}': {item['msg']} (expected {expected}, got {got!r})"
            )
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `a.b.c=value`; the value is read as YAML so `0.2`, `true`, `[1,2]` get their types."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(
    data: dict[str, Any], overrides: list[str], model: type[BaseModel]
) -> dict[str, Any]:
    """Set each `key.path=value` in the raw dict, refusing keys the model does not have."""
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for depth, part in enumerate(parts):
            valid = _fields_at(model, tuple(parts[:depth]))
            if valid and part not in valid:
                close = difflib.get_close_matches(part, valid, n=1, cutoff=0.5)
                hint = f"; did you mean '{'.'.join([*parts[:depth], close[0]])}'?" if close else ""
                raise ConfigError(f"--set {text}: unknown key '{'.'.join(parts[: depth + 1])}'{hint}")
            if depth == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with the file and line in the error when it does not parse."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"cannot parse YAML at {where}: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys to values")
    return data


def load_config(
    model: type[T], path: str | Path | None = None, overrides: list[str] | None = None
) -> T:
    """Load `model` from a YAML file (or defaults when `path` is None) and apply overrides."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides or []), model)
    source = str(path) if path is not None else "defaults"
    if overrides:
        source += f" (with --set {' '.join(overrides)})"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc, source)) from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (what every run directory stores)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_config(config: BaseModel, path: str | Path) -> None:
    Path(path).write_text(dump_config(config), encoding="utf-8")
