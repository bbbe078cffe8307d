"""Durations and sizes as people write them in the config file.

Durations: a number with a unit, ``90s``, ``5m``, ``1h``, ``4.5d``, ``2w``
(a bare number means seconds). Sizes: ``25MB``, ``512KB``, ``1GB`` in
decimal units, ``KiB``/``MiB``/``GiB`` in binary ones, or a bare number of
bytes.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
}


def parse_duration(value: object) -> timedelta:
    """``"4.5d"`` -> 4 days 12 hours. Raises ValueError naming the problem."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 90s, 5m, 1h or 4.5d")
    if isinstance(value, int | float):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 90s, 5m, 1h or 4.5d")
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration; write a number and a unit: 90s, 5m, 1h, 4.5d"
        )
    unit = (match[2] or "s").lower()
    duration = timedelta(seconds=float(match[1]) * _DURATION_UNITS[unit])
    if duration <= timedelta(0):
        # Every duration in the config is a wait, a timeout or an age: zero
        # would mean a busy loop or an instant give-up.
        raise ValueError(f"{value!r}: a duration must be longer than zero")
    return duration


def parse_size(value: object) -> int:
    """``"25MB"`` -> 25000000 bytes. Raises ValueError naming the problem."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 25MB")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("expected a size such as 25MB")
    match = _SIZE.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a size; write e.g. 25MB or 512KiB")
    return int(float(match[1]) * _SIZE_UNITS[(match[2] or "").lower()])


def format_duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for unit in ("d", "h", "m"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and seconds % (size / 2 if unit == "d" else size) == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
