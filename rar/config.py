"""Typed, validated experiment configs loaded from YAML, with `--set a.b=value` overrides.

Every config class derives from :class:`ConfigModel` (pydantic, unknown keys forbidden).
Errors name the file, the offending key, the closest valid key, and the expected type,
because a misspelt key that silently falls back to a default wastes a whole training run.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from rar.errors import InputError

T = TypeVar("T", bound="ConfigModel")


class ConfigError(InputError):
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


def _unwrap_optional(annotation: Any) -> Any:
    """`X | None` -> X (left alone when the union has several non-None members)."""
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def describe_type(annotation: Any) -> str:
    """A readable type: `float`, `list[float]`, `Literal['a', 'b']`, `RetrieverConfig | None`."""
    origin = get_origin(annotation)
    if annotation is type(None):
        return "None"
    if origin is Literal:
        return f"Literal[{', '.join(repr(a) for a in get_args(annotation))}]"
    if origin in (Union, UnionType):
        return " | ".join(describe_type(a) for a in get_args(annotation))
    if origin is not None:
        args = ", ".join(describe_type(a) for a in get_args(annotation))
        name = getattr(origin, "__name__", str(origin).replace("typing.", ""))
        return f"{name}[{args}]" if args else name
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _annotation_at(model: type[BaseModel], path: tuple[Any, ...]) -> Any:
    """The declared type at `path` (field names, and list/dict positions), or None if unknown."""
    annotation: Any = model
    for part in path:
        current = _unwrap_optional(annotation)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
            continue
        origin, args = get_origin(current), get_args(current)
        if origin in (list, set, frozenset) and args:
            annotation = args[0]
        elif origin is tuple and args:
            variadic = args[-1] is Ellipsis
            if variadic or (isinstance(part, int) and part < len(args)):
                annotation = args[0] if variadic else args[part]
            else:
                return None
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        else:
            return None
    return None if annotation is model else annotation


def _type_name(model: type[BaseModel], path: tuple[Any, ...]) -> str:
    annotation = _annotation_at(model, path)
    return "?" if annotation is None else describe_type(annotation)


@dataclass
class KeyOrigins:
    """Where each config key came from (a YAML file line or a `--set`), so errors can point there.

    `prefix` is the path of the validated section inside the file (e.g. `("ranker",)` when an
    experiment YAML's `ranker:` section is validated on its own).
    """

    path: str | None = None
    lines: dict[tuple[Any, ...], int] = field(default_factory=dict)
    overrides: dict[tuple[Any, ...], str] = field(default_factory=dict)
    prefix: tuple[Any, ...] = ()

    def where(self, loc: tuple[Any, ...]) -> str | None:
        """`file:line` of the deepest known key on `loc`, or the `--set` that set it."""
        for depth in range(len(loc), 0, -1):
            text = self.overrides.get(tuple(str(p) for p in loc[:depth]))
            if text is not None:
                return f"--set {text}"
        for depth in range(len(loc), -1, -1):
            line = self.lines.get(self.prefix + tuple(str(p) for p in loc[:depth]))
            if line is not None and self.path is not None:
                return f"{self.path}:{line}"
        return None


def yaml_key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """1-based line of every key (and list item) in a YAML document, by its path of names.

    PyYAML's composed nodes keep their start marks; the loaded dict does not.
    """
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[Any, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                child = (*path, str(key_node.value))
                lines[child] = key_node.start_mark.line + 1
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, str(index))
                lines[child] = item.start_mark.line + 1
                walk(item, child)

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        lines[()] = root.start_mark.line + 1
        walk(root, ())
    return lines


def moved_keys(model: type[BaseModel]) -> dict[str, str]:
    """Old dotted key -> its new place, declared by a config class as `moved_keys`, so a YAML
    written for an older layout gets told where each key went instead of only 'unknown key'."""
    return dict(getattr(model, "moved_keys", {}))


def _moved_lines(
    model: type[BaseModel], loc: tuple[Any, ...], value: Any, origins: KeyOrigins | None
) -> list[str]:
    """One error line per old key at or under `loc` (empty when nothing there moved)."""
    moved = moved_keys(model)
    dotted = ".".join(map(str, loc))
    if dotted in moved:
        keys = [(loc, dotted)]
    elif isinstance(value, dict) and any(k.startswith(dotted + ".") for k in moved):
        keys = [((*loc, str(k)), f"{dotted}.{k}") for k in value]
    else:
        return []
    lines = []
    for key_loc, key in keys:
        where = origins.where(key_loc) if origins is not None else None
        at = f"{where}: " if where else ""
        if key in moved:
            lines.append(f"  {at}key '{key}' has moved: write it as '{moved[key]}'")
        else:
            lines.append(f"  {at}unknown key '{key}'")
    return lines


def format_validation_error(
    model: type[BaseModel],
    error: ValidationError,
    source: str,
    origins: KeyOrigins | None = None,
) -> str:
    """Turn a pydantic error into lines a user can act on (key, file:line, closest key, type)."""
    lines = [f"invalid config in {source}:"]
    for item in error.errors():
        loc = tuple(item["loc"])
        dotted = ".".join(str(p) for p in loc)
        where = origins.where(loc) if origins is not None else None
        at = f"{where}: " if where else ""
        moved = _moved_lines(model, loc, item.get("input"), origins)
        if item["type"] == "extra_forbidden" and moved:
            lines.extend(moved)
        elif item["type"] == "extra_forbidden":
            valid = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{'.'.join([*map(str, loc[:-1]), close[0]])}'?" if close else ""
            level = ".".join(map(str, loc[:-1])) or "top level"
            lines.append(
                f"  {at}unknown key '{dotted}'{hint} (valid keys at {level}: {', '.join(valid)})"
            )
        elif item["type"] == "value_error":  # a validator's own message says it all
            lines.append(f"  {at}field '{dotted}': {item.get('ctx', {}).get('error', item['msg'])}")
        else:
            expected = _type_name(model, loc)
            got = item.get("input")
            lines.append(
                f"  {at}field '{dotted}': {item['msg']} (expected {expected}, got {got!r})"
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


def _keep_string(model: type[BaseModel], parts: list[str], text: str, value: Any) -> Any:
    """For a `str` field keep the text as typed: `--set name=123` or `=2024-01-01` stay strings."""
    annotation = _annotation_at(model, tuple(parts))
    if value is None or isinstance(value, str):
        return value
    if annotation is str or _unwrap_optional(annotation) is str:
        return text.split("=", 1)[1].strip()
    return value


def apply_overrides(
    data: dict[str, Any],
    overrides: list[str],
    model: type[BaseModel],
    origins: KeyOrigins | None = None,
) -> dict[str, Any]:
    """Set each `key.path=value` in the raw dict, refusing keys the model does not have.

    With `origins`, each set key is recorded as coming from its `--set`, for error messages.
    """
    for text in overrides:
        parts, value = parse_override(text)
        if origins is not None:
            origins.overrides[tuple(parts)] = text
        node = data
        for depth, part in enumerate(parts):
            valid = _fields_at(model, tuple(parts[:depth]))
            new = moved_keys(model).get(".".join(parts))
            if valid and part not in valid and new is not None:
                raise ConfigError(
                    f"--set {text}: key '{'.'.join(parts)}' has moved: write it as '{new}'"
                )
            if valid and part not in valid:
                close = difflib.get_close_matches(part, valid, n=1, cutoff=0.5)
                hint = f"; did you mean '{'.'.join([*parts[:depth], close[0]])}'?" if close else ""
                raise ConfigError(
                    f"--set {text}: unknown key '{'.'.join(parts[: depth + 1])}'{hint}"
                )
            if depth == len(parts) - 1:
                node[part] = _keep_string(model, parts, text, value)
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return data


def packaged_configs() -> dict[str, Path]:
    """Name -> file of every config shipped inside the package (`rar/configs/*.yaml`), so an
    installed wheel finds them wherever it runs, not only in a checkout."""
    folder = Path(str(resources.files("rar") / "configs"))
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def resolve_config(value: str | Path) -> Path:
    """The one rule every `--config` follows: an existing file is used as given; otherwise a
    bare name (`redial_dpo_semantic` or `redial_dpo_semantic.yaml`) is a packaged config."""
    path = Path(value)
    if path.is_file():
        return path
    shipped = packaged_configs()
    name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if path.name == str(value) and name in shipped:
        return shipped[name]
    if path.name == str(value):
        raise ConfigError(
            f"config {str(value)!r} is neither a file nor a packaged config "
            f"(packaged: {', '.join(shipped)})"
        )
    hint = f" (packaged config: --config {name})" if name in shipped else ""
    raise ConfigError(f"config file not found: {path}{hint}")


def read_yaml(path: str | Path, origins: KeyOrigins | None = None) -> dict[str, Any]:
    """Read a YAML mapping (a path or a packaged config's name, see `resolve_config`), with the
    file and line in the error when it does not parse.

    With `origins`, the line of every key is recorded there, for validation errors.
    """
    path = resolve_config(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if origins is not None:
            origins.path = str(path)
            origins.lines = yaml_key_lines(text)
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
    origins = KeyOrigins()
    data = read_yaml(path, origins) if path is not None else {}
    data = apply_overrides(data, list(overrides or []), model, origins)
    source = str(path) if path is not None else "defaults"
    if overrides:
        source += f" (with --set {' '.join(overrides)})"
    return validate_config(model, data, source, origins)


def validate_config(
    model: type[T], data: dict[str, Any], source: str, origins: KeyOrigins | None = None
) -> T:
    """`model` from a raw dict; invalid values become a ConfigError naming `source` (the file,
    flags or section they came from) instead of pydantic's multi-page ValidationError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(model, exc, source, origins)) from None


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (what every run directory stores)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_config(config: BaseModel, path: str | Path) -> None:
    """Write the resolved config atomically (a resume reads it back)."""
    from rar.atomic_files import atomic_write_text

    atomic_write_text(Path(path), dump_config(config))
