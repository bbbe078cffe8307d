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


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate YAML text; `ConfigError` names every broken key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(["the top level must be a mapping of keys"], source)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc), source) from exc


def _problems(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{key}: {_message(error)}")
    return problems


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{where}: not valid YAML: {problem}"
    return f"not valid YAML: {problem}"
