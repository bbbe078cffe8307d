"""Finding, reading and validating the config file.

With ``--config`` that file is read; else ``/etc/postroom/postroom.yaml``
when it exists; else the embedded default. Every problem is reported as a
`ConfigError` whose lines name the key and what is wrong with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from postroom.config.schema import Config
from postroom.errors import ConfigError

SYSTEM_PATH = Path("/etc/postroom/postroom.yaml")


def find_config(explicit: Path | None) -> Path | None:
    """The file to read, or None for the embedded default."""
    if explicit is not None:
        return explicit
    if SYSTEM_PATH.exists():
        return SYSTEM_PATH
    return None


def load_config(path: Path | None = None) -> Config:
    """Read and validate ``path``; None gives the embedded default."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror}"], str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(["the file is not UTF-8 text"], str(path)) from exc
    return parse_config(text, str(path))


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice is an error: silently
    keeping the last one hides typos and bad merges."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping,
)


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate YAML text; `ConfigError` names every broken key."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["the top level must be a mapping of keys"], source)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc), source) from exc
    clashes = config.listener_clashes()
    if clashes:
        raise ConfigError(clashes, source)
    return config


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        # pydantic ends the place of a broken mapping key with "[key]".
        parts = [str(part) for part in error["loc"] if part != "[key]"]
        key = ".".join(parts) or "(top level)"
        problems.append(f"{key}: {_message(error)}")
    return problems


# pydantic's wording for type errors, in the words of a config file.
_TYPE_MESSAGES = {
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a mapping of keys",
    "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "path_type": "expected a file or directory path",
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
}


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind in _TYPE_MESSAGES:
        return f"{_TYPE_MESSAGES[kind]}, not {error.get('input')!r}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{where}: not valid YAML: {problem}"
    return f"not valid YAML: {problem}"
